"""ByteTrack per camera, turning pixel boxes into the contract's normalised objects."""

from __future__ import annotations

from typing import Any

import numpy as np

from detector.model import Boxes
from shrinkwatch.contracts import DetectedObject


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
        tracks = self._tracker.update(_TrackerInput(boxes.xyxy, boxes.conf, boxes.cls), None)
        out = []
        for row in tracks:
            x1, y1, x2, y2, track_id, score, cls = (float(v) for v in row[:7])
            box = (
                min(max(x1 / width, 0.0), 1.0),
                min(max(y1 / height, 0.0), 1.0),
                min(max(x2 / width, 0.0), 1.0),
                min(max(y2 / height, 0.0), 1.0),
            )
            out.append(
                DetectedObject(
                    track_id=int(track_id),
                    class_name=self._names.get(int(cls), str(int(cls))),
                    class_id=int(cls),
                    conf=round(min(max(score, 0.0), 1.0), 4),
                    box=(round(box[0], 5), round(box[1], 5), round(box[2], 5), round(box[3], 5)),
                )
            )
        return out
