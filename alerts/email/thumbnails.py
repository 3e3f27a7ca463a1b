"""Small JPEGs of evidence snapshots, for the digest email's top incidents (OpenCV, imported
when a digest is written, not when alerts start)."""

from __future__ import annotations

from pathlib import Path


def thumbnail(path: Path, width: int = 320) -> bytes | None:
    """A small JPEG of a snapshot for an email (None when it cannot be read)."""
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        return None
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    ok, data = cv2.imencode(".jpg", cv2.resize(image, (width, height)), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return data.tobytes() if ok else None
