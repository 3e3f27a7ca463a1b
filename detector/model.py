"""YOLOv8 through Ultralytics, converted once at this edge into plain arrays."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detector.export import prepare_model, resolve_model_path
from detector.pose import PoseModel
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Boxes:
    """Detections of one frame in pixels: xyxy (N,4), conf (N,), cls (N,) as numpy arrays."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    def __len__(self) -> int:
        return int(self.conf.shape[0])


class Detector:
    """One loaded model shared by every camera of the process (calls are serialised)."""

    def __init__(self, settings: Settings, say: Callable[[str], None] | None = None) -> None:
        source, backend = prepare_model(settings, say)
        from ultralytics import YOLO

        try:
            self.model: Any = YOLO(source, task="detect")
        except Exception as exc:
            msg = (
                f"cannot load the YOLOv8 model {settings.model!r}: {exc}\n"
                "Set SHRINKWATCH_MODEL to a local weights file (e.g. ../shared/models/yolov8n.pt)."
            )
            raise ShrinkwatchError(msg) from None
        self.source = source
        self.backend = backend
        self.names: dict[int, str] = dict(self.model.names)
        by_name = {name: idx for idx, name in self.names.items()}
        unknown = [c for c in settings.classes if c not in by_name]
        if unknown:
            msg = f"classes: {', '.join(unknown)} not among the model's classes"
            raise ShrinkwatchError(msg)
        self.class_ids = sorted(by_name[c] for c in settings.classes)
        self.imgsz = settings.imgsz
        self.conf = settings.conf
        self.redact_conf = min(settings.redact_conf, settings.conf)
        self._lock = threading.Lock()
        self.pose: PoseModel | None = None
        if settings.pose_model:
            pose_path = resolve_model_path(settings.pose_model)
            if pose_path is None:
                msg = f"pose_model: {settings.pose_model!r} not found; give a path to a YOLOv8-pose model"
                raise ShrinkwatchError(msg)
            self.pose = PoseModel(pose_path, settings.imgsz, settings.conf)
        log.info(
            "model %s loaded (%s, %d classes, imgsz %d)",
            Path(source).name,
            self.backend,
            len(self.names),
            self.imgsz,
        )

    def infer(self, image: np.ndarray) -> Boxes:
        """Detect the classes of interest in one BGR image."""
        return self.infer_faint(image)[0]

    def infer_faint_batch(self, images: list[np.ndarray]) -> list[tuple[Boxes, Boxes]]:
        """`infer_faint` for several images (of different cameras) at once, in their order."""
        return [self.infer_faint(image) for image in images]

    def infer_faint(self, image: np.ndarray) -> tuple[Boxes, Boxes]:
        """Detect the classes of interest in one BGR image: (those at `conf` or more; the others
        at `redact_conf` or more, which are only ever blurred), from one run of the model."""
        with self._lock:
            result = self.model.predict(
                image, imgsz=self.imgsz, conf=self.redact_conf, classes=self.class_ids, verbose=False
            )[0]
        boxes = result.boxes.cpu().numpy()
        xyxy, conf = boxes.xyxy.astype(np.float32), boxes.conf.astype(np.float32)
        cls = boxes.cls.astype(np.int32)
        sure = conf >= self.conf
        return Boxes(xyxy=xyxy[sure], conf=conf[sure], cls=cls[sure]), Boxes(
            xyxy=xyxy[~sure], conf=conf[~sure], cls=cls[~sure]
        )
