"""`shrinkwatch flows run NAME`: run a dataflow with recovery under SHRINKWATCH_HOME.

Each process that runs a dataflow serves its Prometheus metrics (flows.metrics) at the
flow's port, `metrics_port` + its offset (`incidents` +1, `occupancy` +2, `health` +3, a flow
named by module path +9) + 10 x its process id under `--processes M` (shrinkwatch.metrics);
the parent of such a cluster runs no flow and serves none.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from contextlib import ExitStack, closing
from datetime import timedelta
from pathlib import Path
from typing import IO

from bytewax.dataflow import Dataflow
from bytewax.errors import BytewaxRuntimeError
from bytewax.recovery import RecoveryConfig

from flows.metrics import FLOW, LAG
from flows.progress import COUNTERS, report_periodically
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.metrics import serve
from shrinkwatch.settings import Settings

FLOWS = {"incidents": "flows.incidents", "occupancy": "flows.occupancy", "health": "flows.health"}
INPUT_TOPIC = {"incidents": "detections", "occupancy": "detections", "health": "camera-health"}
RECOVERY_PARTITIONS = 4


def build(settings: Settings, name: str) -> Dataflow:
    """A dataflow by name (see FLOWS) or by module path; the module's `build_flow(settings)`."""
    from flows.behaviour.signals import load_extensions

    load_extensions(settings.extensions)
    module_name = FLOWS.get(name, name)
    try:
        module = importlib.import_module(module_name) if "." in module_name else None
    except ModuleNotFoundError:
        module = None
    if module is None or not hasattr(module, "build_flow"):
        msg = (
            f"unknown dataflow {name!r}; give one of {', '.join(sorted(FLOWS))}, "
            "or an importable module path with a build_flow(settings) function"
        )
        raise ShrinkwatchError(msg)
    flow: Dataflow = module.build_flow(settings)
    return flow


def execute(
    flow: Dataflow,
    *,
    workers: int = 1,
    snapshot_s: float = 2.0,
    recovery_config: RecoveryConfig | None = None,
    process_id: int | None = None,
    addresses: list[str] | None = None,
) -> None:
    """Run a built dataflow in this process until it ends or SIGINT/SIGTERM (KeyboardInterrupt).

    Always through Bytewax's cluster_main, even for one worker: its workers run on their own
    threads while the main thread only waits for signals, so Ctrl-C stops them at a step
    boundary. (run_main, which `cli_main` picks for one worker, runs the worker on the main
    thread and turns an interrupt into a Rust panic with a backtrace.)
    """
    from bytewax._bytewax import cluster_main

    from flows.kafka_io import PLACEMENT

    # The sources place each camera's state with the worker reading it (flows.kafka_io).
    PLACEMENT.workers = workers * max(len(addresses or []), 1)
    cluster_main(
        flow,
        addresses or [],
        process_id or 0,
        epoch_interval=timedelta(seconds=snapshot_s),
        recovery_config=recovery_config,
        worker_count_per_proc=workers,
    )


def tune_gc() -> None:
    """Garbage-collect less often: a flow allocates a few objects per frame and keeps large,
    long-lived state, which the default thresholds would traverse again and again (about a
    sixth of a busy flow's time). Everything alive at start-up is frozen out of collection."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def _stop_flow(signum: int, frame: object) -> None:
    """SIGINT/SIGTERM: a sink waiting out a PostgreSQL outage gives up its batch (flows.sinks),
    and Bytewax stops at the next step boundary."""
    from flows.sinks import STOPPING

    STOPPING.set()
    raise KeyboardInterrupt


def _interrupted(exc: BaseException) -> bool:
    """True when a Bytewax error was caused by SIGINT/SIGTERM rather than a failure."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt) or "signal received" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _stop_with_parent() -> Callable[[], None]:
    """What a cluster's process runs before it execs: SIGTERM when the parent dies, even by
    SIGKILL (Linux's PR_SET_PDEATHSIG), so that a killed `flows run --processes M` leaves no
    process behind holding the cluster's ports for its restart. libc's prctl is looked up here,
    in the parent: a dlopen in a child forked from a process with threads (librdkafka's) can
    deadlock on a lock another thread held at the fork."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def in_child() -> None:
        prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was asked for
            os._exit(1)

    return in_child


def run_cluster(
    settings: Settings,
    name: str,
    *,
    processes: int,
    workers: int = 1,
    recovery: bool = True,
    snapshot_s: float = 2.0,
    settings_file: Path | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    """Run the dataflow as `processes` cooperating processes on this machine (Bytewax's
    cluster mode: they split the partitions and keys, and share one recovery store); stop
    them all on SIGINT/SIGTERM or when one fails, and they stop when this process is killed.
    Returns the exit status."""
    flow_id = run_flow(settings, name, workers=workers, recovery=recovery, check_only=True, progress=progress)
    if recovery:
        # The parent holds the store for all its processes (each child opens it too).
        directory = settings.home / "recovery" / name
        claim = claim_recovery(directory, name)  # noqa: F841 (held until this returns)
        carry_renamed_steps(_recovery_dir(settings, name), flow_id)
        check_recovered_topic(settings, directory, name, flow_id)  # before anything is moved
        if placed_for(settings, _recovery_dir(settings, name), flow_id, processes * workers):
            progress(f"camera state placed for {processes} x {workers} workers")
    base = settings.flow_cluster_port
    addresses = ";".join(f"127.0.0.1:{base + i}" for i in range(processes))
    command = [sys.executable, "-m", "cli"]
    if settings_file is not None:
        command += ["--settings", str(settings_file)]
    in_child = _stop_with_parent()
    children = [
        subprocess.Popen(
            [
                *command,
                *("flows", "run", name, "--workers", str(workers), "--snapshot-s", str(snapshot_s)),
                *("--process-id", str(i), "--addresses", addresses),
                *(() if recovery else ("--no-recovery",)),
            ],
            preexec_fn=in_child,  # before exec: only prctl
        )
        for i in range(processes)
    ]
    progress(
        f"dataflow {name!r}: {processes} processes x {workers} worker(s), "
        f"ports {base}..{base + processes - 1}"
    )

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while any(child.poll() is None for child in children):
        failed = [c for c in children if c.poll() not in (None, 0)]
        if failed and not status:
            status = failed[0].returncode
            progress(f"a process of dataflow {name!r} failed (exit {status}); stopping the others")
            stop()
        time.sleep(0.2)
    return status or max(abs(c.returncode) for c in children)


# Steps of the built-in flows renamed since an earlier release, by flow and by their id under
# the flow: their recovered state (the Kafka offsets) moves to the new id before the flow
# starts, so an upgrade resumes where it stopped instead of reading its topic again from the
# start. (Only the built-in flows: a data team's flow may well have a step called `read`.)
RENAMED_STEPS = {
    # The input became the `detections` operator.
    "incidents": {"read": "detections.read"},
    "occupancy": {"read": "detections.read"},
    # The input became `read_topic`, as for every flow. (Earlier versions applied the
    # renames above to this flow too, once, leaving a `detections.read` that it never reads.)
    "health": {"read": "camera_health.read"},
}


def carry_renamed_steps(directory: Path, flow_id: str) -> int:
    """Move a built-in flow's recovered state from old step ids to new ones (RENAMED_STEPS);
    return the rows moved."""
    if flow_id not in FLOWS:
        return 0
    moved = 0
    for part in sorted(directory.glob("*.sqlite3")):
        with closing(sqlite3.connect(part)) as db, db:
            for old, new in RENAMED_STEPS.get(flow_id, {}).items():
                moved += db.execute(
                    """UPDATE snaps SET step_id = :new WHERE step_id = :old
                       AND NOT EXISTS (SELECT 1 FROM snaps WHERE step_id = :new)""",
                    {"old": f"{flow_id}.{old}", "new": f"{flow_id}.{new}"},
                ).rowcount
    return moved


def recovered_topics(directory: Path, step_id: str) -> set[str]:
    """The topics an input step's recovered partitions were read from (its state keys are
    Bytewax's partition keys, `<partition>-<topic>`)."""
    topics: set[str] = set()
    for part in sorted(directory.glob("*.sqlite3")):
        with closing(sqlite3.connect(part)) as db:
            keys = db.execute("SELECT DISTINCT state_key FROM snaps WHERE step_id = ?", (step_id,))
            topics |= {key.split("-", 1)[1] for (key,) in keys.fetchall() if "-" in key}
    return topics


def check_recovered_topic(settings: Settings, directory: Path, name: str, flow_id: str) -> None:
    """A built-in flow's recovery store must have been written reading the topic it reads now:
    one written under another topic prefix cannot be resumed (Bytewax stops on a partition it
    does not know, again at every restart), so say so, and what to do, before starting."""
    if name not in INPUT_TOPIC:
        return
    topic = settings.topic(INPUT_TOPIC[name])
    other = sorted(recovered_topics(directory, f"{flow_id}.{RENAMED_STEPS[name]['read']}") - {topic})
    if other:
        msg = (
            f"the recovery store {directory} was written reading {', '.join(other)}, not {topic} "
            "(was topic_prefix changed?): set topic_prefix back, or move that folder away to start "
            f"this flow afresh from the start of {topic} (what it had recovered is then lost)"
        )
        raise ShrinkwatchError(msg)


# Steps of the built-in flows whose state is keyed by camera, placed for the worker count
# (flows.kafka_io.placed_key): a run with another count moves it to that count's keys.
CAMERA_KEYED_STEPS = {"incidents": ("behaviour",), "occupancy": ("minutes",)}


def kafka_partition(key: str, partitions: int) -> int:
    """The partition the product's producers (librdkafka's default partitioner,
    consistent_random: CRC-32 of the key) give a keyed message."""
    return zlib.crc32(key.encode()) % partitions


def last_worker_count(directory: Path) -> int | None:
    """The worker count of the last run that wrote this recovery store (None before any)."""
    last: tuple[int, int] | None = None
    for part in sorted(directory.glob("*.sqlite3")):
        with closing(sqlite3.connect(part)) as db:
            row = db.execute("SELECT ex_num, worker_count FROM exs ORDER BY ex_num DESC LIMIT 1").fetchone()
        if row is not None and (last is None or row[0] > last[0]):
            last = (row[0], row[1])
    return None if last is None else last[1]


def place_camera_state(directory: Path, flow_id: str, topic: str, partitions: int, workers: int) -> int:
    """Give a built-in flow's camera state the keys it has with `workers` workers reading
    `topic` of `partitions` partitions (the camera's partition as the producers choose it);
    return the keys moved. A key moves in place, in the recovery partition that holds it
    (Bytewax writes its next snapshots where its hash says: `keep_newest` tidies that up)."""
    steps = [f"{flow_id}.{step}" for step in CAMERA_KEYED_STEPS.get(flow_id, ())]
    if not steps:
        return 0
    from flows.kafka_io import placed_key, reader_workers

    readers = reader_workers([f"{i}-{topic}" for i in range(partitions)], workers)
    marks = ",".join("?" * len(steps))
    moved = 0
    for part in sorted(directory.glob("*.sqlite3")):
        with closing(sqlite3.connect(part)) as db, db:
            keys = db.execute(
                f"SELECT DISTINCT step_id, state_key FROM snaps WHERE step_id IN ({marks})", steps
            )
            for step, key in keys.fetchall():
                camera = key.split("~", 1)[0]
                new = placed_key(camera, readers[f"{kafka_partition(camera, partitions)}-{topic}"], workers)
                if new == key:
                    continue
                newest = "SELECT MAX(snap_epoch) FROM snaps WHERE step_id = ? AND state_key = ?"
                held, had = (db.execute(newest, (step, k)).fetchone()[0] for k in (new, key))
                # The newer of the two stays (a camera that went quiet left its older key behind).
                drop = key if held is not None and held > had else new
                db.execute("DELETE FROM snaps WHERE step_id = ? AND state_key = ?", (step, drop))
                if drop == new:
                    db.execute(
                        "UPDATE snaps SET state_key = ? WHERE step_id = ? AND state_key = ?", (new, step, key)
                    )
                moved += 1
    return moved


def keep_newest(directory: Path, flow_id: str) -> None:
    """Where a camera's key has snapshots in several recovery partitions (moved by
    place_camera_state, written since where Bytewax's hash puts it), delete all but those of
    the partition with the newest: every partition's newest would be loaded, in no set order."""
    steps = [f"{flow_id}.{step}" for step in CAMERA_KEYED_STEPS.get(flow_id, ())]
    if not steps:
        return
    marks = ",".join("?" * len(steps))
    newest: dict[tuple[str, str], tuple[int, Path]] = {}
    held: dict[tuple[str, str], list[Path]] = {}
    for part in sorted(directory.glob("*.sqlite3")):
        with closing(sqlite3.connect(part)) as db:
            rows = db.execute(
                f"SELECT step_id, state_key, MAX(snap_epoch) FROM snaps WHERE step_id IN ({marks}) "
                "GROUP BY step_id, state_key",
                steps,
            ).fetchall()
        for step, key, epoch in rows:
            held.setdefault((step, key), []).append(part)
            if (step, key) not in newest or epoch > newest[(step, key)][0]:
                newest[(step, key)] = (epoch, part)
    for (step, key), parts in held.items():
        for part in parts:
            if part != newest[(step, key)][1]:
                with closing(sqlite3.connect(part)) as db, db:
                    db.execute("DELETE FROM snaps WHERE step_id = ? AND state_key = ?", (step, key))


def placed_for(settings: Settings, directory: Path, flow_id: str, workers: int) -> int:
    """Before a built-in flow over sw.detections starts with `workers` workers in all: its
    camera state moved to the keys of that count, when the store was written with another
    (returns the keys moved), and each key's snapshots kept in one recovery partition."""
    if flow_id not in CAMERA_KEYED_STEPS:
        return 0
    moved = 0
    if last_worker_count(directory) not in (None, workers):
        moved = _place(settings, directory, flow_id, workers)
    keep_newest(directory, flow_id)
    return moved


def _place(settings: Settings, directory: Path, flow_id: str, workers: int) -> int:
    """place_camera_state with sw.detections' partitions as Kafka has them now."""
    from confluent_kafka.admin import AdminClient

    from shrinkwatch.kafka_admin import client_config

    topic = settings.topic("detections")
    meta = AdminClient(client_config(settings.kafka_config(), log_level=0)).list_topics(topic, timeout=10)
    partitions = len(meta.topics[topic].partitions or {}) if topic in meta.topics else 0
    if not partitions:
        return 0
    return place_camera_state(directory, flow_id, topic, partitions, workers)


def claim_recovery(directory: Path, name: str) -> IO[str]:
    """A lock on the recovery store (taken before the store is made), held while the
    returned file stays open: two runs of one flow on one store would each snapshot over
    the other and corrupt it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    handle = directory.with_name(f"{name}.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        msg = (
            f"dataflow {name!r} is already running with the recovery store {directory}; "
            "stop it first (or give this run another SHRINKWATCH_HOME)"
        )
        raise ShrinkwatchError(msg) from None
    return handle


def _recovery_dir(settings: Settings, name: str) -> Path:
    """The flow's recovery store, created (atomically) on first use."""
    from bytewax.recovery import init_db_dir

    directory = settings.home / "recovery" / name
    if not directory.exists():
        # Initialise aside, then rename: a crash here never leaves a half-made store.
        staging = directory.with_name(f"{name}.init")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        init_db_dir(staging, RECOVERY_PARTITIONS)
        staging.rename(directory)
    return directory


def run_flow(
    settings: Settings,
    name: str,
    *,
    workers: int = 1,
    recovery: bool = True,
    snapshot_s: float = 2.0,
    check_only: bool = False,
    process_id: int | None = None,
    addresses: list[str] | None = None,
    progress_every_s: float = 10.0,
    progress: Callable[[str], None] = print,
) -> str:
    """Build and run the dataflow until SIGINT/SIGTERM (one process of a cluster when
    `process_id` and `addresses` are given); return its flow id."""
    from flows.catalog import SiteCatalog
    from shrinkwatch.kafka_admin import ensure_topics, wait_for_kafka
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    flow = build(settings, name)
    wait_for_kafka(settings.kafka_config(), timeout_s=30)
    ensure_topics(settings)
    # Fail early, with a clear message, if the database is unreachable or behind.
    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)
        if name == "occupancy":  # its days have partitions (rows of other days still land)
            from warehouse.partitions import ensure_partitions

            ensure_partitions(conn)
    SiteCatalog.for_settings(settings).load()
    if check_only:
        progress(f"dataflow {name!r} builds; Kafka {settings.kafka_servers} and PostgreSQL answer")
        return flow.flow_id

    with ExitStack() as held:
        recovery_config = None
        if recovery:
            directory = settings.home / "recovery" / name
            if process_id is None:  # a cluster's parent claims the store for its processes
                held.enter_context(claim_recovery(directory, name))
            _recovery_dir(settings, name)
            if process_id is None and carry_renamed_steps(directory, flow.flow_id):
                progress("recovered state carried over to this version's step names")
            check_recovered_topic(settings, directory, name, flow.flow_id)
            if process_id is None and placed_for(settings, directory, flow.flow_id, workers):
                progress(f"camera state placed for {workers} worker(s)")
            recovery_config = RecoveryConfig(str(directory))
            progress(f"recovery in {directory}")
        # SIGINT and SIGTERM end the run: Bytewax stops at the next check, and a restart
        # resumes from the last snapshot. Set both here, like the other long-running commands:
        # Python leaves SIGINT ignored when the parent ignored it (a job started in the
        # background).
        signal.signal(signal.SIGINT, _stop_flow)
        signal.signal(signal.SIGTERM, _stop_flow)
        FLOW.name = name
        held.enter_context(serve(settings, name if name in FLOWS else "flow", instance=process_id or 0))
        LAG.start(settings.kafka_config())
        held.callback(LAG.stop)
        stop_reporting = threading.Event()
        report_periodically(progress, progress_every_s, stop_reporting)
        tune_gc()
        source = f" from {settings.topic(INPUT_TOPIC[name])}" if name in INPUT_TOPIC else ""
        progress(f"running dataflow {name!r} with {workers} worker(s){source}")
        try:
            execute(
                flow,
                workers=workers,
                snapshot_s=snapshot_s,
                recovery_config=recovery_config,
                process_id=process_id,
                addresses=addresses,
            )
        except KeyboardInterrupt:
            pass
        except BytewaxRuntimeError as exc:
            from flows.sinks import STOPPING

            # A sink that gave up waiting for PostgreSQL because of the stop fails its step.
            if not (_interrupted(exc) or STOPPING.is_set()):
                raise
        finally:
            stop_reporting.set()
    progress(f"dataflow {name!r} stopped ({COUNTERS.line()})")
    return flow.flow_id
