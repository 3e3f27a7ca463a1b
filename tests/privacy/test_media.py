"""Clip files: the H.264 clip a browser plays is encoded by ffmpeg, niced (privacy.media)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from privacy import media

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@needs_ffmpeg
def test_a_clip_is_encoded_by_a_niced_ffmpeg_frame_for_frame(tmp_path: Path) -> None:
    command = media.ffmpeg_command("ffmpeg", tmp_path / "in.avi", tmp_path / "out.mp4")
    nice = shutil.which("nice")
    assert nice is not None  # coreutils: on every Debian
    assert command[:4] == [nice, "-n", "10", "ffmpeg"]
    assert command[-1] == str(tmp_path / "out.mp4") and str(tmp_path / "in.avi") in command

    frames = [np.full((96, 128, 3), 10 * i, np.uint8) for i in range(12)]
    written = media.write_clip(frames, 5.0, tmp_path / "clip.mp4")
    assert written == tmp_path / "clip.mp4"
    assert len(media.read_frames(written)) == 12
    assert not (tmp_path / "clip.avi").exists()  # the MJPEG it was made from is gone
