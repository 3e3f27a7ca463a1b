"""Scaling of the incidents flow: 2 processes ÷ 1 process, frames/s, on one pre-filled topic,
with each camera's state where its partition is read (now) and where Bytewax's hash of the
camera id puts it (before).

`sw.detections` gets 4 partitions (cameras spread over them by key); the flow runs as a
Bytewax cluster of 1, then 2 processes with 1 worker each (what `shrinkwatch flows run
--processes M` starts), reading to the end of the topic. With 2 processes it runs twice:
`local`, each camera's state kept by the process that reads its partition (flows.kafka_io
placed keys: no frame crosses between processes), and `hashed`, keyed by the camera id
alone as before (about half the frames are sent to the other process). Rates are
steady-state: from the moment every process has done WARMUP frames to the last frame.
Rounds are interleaved (1, 2 local, 2 hashed, 1, ...); medians are reported, each 2-process
figure with its ratio to the same run's 1-process figure. The machine's core count (and
Kafka and PostgreSQL beside the flow on it) bounds the ratio.
Usage: python -m benchmarks.flow_scaling [--cameras 100] [--seconds 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.common import bench_settings, child_environment, machine, services
from benchmarks.flow_throughput import ZONES, fill_topic
from shrinkwatch.settings import Settings, load_settings

WARMUP = 1000
BASE_PORT = 31395  # below the ephemeral range, next to the benchmarks' service ports


def child(settings_file: str, process_id: int, processes: int, placement: str) -> None:
    """One process of the cluster, with the parent's run settings (its database and topics):
    run to the end of the topic, print its timings as JSON."""

    from flows import kafka_io
    from flows.behaviour.stores import StoreInfo
    from flows.behaviour.tracks import Thresholds
    from flows.catalog import SiteCatalog
    from flows.incidents import build_flow
    from flows.progress import COUNTERS
    from flows.run import execute, tune_gc

    settings = load_settings(Path(settings_file))
    kafka_io.PLACEMENT.local = placement == "local"
    catalog = SiteCatalog.fixed(
        {f"cam-{i}": ZONES for i in range(10_000)},
        {"bench": StoreInfo("bench", thresholds=Thresholds(loiter_s=10))},
        Thresholds(),
    )
    flow = build_flow(settings, catalog, tail=False)
    marks: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        last = -1
        while not done.wait(0.001):
            if COUNTERS.frames >= WARMUP and "start" not in marks:
                marks["start"] = time.time()
            if COUNTERS.frames != last:
                last, marks["end"] = COUNTERS.frames, time.time()

    threading.Thread(target=watch, daemon=True).start()
    tune_gc()
    execute(  # as `flows run` does
        flow,
        workers=1,
        snapshot_s=2.0,
        process_id=process_id if processes > 1 else None,
        addresses=[f"127.0.0.1:{BASE_PORT + i}" for i in range(processes)] if processes > 1 else None,
    )
    done.set()
    crossed = len(kafka_io._CROSSED) if placement == "local" else 0
    print(json.dumps({"frames": COUNTERS.frames, "crossed": crossed, **marks}), flush=True)


def cluster_fps(settings: Settings, processes: int, placement: str = "local") -> float:
    """Steady-state frames/s of the flow as `processes` processes (placement: local|hashed)."""
    env = child_environment(settings, "scaling-settings")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.flow_scaling",
                "--child",
                env["SHRINKWATCH_SETTINGS_FILE"],
                str(i),
                str(processes),
                placement,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(processes)
    ]
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    if any(r["crossed"] for r in results):
        print(f"# warning: {sum(r['crossed'] for r in results)} camera(s) kept away from their reader")
    frames = sum(r["frames"] for r in results) - WARMUP * processes
    return frames / (max(r["end"] for r in results) - max(r["start"] for r in results))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    with services(bench_settings(topic_partitions=4)) as settings:  # a database and topics of its own
        count, _ = fill_topic(settings, args.cameras, args.seconds)
        print(
            f"# flow scaling: {count} frames ({args.cameras} cameras x {args.seconds} s at 5 fps, 6 people), "
            f"4 partitions, 1 worker per process; {machine()}",
            flush=True,
        )
        ones, locals_, hashed = [], [], []
        for round_ in range(1, args.rounds + 1):
            ones.append(cluster_fps(settings, 1))
            locals_.append(cluster_fps(settings, 2, "local"))
            hashed.append(cluster_fps(settings, 2, "hashed"))
            print(
                f"round {round_}: 1 process {ones[-1]:7.0f} frames/s | 2 processes, state local "
                f"{locals_[-1]:7.0f} ({locals_[-1] / ones[-1]:.2f}x) | 2 processes, state hashed (before) "
                f"{hashed[-1]:7.0f} ({hashed[-1] / ones[-1]:.2f}x)",
                flush=True,
            )
        one, two, before = (statistics.median(x) for x in (ones, locals_, hashed))
        print(
            f"median of {args.rounds}: 1 process {one:7.0f} frames/s | 2 processes {two:7.0f} frames/s "
            f"| 2 ÷ 1 = {two / one:.2f} with each camera's state where it is read; "
            f"{before / one:.2f} keyed by camera id (before) "
            f"(on {os.cpu_count()} cores, with Kafka and PostgreSQL beside)"
        )


if __name__ == "__main__":
    main()
