"""Shared set-up for the benchmarks: footage, settings, the real services and the run's own data.

A benchmark touches no data it did not make. It reads no `SHRINKWATCH_` variable but
SHRINKWATCH_SHARED_DIR (they are taken out of its environment, and so out of every process
it starts): its services are its own, started under .shrinkwatch-bench on ports 31392-31394.
On them it works in a database it creates (`sw_bench_<hex>`, migrated) and in topics under a
prefix it makes up (`bench<hex>.`), and drops both when it ends, however it ends (an error,
Ctrl-C). It refuses to run (SystemExit) when it cannot create its database, and the steps
that destroy data (dropping the database, deleting the topics) refuse any database or prefix
this process did not make. The one thing a run may leave on purpose is a seed kept for later
runs (`keep_as_seed`, `--reuse-seed`): a database of its own name that later runs copy and
never change. The chain-scale benchmarks (warehouse_rollups, dashboard_pages, api_latency)
share one seed of each size (`seed_database`); `chain` gives them their data seeded or copied
and the rollups built.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psycopg
from confluent_kafka.admin import AdminClient

from shrinkwatch.logs import scrub
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import REPO_ROOT, Settings, load_settings
from shrinkwatch.settings import child_environment as settings_environment

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


def forget_environment() -> list[str]:
    """Take every SHRINKWATCH_ variable but SHRINKWATCH_SHARED_DIR out of this process's
    environment (a shell's production settings must not steer a benchmark or its children);
    return the names taken."""
    names = [v for v in os.environ if v.startswith("SHRINKWATCH_") and v != "SHRINKWATCH_SHARED_DIR"]
    for name in names:
        del os.environ[name]
    return names


def bench_settings(**overrides: Any) -> Settings:
    """Settings for benchmark runs: own home, own ports, a topic prefix made up for the run,
    nothing from the environment."""
    ignored = forget_environment()
    if ignored:
        names = ", ".join(sorted(ignored))
        print(f"# benchmarks run on their own services and data; ignoring {names}", file=sys.stderr)
    values: dict[str, Any] = {"home": BENCH_HOME, "model": str(weights()), **BENCH_PORTS}
    values["topic_prefix"] = new_prefix()
    values.update(overrides)
    return load_settings(None, **values)


# What this process made: database DSN -> the server DSN it was made from; topic prefixes.
_DATABASES: dict[str, str] = {}
_PREFIXES: set[str] = set()


def new_prefix() -> str:
    """A topic prefix made up here (`bench<hex>.`); only such prefixes' topics may be deleted."""
    prefix = f"bench{secrets.token_hex(4)}."
    _PREFIXES.add(prefix)
    return prefix


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _exists(conn: psycopg.Connection[Any], database: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None


@contextmanager
def own_database(server_dsn: str, template: str | None = None) -> Iterator[str]:
    """A database made here on `server_dsn`'s server (`sw_bench_<hex>`, a copy of `template`
    when that database exists there), migrated; yields its DSN, the only way a benchmark gets
    one, and drops it when the block ends. SystemExit when it cannot be created."""
    from warehouse.db import connect
    from warehouse.migrate import migrate

    name = f"sw_bench_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
            copy = template is not None and _exists(conn, template)
            source = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if copy else ""
            conn.execute(f'CREATE DATABASE "{name}"{source}')
    except psycopg.Error as exc:
        msg = (
            f"refusing to run: could not create the benchmark's own database on {scrub(server_dsn)} "
            f"({_first_line(exc)}); a benchmark writes only to a database it creates"
        )
        raise SystemExit(msg) from None
    dsn = psycopg.conninfo.make_conninfo(server_dsn, dbname=name)
    _DATABASES[dsn] = server_dsn
    try:
        with connect(dsn) as conn:
            migrate(conn, progress=lambda _m: None)
        yield dsn
    finally:
        drop_database(dsn)


def drop_database(dsn: str) -> None:
    """Drop a database that own_database made in this process; SystemExit, touching nothing,
    for any other."""
    name = psycopg.conninfo.conninfo_to_dict(dsn).get("dbname")
    if dsn not in _DATABASES:
        msg = f"refusing to drop database {name}: this benchmark run did not create it"
        raise SystemExit(msg)
    with psycopg.connect(_DATABASES[dsn], autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    del _DATABASES[dsn]


def keep_as_seed(dsn: str, seed: str) -> None:
    """Copy this run's database (just seeded; no session open on it) to `seed` on its server,
    for later runs to start from (own_database(template=seed)); an existing `seed` is kept."""
    if dsn not in _DATABASES:
        msg = "refusing to keep a seed: this benchmark run did not create the database it would copy"
        raise SystemExit(msg)
    name = psycopg.conninfo.conninfo_to_dict(dsn).get("dbname")
    with psycopg.connect(_DATABASES[dsn], autocommit=True, connect_timeout=10) as conn:
        if not _exists(conn, seed):
            conn.execute(f'CREATE DATABASE "{seed}" TEMPLATE "{name}" STRATEGY FILE_COPY')


def prefix_topics(settings: Settings) -> list[str]:
    """The broker's topics under settings.topic_prefix."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers, "log_level": 3})
    return sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix))


def delete_topics(settings: Settings) -> None:
    """Delete every topic under settings.topic_prefix, a prefix new_prefix made in this process;
    SystemExit, touching nothing, for any other."""
    if settings.topic_prefix not in _PREFIXES:
        msg = f"refusing to delete the topics {settings.topic_prefix}*: this benchmark run did not make them"
        raise SystemExit(msg)
    from shrinkwatch.kafka_admin import delete_prefixed

    delete_prefixed(settings.kafka_servers, [settings.topic_prefix])


@contextmanager
def own_data(settings: Settings, template: str | None = None) -> Iterator[Settings]:
    """The run's own data on `settings`' servers: the contract topics under its prefix (one
    made up by new_prefix) and a database of its own (own_database); yields the settings that
    name them, and deletes and drops both when the block ends, however it ends."""
    from shrinkwatch.kafka_admin import ensure_topics

    if settings.topic_prefix not in _PREFIXES:
        msg = f"refusing to run: the topic prefix {settings.topic_prefix!r} was not made up for this run"
        raise SystemExit(msg)
    try:
        ensure_topics(settings)
        with own_database(settings.database_dsn, template) as dsn:
            yield settings.model_copy(update={"database_url": dsn})
    finally:
        delete_topics(settings)


@contextmanager
def services(settings: Settings, template: str | None = None) -> Iterator[Settings]:
    """Kafka and PostgreSQL for the run (those not running are started here and stopped after),
    and on them the run's own data (own_data); yields the settings that name it."""
    from infra import services as infra

    if settings.topic_prefix not in _PREFIXES:  # `up` creates topics under it
        msg = f"refusing to run: the topic prefix {settings.topic_prefix!r} was not made up for this run"
        raise SystemExit(msg)
    started = infra.up(settings, progress=lambda _m: None)
    try:
        with own_data(settings, template) as run:
            yield run
    finally:
        infra.down(settings, progress=lambda _m: None, only=set(started))


def seed_database(days: int, stores: int, cameras: int) -> str:
    """The name of the database a --reuse-seed run keeps its seed in, for runs of the same size."""
    return f"sw_bench_seed_{days}d_{stores}s_{cameras}c"


def chain_options(parser: argparse.ArgumentParser) -> None:
    """The chain seed's size (--days 90, --stores 20, --cameras 10) and --reuse-seed."""
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument(
        "--reuse-seed",
        action="store_true",
        help="Start from a copy of the seed an earlier --reuse-seed run of the same size kept (any of "
        "warehouse_rollups, dashboard_pages, api_latency); without one, seed and keep one for the next run",
    )


@contextmanager
def chain(args: argparse.Namespace, progress: Callable[[str], None] = print) -> Iterator[Settings]:
    """The run's own services and data (services) holding the chain seed of chain_options' size:
    seeded here (`warehouse seed`'s history up to this hour), or with --reuse-seed copied from
    the kept seed (seeded, its rollups built, and kept first when there is none); the rollups
    built or brought up to date. Yields the settings that name it."""
    from warehouse.db import connect
    from warehouse.rollups import run_rollups
    from warehouse.seed import seed_history, seeded_stores

    seed = seed_database(args.days, args.stores, args.cameras) if args.reuse_seed else None
    with services(bench_settings(), template=seed) as settings:  # a database and topics of its own
        dsn = settings.database_dsn
        with connect(dsn) as conn:
            seeded = seeded_stores(conn) == args.stores
            if not seeded:
                seed_history(
                    conn,
                    days=args.days,
                    stores=args.stores,
                    cameras=args.cameras,
                    replace=True,
                    progress=progress,
                )
        run_rollups(dsn, progress=lambda _m: None)
        if not seeded and seed is not None:
            keep_as_seed(dsn, seed)  # with its rollups: the next run need not build them again
        yield settings


def child_environment(settings: Settings, name: str) -> dict[str, str]:
    """Environment for a `shrinkwatch` child process that uses exactly `settings`: a settings
    file (HOME/name.yaml), the secrets it cannot hold, and no other SHRINKWATCH_ variable but
    SHRINKWATCH_SHARED_DIR (shrinkwatch.settings.child_environment)."""
    return settings_environment(settings, settings.home / f"{name}.yaml", keep=("SHRINKWATCH_SHARED_DIR",))


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
