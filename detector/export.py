"""Where the model comes from: a local file or folder, the runtime and precision for it, and
the export of .pt weights to ONNX or OpenVINO, done once per machine and cached (Ultralytics'
exporters and NNCF run here, and only here: the runtime in detector.model never needs PyTorch
for an exported model, and a store box without PyTorch is told to export where it is installed).

Precision (`precision`: auto | fp32 | int8) is OpenVINO's, on a CPU. `int8` is the fp32 IR
quantized by NNCF on calibration frames from footage (the sample video unless another is
given), letterboxed as inference letterboxes them. `auto` is int8 where its accuracy holds:
person-seconds per zone within 2 % of the fp32 model's, a check (detector.accuracy) that
`shrinkwatch models export` runs once and records beside the int8 model (ACCURACY_FILE);
without a recorded check, or where it failed, `auto` is fp32.

An exported OpenVINO model takes any batch (its first input dimension is dynamic, the image
size fixed), so one export serves every `infer_batch`. The cache is keyed by the weights'
content hash, the image size, the precision and, for int8, the calibration footage's hash.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)

BACKEND_NAMES = {"pytorch": "PyTorch", "onnx": "ONNX", "openvino": "OpenVINO"}
ACCURACY_FILE = "accuracy.json"  # the int8 check's verdict, beside the int8 model it judged
CALIBRATION_FRAMES = 128  # spread evenly over the calibration footage
EXPORT_HINT = (
    "export it once where the full install is (`shrinkwatch models export --imgsz 640 --precision auto`), "
    "copy the folder it prints here and set SHRINKWATCH_MODEL to it"
)


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


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def exporter_available() -> bool:
    """Whether this install can export .pt weights (PyTorch and Ultralytics; a store box cannot)."""
    try:
        import torch  # noqa: F401
        import ultralytics  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(requested: str, weights: Path | None) -> str:
    """The runtime to use: `requested`, or for `auto` the fastest this machine has.

    `auto` keeps an exported model (OpenVINO folder, .onnx) as it is; for .pt weights it
    picks PyTorch where CUDA is present and OpenVINO on a CPU (2.6x PyTorch's frames/s on
    the CPUs we measured, docs/BENCHMARKS.md), exported once from the .pt.
    """
    if requested != "auto":
        return requested
    if weights is None:
        return "pytorch"  # a model name Ultralytics resolves itself
    if backend_of(weights) != "pytorch":
        return backend_of(weights)
    if _cuda_available():
        return "pytorch"
    return "openvino" if _openvino_available() else "pytorch"


def choose_precision(requested: str, backend: str, int8_holds: bool | None) -> str:
    """fp32 or int8 for .pt weights run by `backend`: int8 is OpenVINO's; `auto` is int8 only
    where the recorded accuracy check held (`int8_holds`; None: never checked)."""
    if backend != "openvino":
        if requested == "int8":
            msg = (
                f"precision int8 is for OpenVINO on a CPU, but the backend is {BACKEND_NAMES[backend]}: "
                "set backend to auto or openvino, or precision to auto or fp32"
            )
            raise ShrinkwatchError(msg)
        return "fp32"
    if requested != "auto":
        return requested
    return "int8" if int8_holds else "fp32"


def _announce_while(work: Callable[[], None], say: Callable[[str], None], what: str, every_s: float) -> None:
    """Run `work`, saying every `every_s` seconds that it is still running."""
    done = threading.Event()
    started = time.monotonic()

    def heartbeat() -> None:
        while not done.wait(every_s):
            say(f"still {what} ({time.monotonic() - started:.0f} s)...")

    thread = threading.Thread(target=heartbeat, name="export-progress", daemon=True)
    thread.start()
    try:
        work()
    finally:
        done.set()
        thread.join()


def default_calibration() -> Path | None:
    """The footage int8 is calibrated on when none is given: the sample video, where present."""
    return shared_file("video", "vtest.avi")


def cache_folder(
    weights: Path, backend: str, imgsz: int, cache: Path, precision: str, calibration: Path | None
) -> Path:
    """Where an export of `weights` is cached: by content hash, image size, precision and, for
    int8, the calibration footage's hash (OpenVINO exports take any batch: no batch in the key)."""
    key = f"{_sha256(weights)[:16]}-{imgsz}"
    if backend != "openvino":
        return cache / key
    if precision == "int8":
        if calibration is None:
            msg = "int8 needs calibration footage: give a video (--calibration); the sample video is not here"
            raise ShrinkwatchError(msg)
        return cache / f"{key}-int8-{_sha256(calibration)[:12]}-anybatch"
    return cache / f"{key}-fp32-anybatch"


def exported_model(
    weights: Path,
    backend: str,
    imgsz: int,
    cache: Path,
    say: Callable[[str], None] | None = None,
    heartbeat_s: float = 10.0,
    precision: str = "fp32",
    calibration: Path | None = None,
) -> Path:
    """The weights in another runtime's format and precision, exported once and cached.

    Exporting runs offline (Ultralytics' exporters for ONNX and OpenVINO; NNCF quantizes the
    fp32 OpenVINO model to int8 on frames of `calibration`); the cache (`cache_folder`) is
    shared by every process of the machine: a lock makes a second process wait for the first
    one's export instead of repeating it. The export is announced, with a line every
    `heartbeat_s` while it runs.
    """
    if backend == "pytorch" or backend_of(weights) == backend:
        return weights
    if backend_of(weights) != "pytorch":
        msg = f"cannot convert {weights.name} ({backend_of(weights)}) to {backend}; give the .pt weights"
        raise ShrinkwatchError(msg)
    say = say or log.info
    int8 = backend == "openvino" and precision == "int8"
    if int8:
        calibration = calibration or default_calibration()
    folder = cache_folder(weights, backend, imgsz, cache, precision, calibration)
    suffix = "int8_openvino_model" if int8 else "openvino_model"
    target = folder / (f"{weights.stem}.onnx" if backend == "onnx" else f"{weights.stem}_{suffix}")
    if target.exists():
        return target
    fp32 = exported_model(weights, backend, imgsz, cache, say, heartbeat_s) if int8 else None
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{folder.name}-{backend}.lock").open("w") as lock:
        if not _try_lock(lock):
            say(f"waiting for another process exporting {weights.stem} to {BACKEND_NAMES[backend]}...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        name = BACKEND_NAMES[backend] + (" int8" if int8 else "")
        say(f"exporting {weights.stem} to {name} at imgsz {imgsz}, once (cached in {folder})...")
        started = time.monotonic()
        staging = folder.with_name(f"{folder.name}.{backend}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)

        def export() -> None:
            if fp32 is not None and calibration is not None:
                frames = calibration_frames(calibration, imgsz, CALIBRATION_FRAMES)
                say(f"calibrating on {len(frames)} frames of {calibration.name}...")
                quantize(fp32, staging / target.name, frames)
            else:
                shutil.copy2(weights, staging / weights.name)
                _ultralytics_export(staging / weights.name, backend, imgsz)
                if backend == "openvino":
                    _any_batch(staging / target.name, imgsz)

        _announce_while(export, say, f"exporting {weights.stem} to {name}", heartbeat_s)
        folder.mkdir(parents=True, exist_ok=True)
        (staging / target.name).rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        say(f"exported {weights.stem} to {name} in {time.monotonic() - started:.0f} s")
    return target


def _ultralytics_export(weights: Path, backend: str, imgsz: int) -> None:
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # our progress lines instead of its dozens
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation
            # OpenVINO: traced with every dimension free, then the image size fixed (_any_batch).
            YOLO(str(weights)).export(format=backend, imgsz=imgsz, dynamic=backend == "openvino")
    finally:
        LOGGER.setLevel(level)


def _any_batch(folder: Path, imgsz: int) -> None:
    """Fix an OpenVINO model's image size and leave its batch free; its metadata then says it
    is not dynamic, so that a runtime letterboxes every frame to the square it was made for."""
    import openvino as ov
    import yaml

    xml = next(folder.glob("*.xml"))
    model = ov.Core().read_model(xml)
    model.reshape({model.input().get_any_name(): ov.PartialShape([-1, 3, imgsz, imgsz])})
    resaved = folder / f"{xml.stem}.resaved.xml"
    ov.save_model(model, resaved, compress_to_fp16=False)
    del model
    resaved.replace(xml)
    resaved.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    meta_path = folder / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    meta.update(dynamic=False, batch=1, imgsz=[imgsz, imgsz])
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")


def letterboxed(image: np.ndarray, imgsz: int) -> np.ndarray:
    """One BGR frame as the model takes it (1, 3, imgsz, imgsz), RGB in 0..1: letterboxed by
    Ultralytics' LetterBox to the square, as inference letterboxes it."""
    from ultralytics.data.augment import LetterBox

    square = np.asarray(LetterBox(new_shape=(imgsz, imgsz), auto=False, stride=32)(image=image))
    return np.ascontiguousarray(square[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def calibration_frames(video: Path, imgsz: int, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over `video`, letterboxed as inference letterboxes them."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(np.linspace(0, max(total - 1, 0), num=min(count, max(total, 1)), dtype=int).tolist())
        frames: list[np.ndarray] = []
        index = 0
        while len(frames) < len(wanted):
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                frames.append(letterboxed(image, imgsz))
            index += 1
    finally:
        capture.release()
    if not frames:
        msg = f"no frames could be read from the calibration video {video}"
        raise ShrinkwatchError(msg)
    return frames


def _head_scope(model: Any) -> Any:
    """NNCF's scope to leave in floating point: the detection head's box decoding (DFL) and
    its sigmoids, as Ultralytics' own int8 export leaves them (quantized, boxes drift)."""
    import nncf

    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    head = sigmoids[-1].split("/", 1)[0]
    names = [
        op.get_friendly_name()
        for op in ops
        if op.get_type_name() == "Sigmoid" or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))
    ]
    return nncf.IgnoredScope(names=names)


def quantize(fp32: Path, target: Path, frames: list[np.ndarray]) -> None:
    """The fp32 OpenVINO model in `fp32` quantized to int8 by NNCF on `frames`, saved in `target`."""
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.WARNING)  # our progress lines instead of a line per node
    xml = next(fp32.glob("*.xml"))
    model = ov.Core().read_model(xml)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(frames),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(frames),
        ignored_scope=_head_scope(model),
    )
    target.mkdir(parents=True)
    ov.save_model(quantized, target / xml.name, compress_to_fp16=False)
    shutil.copy2(fp32 / "metadata.yaml", target / "metadata.yaml")


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def record_verdict(int8: Path, verdict: dict[str, Any]) -> None:
    """Keep the accuracy check's verdict on an int8 model beside it (ACCURACY_FILE)."""
    partial = int8 / f"{ACCURACY_FILE}.partial"
    partial.write_text(json.dumps(verdict, indent=2, sort_keys=True), encoding="utf-8")
    partial.replace(int8 / ACCURACY_FILE)


def recorded_verdict(int8: Path) -> dict[str, Any] | None:
    """The accuracy check's verdict recorded beside an int8 model, if it was checked."""
    try:
        verdict: dict[str, Any] = json.loads((int8 / ACCURACY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return verdict


def checked_int8(weights: Path, imgsz: int, cache: Path) -> tuple[Path, bool] | None:
    """The newest int8 export of `weights` at `imgsz` whose accuracy was checked, and whether
    it held; None when none was checked."""
    found = []
    for folder in cache.glob(f"{_sha256(weights)[:16]}-{imgsz}-int8-*-anybatch"):
        target = folder / f"{weights.stem}_int8_openvino_model"
        verdict = recorded_verdict(target)
        if verdict is not None:
            found.append((target.stat().st_mtime, target, bool(verdict.get("holds"))))
    if not found:
        return None
    _mtime, target, holds = max(found)
    return target, holds


@dataclass(frozen=True)
class CachedExport:
    """One exported model in the cache."""

    path: Path
    backend: str
    precision: str
    imgsz: int
    verdict: dict[str, Any] | None


def cached_exports(cache: Path) -> list[CachedExport]:
    """The exported models in `cache` (folders named by `cache_folder`), oldest first."""
    found = []
    for folder in sorted(cache.glob("*-*"), key=lambda f: f.stat().st_mtime):
        parts = folder.name.split("-")
        if not folder.is_dir() or not parts[1].isdigit() or folder.name.endswith(".partial"):
            continue
        for model in sorted(folder.iterdir()):
            backend = backend_of(model)
            if backend == "pytorch":
                continue
            precision = "int8" if "int8" in parts[2:] else "fp32"
            found.append(CachedExport(model, backend, precision, int(parts[1]), recorded_verdict(model)))
    return found


def prepare_model(settings: Settings, say: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Where to load the model from and with which runtime: (path or name, backend).

    Resolves the model setting, chooses the backend (`choose_backend`) and the precision
    (`choose_precision`), and exports the .pt once if they need it, announcing the export
    through `say`. .pt weights where PyTorch is not installed (a store box) are a
    ShrinkwatchError that says how to export them.
    """
    say = say or log.info
    local = resolve_model_path(settings.model)
    if (local is None or backend_of(local) == "pytorch") and not exporter_available():
        msg = (
            f"model {settings.model!r} is PyTorch weights, and this install runs exported models "
            f"only (no PyTorch or Ultralytics): {EXPORT_HINT}"
        )
        raise ShrinkwatchError(msg)
    prepare_ultralytics(settings, offline=local is not None)
    if local is None:
        return settings.model, "pytorch"
    backend = choose_backend(settings.backend, local)
    if backend_of(local) != "pytorch":
        return str(exported_model(local, backend, settings.imgsz, settings.model_cache_dir(), say)), backend
    checked = (
        checked_int8(local, settings.imgsz, settings.model_cache_dir()) if backend == "openvino" else None
    )
    precision = choose_precision(settings.precision, backend, checked[1] if checked else None)
    if backend == "openvino" and settings.precision == "auto":
        if checked is None:
            say(
                "int8's accuracy was not checked for this model and imgsz: fp32 until "
                "`shrinkwatch models export --precision auto` checks it"
            )
        elif not checked[1]:
            say("int8 did not hold fp32's accuracy for this model and imgsz (its check): fp32")
    if precision == "int8" and checked is not None:
        return str(checked[0]), backend
    try:
        path = exported_model(
            local, backend, settings.imgsz, settings.model_cache_dir(), say, precision=precision
        )
    except ShrinkwatchError:
        raise
    except Exception as exc:
        msg = f"exporting {local.name} to {backend} failed: {exc}"
        raise ShrinkwatchError(msg) from None
    return str(path), backend


def prepare_ultralytics(settings: Settings, offline: bool) -> None:
    """Set Ultralytics' environment before it is imported (no installs, settings under home)."""
    # Ultralytics reads these at import: never pip-install at run time, keep its settings
    # under SHRINKWATCH_HOME, and make no network calls when the weights are local.
    config_dir = settings.home / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    if offline:
        os.environ.setdefault("YOLO_OFFLINE", "1")
