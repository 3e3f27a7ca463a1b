"""Throughput of the incidents flow on a pre-filled sw.detections, 1 worker.

Targets (issue 4): >= 5,000 frames/s per worker, and >= 0.3 of a plain confluent-kafka
consumer that reads and JSON-decodes the same topic in the same run. Frames: 5 fps per
camera, about 6 people each, walking realistic paths through zones; the flow writes its
incidents to the real broker and PostgreSQL as in production (recovery off).
Usage: python -m benchmarks.flow_throughput [--cameras 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, Producer

from benchmarks.common import bench_settings, machine, services
from flows.behaviour import StoreInfo, Thresholds
from flows.catalog import SiteCatalog
from flows.zones import ZoneArea
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
    start = None
    while seen < count:
        for msg in consumer.consume(1000, timeout=1.0):
            if msg.error() is None:
                start = start or time.perf_counter()
                json.loads(msg.value())
                seen += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return seen / elapsed


def flow_fps(settings, count: int) -> float:
    from bytewax.run import cli_main

    from flows.incidents import build_flow

    catalog = SiteCatalog.fixed(
        {f"cam-{i}": ZONES for i in range(10_000)},
        {"bench": StoreInfo("bench", thresholds=Thresholds(loiter_s=20))},
        Thresholds(),
    )
    flow = build_flow(settings, catalog, tail=False)
    start = time.perf_counter()
    cli_main(flow, workers_per_process=1, epoch_interval=timedelta(seconds=2))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--people", type=int, default=6)
    args = parser.parse_args()
    settings = bench_settings(topic_partitions=1)
    rng = random.Random(7)
    with services(settings):
        from infra.kafka import ensure_topics
        from warehouse.db import connect
        from warehouse.migrate import migrate

        ensure_topics(settings)
        with connect(settings.database_dsn) as conn:
            migrate(conn, progress=lambda _m: None)
            conn.execute("TRUNCATE incidents")
            conn.commit()
        producer = Producer(
            {
                "bootstrap.servers": settings.kafka_servers,
                "linger.ms": 50,
                "compression.type": "lz4",
                "log_level": 3,
            }
        )
        count = 0
        objects = 0
        for c in range(args.cameras):
            for f in frames_for(f"cam-{c}", args.seconds, args.people, rng):
                producer.produce(settings.topic("detections"), key=f.camera_id.encode(), value=encode(f))
                producer.poll(0)
                count += 1
                objects += len(f.objects)
        producer.flush()
        del producer  # no reconnect attempts once the services stop
        print(
            f"# flow throughput: {count} frames ({args.cameras} cameras x {args.seconds} s at 5 fps, "
            f"{objects / count:.1f} objects/frame), 1 worker; {machine()}",
            flush=True,
        )
        base = consumer_fps(settings, count)
        fps = flow_fps(settings, count)
        with connect(settings.database_dsn) as conn:
            incidents = conn.execute("SELECT count(*) AS n FROM incidents").fetchone()
        print(
            f"plain consumer + json.loads {base:8.0f} frames/s | incidents flow {fps:7.0f} frames/s "
            f"({incidents['n'] if incidents else 0} incidents) | ratio {fps / base:.2f} "
            f"(targets: >= 5000 frames/s per worker, ratio >= 0.3)"
        )


if __name__ == "__main__":
    main()
