"""Evidence as it is shown: a frame redacted first, then annotated.

One rule for every picture of shoppers that leaves the detector (an incident's snapshot and
clip, the live view, and so the alert images, which are the snapshot file): redact the raw
frame first (heads blurred when the store's `blur_heads` is on; privacy zones black again,
over any blur that reached into them), and only then draw the boxes, labels and the person's
path on top, so a label stays legible and no face is left sharp beneath one. An object
without a track id is a person the tracker had not confirmed (detector.tracking.untracked):
kept for redaction only, so their head is blurred like anyone's but no box or label is drawn
for them.

`write_snapshots` and `render_evidence` write an incident's shown files under the layout of
`privacy.files`: the snapshot (`.jpg`) and clip (`.mp4`, `.avi` without ffmpeg), and, only
with blur on, the same frames annotated without the blur (`.unblurred.jpg`, `.unblurred.mp4`,
served only after a logged reveal). With blur off there are no unblurred files: any left from
an earlier rendering are removed. Each file is written beside and moved in place, the
unblurred ones first, so a reader that sees a shown file finds its unblurred twin. The
recorder renders from the ring's frames; erasure can render again from redacted raw frames
and the tracks file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from privacy.files import (
    CLIP,
    SNAPSHOT,
    UNBLURRED_CLIP,
    UNBLURRED_CLIP_FALLBACK,
    UNBLURRED_SNAPSHOT,
    Tracks,
    evidence_path,
    write_atomic,
)
from privacy.media import write_clip
from privacy.redact import black_out, blur_heads
from shrinkwatch.contracts import DetectedObject, foot

Polygon = Sequence[tuple[float, float]]

GREY = (200, 200, 200)
RED = (40, 40, 230)
PATH = (0, 215, 255)  # amber (BGR)
SNAPSHOT_QUALITY = 85


class _Seen(Protocol):
    @property
    def objects(self) -> list[DetectedObject]: ...


def track_path(frames: Iterable[_Seen], track_id: int | None) -> list[tuple[float, float]]:
    """Where one track's feet were (bottom centre of its box, normalised), frame by frame."""
    if track_id is None:
        return []
    points = []
    for frame in frames:
        for obj in frame.objects:
            if obj.track_id == track_id:
                points.append(foot(obj.box))
                break
    return points


def annotate(
    image: np.ndarray,
    objects: list[DetectedObject],
    highlight: int | None = None,
    label: str | None = None,
    path: list[tuple[float, float]] | None = None,
) -> np.ndarray:
    """A copy of the frame with every tracked object's box and track id (objects without one
    are for redaction only); `highlight` in red, and its `path` (normalised foot points,
    oldest first) as a line from a ring to a dot."""
    out = image.copy()
    height, width = out.shape[:2]
    if path and len(path) > 1:
        pixels = np.array([(round(x * width), round(y * height)) for x, y in path], np.int32)
        cv2.polylines(out, [pixels], isClosed=False, color=PATH, thickness=2, lineType=cv2.LINE_AA)
        cv2.circle(out, tuple(int(v) for v in pixels[0]), 5, PATH, 2, cv2.LINE_AA)
        cv2.circle(out, tuple(int(v) for v in pixels[-1]), 5, PATH, -1, cv2.LINE_AA)
    for obj in objects:
        if obj.track_id is None:
            continue
        x1, y1, x2, y2 = (int(v * s) for v, s in zip(obj.box, (width, height, width, height), strict=True))
        colour = RED if highlight is not None and obj.track_id == highlight else GREY
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        text = f"{obj.class_name} {obj.track_id}"
        cv2.putText(out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    if label:
        cv2.rectangle(out, (0, 0), (width, 22), (0, 0, 0), -1)
        cv2.putText(out, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def redacted(
    image: np.ndarray, objects: list[DetectedObject], *, blur: bool, privacy: Iterable[Polygon] = ()
) -> np.ndarray:
    """A copy of the frame with every person's head blurred (when `blur`) and the privacy
    zones black (already so in a raw frame; again after the blur, which may reach into one)."""
    out = image.copy()
    if blur:
        blur_heads(out, objects)
    return black_out(out, privacy)


def shown(
    image: np.ndarray,
    objects: list[DetectedObject],
    *,
    blur: bool,
    privacy: Iterable[Polygon] = (),
    highlight: int | None = None,
    label: str | None = None,
    path: list[tuple[float, float]] | None = None,
) -> np.ndarray:
    """The frame as it may be shown: redacted, then annotated (a copy)."""
    return annotate(redacted(image, objects, blur=blur, privacy=privacy), objects, highlight, label, path)


def snapshot_label(title: str, track_id: int | None, ts: datetime) -> str:
    """The caption across the top of an incident's snapshot."""
    return f"{title} - track {track_id} - {ts:%Y-%m-%d %H:%M:%S} UTC"


def _file(root: Path, reference: str, suffix: str) -> Path:
    path = evidence_path(root, reference, suffix)
    if path is None:
        msg = f"evidence reference {reference!r} is not a plain name under the evidence folder"
        raise ValueError(msg)
    return path


def _write_jpeg(path: Path, image: np.ndarray) -> Path:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY])
    if not ok:
        msg = f"{path.name}: the frame could not be encoded"
        raise ValueError(msg)
    return write_atomic(path, buf.tobytes())


def _forget_unblurred(root: Path, reference: str, suffixes: tuple[str, ...]) -> None:
    for suffix in suffixes:
        _file(root, reference, suffix).unlink(missing_ok=True)


def write_snapshots(
    root: Path,
    reference: str,
    image: np.ndarray,
    objects: list[DetectedObject],
    *,
    blur: bool,
    privacy: Iterable[Polygon] = (),
    highlight: int | None = None,
    label: str | None = None,
    path: list[tuple[float, float]] | None = None,
) -> list[Path]:
    """The incident's snapshot as shown (`.jpg`) and, with `blur`, unblurred beside it; the
    files written, unblurred first."""
    zones = list(privacy)
    written = []
    if blur:
        unblurred = shown(
            image, objects, blur=False, privacy=zones, highlight=highlight, label=label, path=path
        )
        written.append(_write_jpeg(_file(root, reference, UNBLURRED_SNAPSHOT), unblurred))
    else:
        _forget_unblurred(root, reference, (UNBLURRED_SNAPSHOT,))
    snapshot = shown(image, objects, blur=blur, privacy=zones, highlight=highlight, label=label, path=path)
    written.append(_write_jpeg(_file(root, reference, SNAPSHOT), snapshot))
    return written


def render_evidence(
    root: Path,
    reference: str,
    tracks: Tracks,
    images: list[np.ndarray],
    *,
    blur: bool,
    label: str | None = None,
    privacy: Iterable[Polygon] = (),
) -> list[Path]:
    """An incident's shown snapshot and clip (and with `blur` their unblurred twins) from its
    raw frames (`images[i]` is `tracks.frames[i]`); the files written, unblurred first."""
    if len(images) != len(tracks.frames) or not 0 <= tracks.key_index < len(images):
        msg = (
            f"{len(images)} frames for a tracks file of {len(tracks.frames)} with key frame "
            f"{tracks.key_index}: they must match"
        )
        raise ValueError(msg)
    zones = list(privacy)
    highlight = tracks.track_id

    def clip(blurred: bool, suffix: str) -> Path | None:
        frames = [
            shown(image, frame.objects, blur=blurred, privacy=zones, highlight=highlight)
            for image, frame in zip(images, tracks.frames, strict=True)
        ]
        return write_clip(frames, tracks.fps, _file(root, reference, suffix))

    written: list[Path | None] = []
    if blur:
        written.append(clip(False, UNBLURRED_CLIP))
    else:
        _forget_unblurred(root, reference, (UNBLURRED_CLIP, UNBLURRED_CLIP_FALLBACK))
    key = tracks.key_index
    written += write_snapshots(
        root,
        reference,
        images[key],
        tracks.frames[key].objects,
        blur=blur,
        privacy=zones,
        highlight=highlight,
        label=label,
        path=track_path(tracks.frames, highlight),
    )
    written.append(clip(blur, CLIP))
    return [p for p in written if p is not None]
