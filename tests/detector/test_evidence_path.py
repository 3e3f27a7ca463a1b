"""The snapshot shows the person's path: their foot points over the evidence window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detector.evidence import PATH, RingFrame, annotate, track_path
from shrinkwatch.contracts import DetectedObject

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def person(track: int, x: float) -> DetectedObject:
    return DetectedObject(
        track_id=track, class_name="person", class_id=0, conf=0.9, box=(x, 0.3, x + 0.1, 0.8)
    )


def test_the_path_follows_the_incidents_track_only() -> None:
    frames = [
        RingFrame(T0 + timedelta(seconds=i), b"", [person(9, 0.8), person(7, 0.1 + 0.1 * i)])
        for i in range(5)
    ]
    frames.insert(2, RingFrame(T0, b"", [person(9, 0.8)]))  # track 7 not seen in one frame
    path = track_path(frames, 7)
    assert [x for x, _ in path] == pytest.approx([0.15 + 0.1 * i for i in range(5)])
    assert {y for _, y in path} == {0.8}
    assert track_path(frames, None) == []  # a group incident has no one track

    image = np.zeros((100, 200, 3), np.uint8)
    drawn = annotate(image, [person(7, 0.5)], 7, None, track_path(frames, 7))
    middle = drawn[80, round(0.35 * 200)]  # on the line between the second and third points
    assert tuple(int(v) for v in middle) == PATH
    assert image.sum() == 0  # the frame itself is untouched
