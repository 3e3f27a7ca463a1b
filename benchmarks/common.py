"""Shared set-up for the benchmarks: footage, settings and the real services."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shrinkwatch.paths import shared_file
from shrinkwatch.settings import REPO_ROOT, Settings, load_settings

BENCH_HOME = REPO_ROOT / ".shrinkwatch-bench"
# Below the kernel's ephemeral range (32768+), so client sockets never hold them.
BENCH_PORTS = {"kafka_port": 31392, "kafka_controller_port": 31393, "postgres_port": 31394}


def _shared(*parts: str) -> Path:
    path = shared_file(*parts)
    if path is None:
        msg = f"benchmarks need ../shared/{'/'.join(parts)}"
        raise SystemExit(msg)
    return path


def footage() -> Path:
    """The sample video (fails clearly without it)."""
    return _shared("video", "vtest.avi")


def weights() -> Path:
    """The YOLOv8n .pt weights."""
    return _shared("models", "yolov8n.pt")


def frames(count: int, step: int = 2) -> list[np.ndarray]:
    """`count` frames of the sample video, every `step`-th (5 fps from its 10)."""
    cap = cv2.VideoCapture(str(footage()))
    out: list[np.ndarray] = []
    index = 0
    while len(out) < count:
        ok, image = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(str(footage()))
            continue
        if index % step == 0:
            out.append(image)
        index += 1
    cap.release()
    return out


def bench_settings(**overrides: Any) -> Settings:
    """Settings for benchmark runs: own home, own ports, topic prefix per run."""
    values: dict[str, Any] = {"home": BENCH_HOME, "model": str(weights()), **BENCH_PORTS}
    if os.environ.get("SHRINKWATCH_KAFKA_BOOTSTRAP"):
        values["kafka_bootstrap"] = os.environ["SHRINKWATCH_KAFKA_BOOTSTRAP"]
    values["topic_prefix"] = f"bench{int(time.time())}."
    values.update(overrides)
    return load_settings(None, **values)


@contextmanager
def services(settings: Settings) -> Iterator[None]:
    """Kafka and PostgreSQL for the run, with the run's topics and the current schema;
    stops what it started."""
    from infra import services as infra
    from shrinkwatch.kafka_admin import ensure_topics
    from warehouse.db import connect
    from warehouse.migrate import migrate

    started = infra.up(settings, progress=lambda _m: None)
    try:
        ensure_topics(settings)
        with connect(settings.database_dsn) as conn:
            migrate(conn, progress=lambda _m: None)
        yield
    finally:
        infra.down(settings, progress=lambda _m: None, only=set(started))


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall time of `repeat` runs of fn, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and the vector extensions that decide inference speed here
    (AVX2, AVX-512 and its VNNI/BF16 parts, AMX), from /proc/cpuinfo where there is one."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or platform.machine(), []
    fields = dict(
        (key.strip(), value.strip()) for key, _, value in (line.partition(":") for line in text.splitlines())
    )
    flags = set(fields.get("flags", "").split())
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    return fields.get("model name", platform.machine()), [f for f in wanted if f in flags]


def machine() -> str:
    """One line about where the figures come from: CPU, its vector flags, cores, Python."""
    model, flags = cpu()
    return (
        f"{model} [{' '.join(flags) or 'no AVX2'}], {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
