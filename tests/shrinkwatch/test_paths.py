"""An incident's evidence file by its reference: found, not yet there, or refused, never an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from shrinkwatch.paths import evidence_file


def test_a_saved_snapshot_and_its_clip_are_found(tmp_path: Path) -> None:
    (tmp_path / "cam-1").mkdir()
    (tmp_path / "cam-1" / "inc-1.jpg").write_bytes(b"jpeg")
    (tmp_path / "cam-1" / "inc-1.mp4").write_bytes(b"mp4")
    assert evidence_file(tmp_path, "cam-1/inc-1.jpg") == (tmp_path / "cam-1" / "inc-1.jpg").resolve()
    assert evidence_file(tmp_path, "cam-1/inc-1.jpg", ".mp4") == (tmp_path / "cam-1" / "inc-1.mp4").resolve()


@pytest.mark.parametrize(
    "reference",
    [
        None,
        "",
        "cam-1/not-saved-yet.jpg",  # named by the flow, not written yet
        "cam-1",  # a folder
        "../outside.jpg",
        "/etc/passwd",
        "cam-1/" + "x" * 300 + ".jpg",  # longer than a file name may be
        "cam-1/nul\x00.jpg",
    ],
)
def test_anything_else_is_not_there(tmp_path: Path, reference: str | None) -> None:
    (tmp_path / "cam-1").mkdir()
    (tmp_path.parent / "outside.jpg").write_bytes(b"jpeg")
    assert evidence_file(tmp_path, reference) is None
