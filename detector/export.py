"""Where the model comes from: a local file or folder, the runtime for it, and the export of
.pt weights to ONNX or OpenVINO, done once per machine and cached (Ultralytics' exporters run
here, and only here: the runtime in detector.model never needs PyTorch for an exported model).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)

BACKEND_NAMES = {"pytorch": "PyTorch", "onnx": "ONNX", "openvino": "OpenVINO"}


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


def exported_model(
    weights: Path,
    backend: str,
    imgsz: int,
    cache: Path,
    say: Callable[[str], None] | None = None,
    heartbeat_s: float = 10.0,
) -> Path:
    """The weights in another runtime's format, exported once and cached by content hash.

    Exporting runs offline (Ultralytics' exporters for ONNX and OpenVINO); the cache lives
    under `cache`/<sha256 of the .pt>-<imgsz>/ and is shared by every process of the
    machine: a lock makes a second process wait for the first one's export instead of
    repeating it. The export is announced, with a line every `heartbeat_s` while it runs.
    """
    if backend == "pytorch" or backend_of(weights) == backend:
        return weights
    if backend_of(weights) != "pytorch":
        msg = f"cannot convert {weights.name} ({backend_of(weights)}) to {backend}; give the .pt weights"
        raise ShrinkwatchError(msg)
    say = say or log.info
    folder = cache / f"{_sha256(weights)[:16]}-{imgsz}"
    target = folder / (f"{weights.stem}.onnx" if backend == "onnx" else f"{weights.stem}_openvino_model")
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{folder.name}-{backend}.lock").open("w") as lock:
        if not _try_lock(lock):
            say(f"waiting for another process exporting {weights.stem} to {BACKEND_NAMES[backend]}...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        name = BACKEND_NAMES[backend]
        say(f"exporting {weights.stem} to {name} at imgsz {imgsz}, once (cached in {folder})...")
        started = time.monotonic()
        staging = folder.with_name(f"{folder.name}.{backend}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copy2(weights, staging / weights.name)

        def export() -> None:
            from ultralytics import YOLO
            from ultralytics.utils import LOGGER

            level = LOGGER.level
            LOGGER.setLevel(logging.WARNING)  # our progress lines instead of its dozens
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation
                    YOLO(str(staging / weights.name)).export(format=backend, imgsz=imgsz)
            finally:
                LOGGER.setLevel(level)

        _announce_while(export, say, f"exporting {weights.stem} to {name}", heartbeat_s)
        folder.mkdir(parents=True, exist_ok=True)
        (staging / target.name).rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        say(f"exported {weights.stem} to {name} in {time.monotonic() - started:.0f} s")
    return target


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def prepare_model(settings: Settings, say: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Where to load the model from and with which runtime: (path or name, backend).

    Resolves the model setting, chooses the backend (`choose_backend`) and exports the .pt
    once if that backend needs it, announcing the export through `say`.
    """
    local = resolve_model_path(settings.model)
    _prepare_ultralytics(settings, offline=local is not None)
    if local is None:
        return settings.model, "pytorch"
    backend = choose_backend(settings.backend, local)
    try:
        path = exported_model(local, backend, settings.imgsz, settings.model_cache_dir(), say)
    except ShrinkwatchError:
        raise
    except Exception as exc:
        msg = f"exporting {local.name} to {backend} failed: {exc}"
        raise ShrinkwatchError(msg) from None
    return str(path), backend


def _prepare_ultralytics(settings: Settings, offline: bool) -> None:
    # Ultralytics reads these at import: never pip-install at run time, keep its settings
    # under SHRINKWATCH_HOME, and make no network calls when the weights are local.
    config_dir = settings.home / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    if offline:
        os.environ.setdefault("YOLO_OFFLINE", "1")
