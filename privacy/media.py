"""Frames to and from clip files.

`write_frames` keeps frames exactly (MJPEG in an .avi: one JPEG per frame, read back frame for
frame, so a frame's index matches its row in the tracks file); `write_clip` makes the clip a
browser plays (H.264 MP4 through ffmpeg, else the MJPEG .avi) and returns the file it wrote.
(detect's evidence encoder writes clips from a niced thread, detector.evidence: ffmpeg
inherits it.)
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


def write_frames(images: Iterable[np.ndarray], fps: float, target: Path) -> int:
    """The frames as an MJPEG .avi at `target` (written beside it, then moved in place);
    returns how many were written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:6]}.avi")
    writer: cv2.VideoWriter | None = None
    count = 0
    try:
        for image in images:
            if writer is None:
                height, width = image.shape[:2]
                writer = cv2.VideoWriter(
                    str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), max(fps, 1.0), (width, height)
                )
            writer.write(image)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count:
        tmp.replace(target)
    else:
        tmp.unlink(missing_ok=True)
    return count


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a clip file, in order."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
    finally:
        capture.release()
    return frames


def ffmpeg_command(ffmpeg: str, source: Path, target: Path) -> list[str]:
    """The command that encodes `source` (MJPEG .avi) to `target` (H.264 MP4 a browser plays)."""
    return [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(target),
    ]


def write_clip(images: list[np.ndarray], fps: float, target: Path) -> Path | None:
    """The frames as the clip a browser plays: `target` (.mp4, H.264) when ffmpeg is there,
    else the MJPEG .avi beside it. Returns the file written (None without frames). Either
    replaces an earlier clip of the same name as a whole."""
    avi = target.with_suffix(".avi")
    if not write_frames(images, fps, avi):
        return None
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return avi
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:6]}.mp4")
    result = subprocess.run(
        ffmpeg_command(ffmpeg, avi, tmp),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        return avi
    tmp.replace(target)
    avi.unlink(missing_ok=True)
    return target
