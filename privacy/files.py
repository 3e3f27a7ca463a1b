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

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

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
