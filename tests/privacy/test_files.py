"""The evidence layout (privacy.files): names stay under the folder, the tracks file round-trips
and a file that is not one is refused with its name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from privacy.files import (
    BY_KIND,
    FRAMES,
    SNAPSHOT,
    TRACKS,
    UNBLURRED_CLIP,
    TrackedFrame,
    Tracks,
    evidence_path,
    existing,
    read_tracks,
    stem,
    write_tracks,
)
from shrinkwatch.contracts import DetectedObject, snapshot_name


def person(track: int, box: tuple[float, float, float, float]) -> DetectedObject:
    return DetectedObject(track_id=track, class_name="person", class_id=0, conf=0.9, box=box)


def test_every_file_of_an_incident_is_its_reference_with_a_suffix(tmp_path: Path) -> None:
    reference = snapshot_name("cam-1", "inc.2026-12-07.17")
    assert evidence_path(tmp_path, reference, SNAPSHOT) == (tmp_path / reference).resolve()
    assert (
        evidence_path(tmp_path, reference, UNBLURRED_CLIP)
        == (tmp_path / "cam-1" / "inc.2026-12-07.17.unblurred.mp4").resolve()
    )
    assert evidence_path(tmp_path, reference, FRAMES).name == "inc.2026-12-07.17.frames.avi"


@pytest.mark.parametrize(
    "reference",
    ["../outside.jpg", "cam-1/../../x.jpg", "/etc/passwd.jpg", "cam-1/inc.png", "cam-1/\0.jpg", ""],
)
def test_a_reference_that_would_leave_the_folder_names_no_file(tmp_path: Path, reference: str) -> None:
    assert stem(tmp_path, reference) is None
    assert evidence_path(tmp_path, reference, SNAPSHOT) is None


def test_existing_lists_only_the_files_there(tmp_path: Path) -> None:
    reference = snapshot_name("cam-1", "inc-1")
    for suffix in (SNAPSHOT, FRAMES):
        path = evidence_path(tmp_path, reference, suffix)
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = sorted(p.name for p in existing(tmp_path, reference, (*BY_KIND["snapshots"], *BY_KIND["clips"])))
    assert found == ["inc-1.frames.avi", "inc-1.jpg"]


def test_the_tracks_file_round_trips(tmp_path: Path) -> None:
    start = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    tracks = Tracks(
        incident_id="inc-1",
        camera_id="cam-1",
        track_id=3,
        fps=5.0,
        key_index=1,
        frame_w=768,
        frame_h=576,
        frames=[
            TrackedFrame(start, [person(3, (0.1, 0.2, 0.2, 0.6))]),
            TrackedFrame(
                start + timedelta(seconds=0.2),
                [person(3, (0.11, 0.2, 0.21, 0.6)), person(4, (0.5, 0.2, 0.6, 0.7))],
            ),
            TrackedFrame(start + timedelta(seconds=0.4), []),
        ],
    )
    path = tmp_path / f"inc-1{TRACKS}"
    write_tracks(path, tracks)
    assert read_tracks(path) == tracks
    assert [p.name for p in tmp_path.iterdir()] == ["inc-1.tracks.json"]  # nothing left beside it


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not a readable tracks file"),
        ('{"schema": "other/1"}', "not a tracks file of schema shrinkwatch.evidence-tracks/1"),
        ('{"schema": "shrinkwatch.evidence-tracks/1"}', "a tracks file with a bad field"),
        (
            '{"schema": "shrinkwatch.evidence-tracks/1", "incident_id": "i", "camera_id": "c", "track_id": 1,'
            ' "fps": 5, "key_index": 0, "frame_w": 1, "frame_h": 1,'
            ' "frames": [{"ts": "2026-12-07T10:00:00+00:00", "objects": [{"box": [1, 1, 0, 0]}]}]}',
            "a tracks file with a bad field",
        ),
    ],
)
def test_a_file_that_is_not_a_tracks_file_is_refused_by_name(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "inc-1.tracks.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="inc-1.tracks.json") as raised:
        read_tracks(path)
    assert says in str(raised.value)
