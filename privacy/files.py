"""The files of one incident's evidence, under the evidence folder.

An incident's `snapshot` reference (`<camera>/<incident>.jpg`, shrinkwatch.contracts.snapshot_name)
names a stem; every file of its evidence is that stem with a suffix of its own:

| suffix            | what                                                          | retention kind |
|-------------------|---------------------------------------------------------------|----------------|
| `.jpg`            | the snapshot as shown: heads blurred when the store says so   | snapshots      |
| `.mp4` (`.avi`)   | the clip as shown (`.avi`, MJPEG, where ffmpeg is missing)    | clips          |
| `.unblurred.jpg`  | the snapshot without the head blur (only with `blur_heads`)   | snapshots      |
| `.unblurred.mp4`  | the clip without the head blur (only with `blur_heads`)       | clips          |
| `.frames.avi`     | the raw analysed frames of the clip (MJPEG, privacy zones     | clips          |
|                   | already black), for access requests and erasure               |                |
| `.tracks.json`    | per frame of `.frames.avi`: its time and detected objects     | the longer of  |
|                   | (TRACKS_SCHEMA)                                               | the two        |

Privacy zones are blacked out before a frame is analysed, so no file holds them. An unblurred
file is served only to someone who revealed that incident with a reason (logged).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter

from shrinkwatch.contracts import DetectedObject

Kind = Literal["snapshots", "clips"]

SNAPSHOT = ".jpg"
CLIP = ".mp4"
CLIP_FALLBACK = ".avi"
UNBLURRED_SNAPSHOT = ".unblurred.jpg"
UNBLURRED_CLIP = ".unblurred.mp4"
UNBLURRED_CLIP_FALLBACK = ".unblurred.avi"
FRAMES = ".frames.avi"
TRACKS = ".tracks.json"
TRACKS_SCHEMA = "shrinkwatch.evidence-tracks/1"

# What each retention kind deletes; the tracks go when nothing that needs them is left.
BY_KIND: dict[Kind, tuple[str, ...]] = {
    "snapshots": (SNAPSHOT, UNBLURRED_SNAPSHOT),
    "clips": (CLIP, CLIP_FALLBACK, UNBLURRED_CLIP, UNBLURRED_CLIP_FALLBACK, FRAMES),
}


def stem(root: Path, reference: str) -> Path | None:
    """The path of a reference without its suffix, under `root`; None when the reference
    would leave the folder (or cannot be a file name)."""
    try:
        base = root.resolve()
        path = (base / reference).resolve()
    except (OSError, ValueError):
        return None
    if base not in path.parents or not path.name.endswith(SNAPSHOT):
        return None
    return path.with_name(path.name[: -len(SNAPSHOT)])


def evidence_path(root: Path, reference: str, suffix: str) -> Path | None:
    """The file of `reference`'s evidence with `suffix` (whether it exists or not)."""
    base = stem(root, reference)
    return None if base is None else base.with_name(base.name + suffix)


def existing(root: Path, reference: str, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """The files of `reference`'s evidence with these suffixes that exist."""
    for suffix in suffixes:
        path = evidence_path(root, reference, suffix)
        if path is not None and path.is_file():
            yield path


@dataclass(frozen=True)
class TrackedFrame:
    """One frame of a clip's frames file: when it was taken and what was seen in it."""

    ts: datetime
    objects: list[DetectedObject]


@dataclass(frozen=True)
class Tracks:
    """The tracks file of one incident's evidence (TRACKS_SCHEMA): `frames[i]` is the i-th frame
    of `.frames.avi`, of the clips, and `frames[key_index]` the snapshot's frame; `track_id` is
    the incident's person (None for an incident about no one track)."""

    incident_id: str
    camera_id: str
    track_id: int | None
    fps: float
    key_index: int
    frame_w: int
    frame_h: int
    frames: list[TrackedFrame]


_OBJECTS = TypeAdapter(list[DetectedObject])


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` as a whole: written beside it under a hidden temporary name and moved
    in place, so a reader (the dashboard, the purge, an export) sees the old file or the new one,
    never half of one. Every evidence, tracks and document file is written through here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only there when the write or the move failed
    return path


def write_tracks(path: Path, tracks: Tracks) -> None:
    """The tracks file, written beside and moved in place (a reader sees the old or the new)."""
    document = {
        "schema": TRACKS_SCHEMA,
        "incident_id": tracks.incident_id,
        "camera_id": tracks.camera_id,
        "track_id": tracks.track_id,
        "fps": tracks.fps,
        "key_index": tracks.key_index,
        "frame_w": tracks.frame_w,
        "frame_h": tracks.frame_h,
        "frames": [
            {"ts": f.ts.isoformat(), "objects": _OBJECTS.dump_python(f.objects, mode="json")}
            for f in tracks.frames
        ],
    }
    write_atomic(path, json.dumps(document, separators=(",", ":")).encode("utf-8"))


def read_tracks(path: Path) -> Tracks:
    """A tracks file; ValueError naming what is wrong when it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"{path.name}: not a readable tracks file ({exc})"
        raise ValueError(msg) from None
    if not isinstance(document, dict) or document.get("schema") != TRACKS_SCHEMA:
        msg = f"{path.name}: not a tracks file of schema {TRACKS_SCHEMA}"
        raise ValueError(msg)
    try:
        return Tracks(
            incident_id=str(document["incident_id"]),
            camera_id=str(document["camera_id"]),
            track_id=None if document["track_id"] is None else int(document["track_id"]),
            fps=float(document["fps"]),
            key_index=int(document["key_index"]),
            frame_w=int(document["frame_w"]),
            frame_h=int(document["frame_h"]),
            frames=[
                TrackedFrame(datetime.fromisoformat(f["ts"]), _OBJECTS.validate_python(f["objects"]))
                for f in document["frames"]
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{path.name}: a tracks file with a bad field ({exc})"
        raise ValueError(msg) from None
