"""Clip files: the H.264 clip a browser plays, encoded by ffmpeg from the exact frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from privacy import media

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@needs_ffmpeg
def test_a_clip_is_encoded_frame_for_frame_and_its_source_removed(tmp_path: Path) -> None:
    frames = [np.full((96, 128, 3), 10 * i, np.uint8) for i in range(12)]
    written = media.write_clip(frames, 5.0, tmp_path / "clip.mp4")
    assert written == tmp_path / "clip.mp4"
    assert len(media.read_frames(written)) == 12
    assert not (tmp_path / "clip.avi").exists()  # the MJPEG it was made from is gone
