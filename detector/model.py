"""YOLOv8 through Ultralytics, converted once at this edge into plain arrays."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detector.pose import PoseModel
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)


def resolve_model_path(model: str) -> Path | None:
    """A local file or folder for the model setting: as given, else the shared copy by name."""
    path = Path(model).expanduser()
    if path.exists():
        return path.resolve()
    if path.parent == Path("."):
        return shared_file("models", path.name)
    return None


def backend_of(path: Path) -> str:
    """Which runtime a model file or folder is for."""
    if path.is_dir() and any(path.glob("*.xml")):
        return "openvino"
    if path.suffix == ".onnx":
        return "onnx"
    return "pytorch"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def exported_model(weights: Path, backend: str, imgsz: int, cache: Path) -> Path:
    """The weights in another runtime's format, exported once and cached by content hash.

    Exporting runs offline (Ultralytics' exporters for ONNX and OpenVINO); the cache lives
    under SHRINKWATCH_HOME/models/<sha256 of the .pt>-<imgsz>/.
    """
    if backend == "pytorch" or backend_of(weights) == backend:
        return weights
    if backend_of(weights) != "pytorch":
        msg = f"cannot convert {weights.name} ({backend_of(weights)}) to {backend}; give the .pt weights"
        raise ShrinkwatchError(msg)
    folder = cache / f"{_sha256(weights)[:16]}-{imgsz}"
    target = folder / (f"{weights.stem}.onnx" if backend == "onnx" else f"{weights.stem}_openvino_model")
    if target.exists():
        return target
    log.info("exporting %s to %s at imgsz %d (once; cached in %s)", weights.name, backend, imgsz, folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(weights, staging / weights.name)
    from ultralytics import YOLO

    YOLO(str(staging / weights.name)).export(format=backend, imgsz=imgsz)
    folder.mkdir(parents=True, exist_ok=True)
    (staging / target.name).rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _prepare_ultralytics(settings: Settings, offline: bool) -> None:
    # Ultralytics reads these at import: never pip-install at run time, keep its settings
    # under SHRINKWATCH_HOME, and make no network calls when the weights are local.
    config_dir = settings.home / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    if offline:
        os.environ.setdefault("YOLO_OFFLINE", "1")


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

    def __init__(self, settings: Settings) -> None:
        local = resolve_model_path(settings.model)
        _prepare_ultralytics(settings, offline=local is not None)
        from ultralytics import YOLO

        if local is not None and settings.backend != "auto":
            try:
                local = exported_model(local, settings.backend, settings.imgsz, settings.home / "models")
            except ShrinkwatchError:
                raise
            except Exception as exc:
                msg = f"exporting {local.name} to {settings.backend} failed: {exc}"
                raise ShrinkwatchError(msg) from None
        source = str(local) if local else settings.model
        try:
            self.model: Any = YOLO(source, task="detect")
        except Exception as exc:
            msg = (
                f"cannot load the YOLOv8 model {settings.model!r}: {exc}\n"
                "Set SHRINKWATCH_MODEL to a local weights file (e.g. ../shared/models/yolov8n.pt)."
            )
            raise ShrinkwatchError(msg) from None
        self.source = source
        self.backend = backend_of(Path(source)) if local else "pytorch"
        self.names: dict[int, str] = dict(self.model.names)
        by_name = {name: idx for idx, name in self.names.items()}
        unknown = [c for c in settings.classes if c not in by_name]
        if unknown:
            msg = f"classes: {', '.join(unknown)} not among the model's classes"
            raise ShrinkwatchError(msg)
        self.class_ids = sorted(by_name[c] for c in settings.classes)
        self.imgsz = settings.imgsz
        self.conf = settings.conf
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
        with self._lock:
            result = self.model.predict(
                image, imgsz=self.imgsz, conf=self.conf, classes=self.class_ids, verbose=False
            )[0]
        boxes = result.boxes.cpu().numpy()
        return Boxes(
            xyxy=boxes.xyxy.astype(np.float32),
            conf=boxes.conf.astype(np.float32),
            cls=boxes.cls.astype(np.int32),
        )
