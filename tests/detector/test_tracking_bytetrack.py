"""Our ByteTrack against Ultralytics' BYTETracker, fed the same detections of vtest.avi.

The shared int8 IR's detections of all 795 frames (at redact_conf 0.1, the product's
classes) go to both trackers, once as the camera reader feeds them (conf >= 0.25) and once
with the low-score boxes too (ByteTrack's second association). Bound: the number of
confirmed tracks and the person-seconds per zone (the frame's quarters, by foot point)
within 1 % of Ultralytics'; and on at least 99 % of frames the same confirmed boxes within
a pixel. (Measured: the same on every frame: one algorithm with the same parameters.)
Then the tracker's promises on hand-made boxes: confirmation on the second matched frame,
a faint box keeps a track alive, a lost track keeps its id within the buffer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detector.model import Boxes
from detector.tracking import TRACK_BUFFER, ByteTrack, CameraTracker
from detector.yolo_openvino import OpenVinoYolo, decode, to_image
from shrinkwatch.paths import shared_file
from tests.support import VTEST

INT8 = shared_file("models", "yolov8n_int8_openvino_model")
FPS = 10.0  # vtest.avi
CLASSES = np.array([0, 24, 26, 28], np.int32)  # person, backpack, handbag, suitcase


class _Results:
    """What Ultralytics' BYTETracker reads of a frame's results."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy, self.conf, self.cls = xyxy, conf, cls

    @property
    def xywh(self) -> np.ndarray:
        return np.concatenate(
            [(self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2, self.xyxy[:, 2:] - self.xyxy[:, :2]], 1
        )

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: Any) -> _Results:
        return _Results(self.xyxy[mask], self.conf[mask], self.cls[mask])


@pytest.fixture(scope="module")
def detections() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if INT8 is None or VTEST is None:
        pytest.skip("needs ../shared/models/yolov8n_int8_openvino_model and ../shared/video/vtest.avi")
    model = OpenVinoYolo(Path(INT8), 640)
    capture = cv2.VideoCapture(str(VTEST))
    out = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        [(output, fit)] = model.run([image])
        found = decode(output, model.nc, 0.1, CLASSES)
        out.append((to_image(found.xyxy, fit), found.conf, found.cls))
    return out


def person_seconds(frames: list[np.ndarray]) -> tuple[int, np.ndarray]:
    """(distinct track ids, seconds of tracked people per quarter of the 768x576 frame by foot point)."""
    ids: set[int] = set()
    zones = np.zeros(4)
    for rows in frames:
        for x1, _y1, x2, y2, track_id in rows:
            ids.add(int(track_id))
            zones[int((x1 + x2) / 2 >= 384) + 2 * int(y2 >= 288)] += 1 / FPS
    return len(ids), zones


@pytest.mark.slow
@pytest.mark.parametrize("floor", [0.25, 0.1])
def test_our_bytetrack_tracks_as_ultralytics_does(
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]], floor: float
) -> None:
    byte_tracker = pytest.importorskip("ultralytics.trackers.byte_tracker")
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    theirs = byte_tracker.BYTETracker(IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml"))))
    ours = ByteTrack()
    mine: list[np.ndarray] = []
    reference: list[np.ndarray] = []
    for xyxy, conf, cls in detections:
        keep = conf >= floor
        rows = theirs.update(_Results(xyxy[keep], conf[keep], cls[keep]))
        reference.append(np.array([r[:5] for r in rows], np.float64).reshape(-1, 5))
        tracks = ours.update(xyxy[keep], conf[keep], cls[keep])
        mine.append(np.array([[*t.xyxy, t.track_id] for t in tracks], np.float64).reshape(-1, 5))
    tracks, zones = person_seconds(mine)
    ref_tracks, ref_zones = person_seconds(reference)
    print(
        f"floor {floor}: tracks {tracks} vs {ref_tracks}; person-s per zone",
        zones.round(1),
        ref_zones.round(1),
    )
    assert ref_tracks >= 30 and ref_zones.sum() > 300  # people were tracked through the video
    assert abs(tracks - ref_tracks) <= 0.01 * ref_tracks
    np.testing.assert_allclose(zones, ref_zones, rtol=0.01)

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        a, b = a[np.lexsort(a[:, :2].T[::-1])], b[np.lexsort(b[:, :2].T[::-1])]
        return a.shape == b.shape and bool(np.allclose(a[:, :4], b[:, :4], atol=1.0))

    assert sum(same(a, b) for a, b in zip(mine, reference, strict=True)) >= 0.99 * len(mine)


def boxes(*rows: tuple[float, float, float, float, float]) -> Boxes:
    array = np.array(rows, np.float32).reshape(-1, 5)
    return Boxes(xyxy=array[:, :4], conf=array[:, 4], cls=np.zeros(len(array), np.int32))


def test_a_new_person_is_confirmed_on_their_second_matched_frame() -> None:
    tracker = CameraTracker({0: "person"})
    first = (100, 100, 150, 250, 0.9)
    assert [o.track_id for o in tracker.update(boxes(first), 640, 480)] == [1]  # the first frame: at once
    newcomer = (400, 100, 450, 250, 0.9)
    assert [o.track_id for o in tracker.update(boxes(first, newcomer), 640, 480)] == [1]
    assert sorted(o.track_id for o in tracker.update(boxes(first, newcomer), 640, 480)) == [1, 2]


def test_a_faint_box_keeps_a_track_and_a_lost_one_keeps_its_id_within_the_buffer() -> None:
    tracker = ByteTrack()
    here, nobody = np.array([[100.0, 100.0, 150.0, 250.0]]), np.zeros((0, 4))

    def ids(found: np.ndarray, conf: float = 0.9) -> list[int]:
        return [
            t.track_id for t in tracker.update(found, np.full(len(found), conf), np.zeros(len(found), int))
        ]

    assert [ids(here) for _ in range(3)] == [[1]] * 3
    assert ids(here, conf=0.15) == [1]  # seen faintly (between the low and high thresholds): still tracked
    assert ids(here, conf=0.05) == []  # below the low threshold: not seen, lost
    # Lost for TRACK_BUFFER frames in all: not returned, then found again with its id.
    assert [ids(nobody) for _ in range(TRACK_BUFFER - 1)] == [[]] * (TRACK_BUFFER - 1)
    assert ids(here) == [1]
    # Gone for longer than the buffer: someone new there, confirmed on their second frame.
    assert [ids(nobody) for _ in range(TRACK_BUFFER + 1)] == [[]] * (TRACK_BUFFER + 1)
    assert [ids(here), ids(here)] == [[], [2]]
