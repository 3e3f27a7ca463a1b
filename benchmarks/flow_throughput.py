"""Throughput of the incidents flow on a pre-filled sw.detections, 1 worker.

Targets (issue 4): >= 5,000 frames/s per worker, and >= 0.3 of a plain confluent-kafka
consumer that reads and JSON-decodes (json.loads) the same topic in the same run. Frames:
5 fps per camera, about 6 people each, walking realistic paths through zones; the flow
writes its incidents to the real broker and PostgreSQL (a database and topics the run
makes and drops, benchmarks.common) and snapshots its state every 2 s, as in production.
Both rates are steady-state: from the moment the first WARMUP frames are done to the last
frame (start-up and connecting are left out of both).
Usage: python -m benchmarks.flow_throughput [--cameras 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, Producer

from benchmarks.common import bench_settings, machine, services
from flows.behaviour.stores import StoreInfo
from flows.behaviour.tracks import Thresholds
from flows.behaviour.zones import ZoneArea
from flows.catalog import SiteCatalog
from shrinkwatch.contracts import DetectedObject, Detection, encode

ZONES = [
    ZoneArea("z-entrance", "entrance", ((0.0, 0.5), (0.1, 0.5), (0.1, 1.0), (0.0, 1.0))),
    ZoneArea("z-shelf", "high_value", ((0.2, 0.5), (0.4, 0.5), (0.4, 1.0), (0.2, 1.0))),
    ZoneArea("z-checkout", "checkout", ((0.5, 0.5), (0.65, 0.5), (0.65, 1.0), (0.5, 1.0))),
    ZoneArea("z-exit", "exit", ((0.85, 0.5), (1.0, 0.5), (1.0, 1.0), (0.85, 1.0))),
]


def frames_for(camera: str, seconds: int, people: int, rng: random.Random) -> list[Detection]:
    """A camera's frames: `people` shoppers at a time, each walking between random waypoints."""
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    next_id = 1
    walkers: list[list] = []
    out = []
    for i in range(seconds * 5):
        while len(walkers) < people:
            walkers.append(
                [
                    next_id,
                    rng.random(),
                    0.55 + 0.4 * rng.random(),
                    rng.random(),
                    0.55 + 0.4 * rng.random(),
                    rng.randint(25, 150),
                ]
            )
            next_id += 1
        objects = []
        for w in walkers:
            track, x, y, tx, ty, life = w
            x += max(-0.01, min(0.01, tx - x))
            y += max(-0.01, min(0.01, ty - y))
            if abs(tx - x) < 0.01 and abs(ty - y) < 0.01:
                tx, ty = rng.random(), 0.55 + 0.4 * rng.random()
            w[1:] = [x, y, tx, ty, life - 1]
            objects.append(
                DetectedObject(
                    track_id=track,
                    class_name="person",
                    class_id=0,
                    conf=0.8,
                    box=(max(0.0, x - 0.03), max(0.0, y - 0.2), min(1.0, x + 0.03), y),
                )
            )
        walkers = [w for w in walkers if w[5] > 0]
        out.append(
            Detection(
                camera_id=camera,
                store_id="bench",
                frame_id=i,
                ts=t0 + timedelta(seconds=i / 5),
                frame_w=768,
                frame_h=576,
                objects=objects,
            )
        )
    return out


WARMUP = 2000


def fill_topic(settings, cameras: int, seconds: int, people: int = 6) -> tuple[int, int]:
    """Publish every camera's frames on sw.detections; (frames, objects) published."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "linger.ms": 50,
            "compression.type": "lz4",
            "log_level": 3,
        }
    )
    rng = random.Random(7)
    count = objects = 0
    for c in range(cameras):
        for f in frames_for(f"cam-{c}", seconds, people, rng):
            producer.produce(settings.topic("detections"), key=f.camera_id.encode(), value=encode(f))
            producer.poll(0)
            count += 1
            objects += len(f.objects)
    producer.flush()
    return count, objects


def consumer_fps(settings, count: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": f"bench-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    consumer.subscribe([settings.topic("detections")])
    seen = 0
    start = 0.0
    while seen < count:
        for msg in consumer.consume(1000, timeout=1.0):
            if msg.error() is None:
                json.loads(msg.value())
                seen += 1
                if seen == WARMUP:
                    start = time.perf_counter()
    elapsed = time.perf_counter() - start
    consumer.close()
    return (count - WARMUP) / elapsed


def flow_fps(settings, count: int) -> float:
    import shutil
    import threading

    from bytewax.recovery import RecoveryConfig, init_db_dir

    from flows.incidents import build_flow
    from flows.progress import COUNTERS
    from flows.run import execute, tune_gc

    catalog = SiteCatalog.fixed(
        {f"cam-{i}": ZONES for i in range(10_000)},
        {"bench": StoreInfo("bench", thresholds=Thresholds(loiter_s=10))},
        Thresholds(),
    )
    flow = build_flow(settings, catalog, tail=False)
    recovery = settings.home / "recovery-bench"
    shutil.rmtree(recovery, ignore_errors=True)
    recovery.mkdir(parents=True)
    init_db_dir(recovery, 1)
    marks: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:  # the flow's own frame counter, read every millisecond
        while not done.wait(0.001):
            if COUNTERS.frames >= WARMUP and "start" not in marks:
                marks["start"] = time.perf_counter()
            if COUNTERS.frames >= count:
                marks["end"] = time.perf_counter()
                return

    tune_gc()  # as `shrinkwatch flows run` does
    COUNTERS.frames = 0
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    execute(flow, workers=1, snapshot_s=2.0, recovery_config=RecoveryConfig(str(recovery)))  # as `flows run`
    done.set()
    watcher.join()
    return (count - WARMUP) / (marks["end"] - marks["start"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    with services(bench_settings(topic_partitions=1)) as settings:  # a database and topics of its own
        from warehouse.db import connect

        count, objects = fill_topic(settings, args.cameras, args.seconds, args.people)
        print(
            f"# flow throughput: {count} frames ({args.cameras} cameras x {args.seconds} s at 5 fps, "
            f"{objects / count:.1f} objects/frame), 1 worker; {machine()}",
            flush=True,
        )
        bases, flows = [], []
        for round_ in range(1, args.rounds + 1):
            bases.append(consumer_fps(settings, count))
            flows.append(flow_fps(settings, count))
            print(
                f"round {round_}: plain consumer + json.loads {bases[-1]:8.0f} frames/s | "
                f"incidents flow {flows[-1]:7.0f} frames/s | ratio {flows[-1] / bases[-1]:.2f}",
                flush=True,
            )
        with connect(settings.database_dsn) as conn:
            incidents = conn.execute("SELECT count(*) AS n FROM incidents").fetchone()
        base, fps = statistics.median(bases), statistics.median(flows)
        print(
            f"median of {args.rounds}: plain consumer + json.loads {base:8.0f} frames/s | "
            f"incidents flow {fps:7.0f} frames/s ({incidents['n'] if incidents else 0} incidents) | "
            f"ratio {fps / base:.2f} (targets: >= 5000 frames/s per worker, ratio >= 0.3)"
        )


if __name__ == "__main__":
    main()
