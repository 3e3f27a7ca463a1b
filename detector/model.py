"""The detector's runtime: a loaded model, its output converted once at this edge into plain arrays.

An OpenVINO IR folder (exported once by detector.export, or an IR given as the model, such as
../shared/models/yolov8n_int8_openvino_model) runs with OpenVINO alone (detector.yolo_openvino):
a store box needs neither PyTorch nor Ultralytics, and neither is imported. An IR of a fixed
input size runs at that size: `Detector.imgsz` is the IR's, with a warning where the `imgsz`
setting says otherwise. Anything else (.pt
weights on PyTorch, CPU or GPU; an .onnx on ONNX Runtime) runs through Ultralytics, imported
only then, as the full install has it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from detector.export import exporter_available, prepare_model, resolve_model_path
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

    def where(self, mask: np.ndarray) -> Boxes:
        """The boxes where `mask` is true."""
        return Boxes(xyxy=self.xyxy[mask], conf=self.conf[mask], cls=self.cls[mask])


class _Engine(Protocol):
    names: dict[int, str]
    input_size: int | None  # the long side of a model's fixed input, None where it takes any

    def detect(self, images: list[np.ndarray], conf: float, classes: list[int]) -> list[Boxes]: ...

    def close(self) -> None: ...


class _OpenVino:
    """An IR run by OpenVINO directly (detector.yolo_openvino)."""

    def __init__(self, folder: Path, imgsz: int, streams: int = 0) -> None:
        from detector.yolo_openvino import OpenVinoYolo

        self.model = OpenVinoYolo(folder, imgsz, streams=streams)
        self.names = self.model.names or {i: str(i) for i in range(self.model.nc)}
        self.input_size = max(self.model.input_hw) if self.model.input_hw else None

    def detect(self, images: list[np.ndarray], conf: float, classes: list[int]) -> list[Boxes]:
        return [self._boxes(output, fit, conf, classes) for output, fit in self.model.run(images)]

    def detect_on_stream(self, image: np.ndarray, conf: float, classes: list[int]) -> Boxes:
        return self._boxes(*self.model.run_on_stream(image), conf, classes)

    def _boxes(self, output: np.ndarray, fit: Any, conf: float, classes: list[int]) -> Boxes:
        from detector.yolo_openvino import decode, to_image

        found = decode(output, self.model.nc, conf, np.array(classes, np.int32))
        return Boxes(xyxy=to_image(found.xyxy, fit), conf=found.conf, cls=found.cls)

    def close(self) -> None:
        self.model.close()


class _Ultralytics:
    """.pt (PyTorch) or .onnx (ONNX Runtime) weights through Ultralytics, one image at a time."""

    def __init__(self, source: str, imgsz: int) -> None:
        from ultralytics import YOLO

        self.model: Any = YOLO(source, task="detect")
        self.names = dict(self.model.names)
        self.imgsz = imgsz
        self.input_size: int | None = None  # Ultralytics letterboxes to `imgsz`

    def detect(self, images: list[np.ndarray], conf: float, classes: list[int]) -> list[Boxes]:
        out = []
        for image in images:
            result = self.model.predict(image, imgsz=self.imgsz, conf=conf, classes=classes, verbose=False)[0]
            boxes = result.boxes.cpu().numpy()
            out.append(
                Boxes(
                    xyxy=boxes.xyxy.astype(np.float32),
                    conf=boxes.conf.astype(np.float32),
                    cls=boxes.cls.astype(np.int32),
                )
            )
        return out

    def close(self) -> None:
        pass  # PyTorch and ONNX Runtime end with the interpreter as they are


def load_hint(full_install: bool) -> str:
    """What to set when a model does not load: an exported model folder, which every install
    runs; .pt weights too only where the full install (PyTorch, Ultralytics) is."""
    folder = (
        "an exported model folder (`shrinkwatch models export` makes one where the full install is, "
        "e.g. yolov8n_int8_openvino_model)"
    )
    if full_install:
        return f"Set SHRINKWATCH_MODEL to {folder}, or to .pt weights (e.g. ../shared/models/yolov8n.pt)."
    return f"Set SHRINKWATCH_MODEL to {folder}: this install runs exported models only."


class Detector:
    """One loaded model shared by every camera of the process: `infer_faint` calls one at a time,
    `infer_faint_on_stream` calls together, one per stream (OpenVINO)."""

    def __init__(self, settings: Settings, say: Callable[[str], None] | None = None) -> None:
        source, backend = prepare_model(settings, say)
        try:
            self._engine: _Engine = (
                _OpenVino(Path(source), settings.imgsz, settings.infer_streams)
                if backend == "openvino" and Path(source).is_dir()
                else _Ultralytics(source, settings.imgsz)
            )
        except Exception as exc:
            msg = f"cannot load the YOLOv8 model {settings.model!r}: {exc}\n{load_hint(exporter_available())}"
            raise ShrinkwatchError(msg) from None
        self.source = source
        self.backend = backend
        self.names: dict[int, str] = dict(self._engine.names)
        by_name = {name: idx for idx, name in self.names.items()}
        unknown = [c for c in settings.classes if c not in by_name]
        if unknown:
            msg = f"classes: {', '.join(unknown)} not among the model's classes"
            raise ShrinkwatchError(msg)
        self.class_ids = sorted(by_name[c] for c in settings.classes)
        self.imgsz = self._engine.input_size or settings.imgsz  # what the model really runs at
        if self.imgsz != settings.imgsz:
            log.warning(
                "the model %s takes %d-pixel images (its input size is fixed): the imgsz setting "
                "(%d) does not apply to it; export it at that size to change it",
                Path(source).name,
                self.imgsz,
                settings.imgsz,
            )
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

    def infer_faint(self, image: np.ndarray) -> tuple[Boxes, Boxes]:
        """Detect the classes of interest in one BGR image: (those at `conf` or more; the others
        at `redact_conf` or more, which are only ever blurred), from one run of the model."""
        return self.infer_faint_batch([image])[0]

    def infer_faint_batch(self, images: list[np.ndarray]) -> list[tuple[Boxes, Boxes]]:
        """`infer_faint` for several images (of different cameras) at once, in their order: in
        flight together, one per stream (OpenVINO; one batch for an IR of a static batch)."""
        with self._lock:
            found = self._engine.detect(images, self.redact_conf, self.class_ids)
        return [(b.where(b.conf >= self.conf), b.where(b.conf < self.conf)) for b in found]

    @property
    def streams(self) -> int:
        """How many frames the model runs at once from different threads (`infer_faint_on_stream`):
        one per core for an OpenVINO model, else 1 (its calls are serialised)."""
        return self._engine.model.streams if isinstance(self._engine, _OpenVino) else 1

    def infer_faint_on_stream(self, image: np.ndarray) -> tuple[Boxes, Boxes]:
        """`infer_faint` on a stream of its own (OpenVINO): several cameras' threads call it
        at once and their frames run together, one per core, none waiting for another's; a
        model without streams serialises them as `infer_faint` does."""
        if not isinstance(self._engine, _OpenVino):
            return self.infer_faint(image)
        b = self._engine.detect_on_stream(image, self.redact_conf, self.class_ids)
        return b.where(b.conf >= self.conf), b.where(b.conf < self.conf)

    def close(self) -> None:
        """Let go of the models (detector.yolo_openvino.OpenVinoYolo.close), once no call is
        running: the end of `detect`, before the interpreter's own teardown."""
        with self._lock:
            self._engine.close()
            if self.pose is not None:
                self.pose.close()
