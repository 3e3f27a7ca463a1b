"""ByteTrack per camera, turning pixel boxes into the contract's normalised objects.

The tracker returns only confirmed tracks: ByteTrack confirms a new person on their second
matched frame, and one it lost and found again can drop out for a frame. Those people are
still in the picture, so `untracked` gives back every person detection that no tracked object
stands for, without a track id: they are kept for redaction only (heads blurred in the live
view and the evidence, written in the tracks file) and are never published.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detector.model import Boxes
from detector.pose import iou_matrix
from shrinkwatch.contracts import DetectedObject

MATCH_IOU = 0.5  # a tracked box stands for the detection it overlaps this much (one each)


class _TrackerInput:
    """The minimal results object BYTETracker reads: conf, cls, xywh and boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy, self.conf, self.cls = xyxy, conf, cls

    @property
    def xywh(self) -> np.ndarray:
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2.0
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([xy, wh], axis=1)

    def __len__(self) -> int:
        return int(self.conf.shape[0])

    def __getitem__(self, mask: Any) -> _TrackerInput:
        return _TrackerInput(self.xyxy[mask], self.conf[mask], self.cls[mask])


def _unit(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), 5)


def to_object(
    xyxy: tuple[float, float, float, float],
    track_id: int | None,
    score: float,
    cls: int,
    names: dict[int, str],
    width: int,
    height: int,
) -> DetectedObject:
    """A pixel box as the contract's object (normalised, clipped to the frame)."""
    x1, y1, x2, y2 = xyxy
    return DetectedObject(
        track_id=track_id,
        class_name=names.get(cls, str(cls)),
        class_id=cls,
        conf=round(min(max(score, 0.0), 1.0), 4),
        box=(_unit(x1 / width), _unit(y1 / height), _unit(x2 / width), _unit(y2 / height)),
    )


class CameraTracker:
    """Stable track ids for one camera's frames (ByteTrack, Ultralytics' bytetrack.yaml)."""

    def __init__(self, names: dict[int, str]) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml")))
        self._tracker = BYTETracker(cfg)
        self._names = names

    def update(self, boxes: Boxes, width: int, height: int) -> list[DetectedObject]:
        """Associate this frame's boxes with tracks; only confirmed tracks are returned."""
        return self.update_seen(boxes, width, height)[0]

    def update_seen(
        self, boxes: Boxes, width: int, height: int
    ) -> tuple[list[DetectedObject], list[DetectedObject]]:
        """Associate this frame's boxes with tracks: (the confirmed tracks, with the tracker's
        boxes, which are what is published; the same tracks with the box of the detection each
        matched in this frame). A track's box is its motion model's estimate and lags a moving
        person by a few pixels: what is blurred and drawn on the frame is where the model saw
        the person in it."""
        tracks = self._tracker.update(_TrackerInput(boxes.xyxy, boxes.conf, boxes.cls), None)
        published, seen = [], []
        for row in tracks:
            x1, y1, x2, y2, track_id, score, cls = (float(v) for v in row[:7])
            obj = to_object((x1, y1, x2, y2), int(track_id), score, int(cls), self._names, width, height)
            published.append(obj)
            idx = int(row[7]) if len(row) > 7 else -1
            if 0 <= idx < len(boxes):
                dx1, dy1, dx2, dy2 = (float(v) for v in boxes.xyxy[idx])
                box = to_object((dx1, dy1, dx2, dy2), None, score, int(cls), self._names, width, height).box
                obj = obj.model_copy(update={"box": box})
            seen.append(obj)
        return published, seen


def untracked(
    boxes: Boxes, tracked: list[DetectedObject], names: dict[int, str], width: int, height: int
) -> list[DetectedObject]:
    """The person detections of `boxes` that no tracked object stands for, without a track id
    (for redaction only). Each tracked box stands for at most one detection, the one it
    overlaps most (IoU >= MATCH_IOU, best overlaps first), so a person half hidden behind a
    tracked one is not taken for them."""
    people = [i for i in range(len(boxes)) if names.get(int(boxes.cls[i])) == "person"]
    if not people:
        return []
    scale = np.array([width, height, width, height], np.float32)
    persons = [o.box for o in tracked if o.class_name == "person"]
    ious = iou_matrix(boxes.xyxy[people] / scale, np.array(persons, np.float32).reshape(-1, 4))
    claimed: set[int] = set()
    used: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        d, t = (int(v) for v in np.unravel_index(flat, ious.shape))
        if ious[d, t] < MATCH_IOU:
            break
        if d in claimed or t in used:
            continue
        claimed.add(d)
        used.add(t)
    out = []
    for d, i in enumerate(people):
        if d not in claimed:
            x1, y1, x2, y2 = (float(v) for v in boxes.xyxy[i])
            score, cls = float(boxes.conf[i]), int(boxes.cls[i])
            out.append(to_object((x1, y1, x2, y2), None, score, cls, names, width, height))
    return out
