"""Latency of the incidents flow under a steady live load: frame `ts` -> incident row.

50 cameras publish 5 frames/s each in real time (about 6 walking people per frame) while
`shrinkwatch flows run incidents` runs as in production (recovery on, 2 s snapshots). On
every camera a shopper stops at the high-value shelf every 20 s; the loitering rule
(loiter_s = 4) fires on the frame where the dwell reaches it. For each incident the
latency is the time from that triggering frame's capture time to the incident's row in
PostgreSQL (`first_seen_at`). Baseline in the same run: the same frames' time from capture
to a plain confluent-kafka consumer. The trigger time is taken as the visit's start plus
loiter_s, at most one frame (0.2 s) before the real one, so the flow's figures are upper
bounds. Target (issue 4): p95 <= 2 s.
Usage: python -m benchmarks.flow_latency [--cameras 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, Producer

from benchmarks.common import bench_settings, child_environment, machine, services
from shrinkwatch.contracts import DetectedObject, Detection, encode
from shrinkwatch.site_file import parse_site_config

LOITER_S = 4.0
EVERY_S = 20.0
SITE = """\
stores:
  - {id: bench, name: Bench, timezone: UTC, thresholds: {loiter_s: %(loiter)s}}
cameras:
%(cameras)s
"""
CAMERA = """\
  - id: cam-%(i)d
    store_id: bench
    name: Aisle %(i)d
    stream_url: /dev/null
    zones:
      - {id: z-shelf, name: Shelf, kind: high_value,
         polygon: [[0.2, 0.5], [0.4, 0.5], [0.4, 1.0], [0.2, 1.0]]}
      - {id: z-exit, name: Exit, kind: exit, polygon: [[0.85, 0.5], [1.0, 0.5], [1.0, 1.0], [0.85, 1.0]]}
"""


def person(track: int, x: float, y: float) -> DetectedObject:
    return DetectedObject(
        track_id=track,
        class_name="person",
        class_id=0,
        conf=0.8,
        box=(max(0.0, x - 0.03), max(0.0, y - 0.2), min(1.0, x + 0.03), y),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    with services(bench_settings(topic_partitions=3)) as settings:  # a database and topics of its own
        from warehouse.db import connect
        from warehouse.site_tables import apply_site_config

        site = SITE % {"loiter": LOITER_S, "cameras": "".join(CAMERA % {"i": i} for i in range(args.cameras))}
        with connect(settings.database_dsn) as conn:
            apply_site_config(conn, parse_site_config(site))
        env = child_environment(settings, "latency-settings")
        import shutil

        shutil.rmtree(settings.home / "recovery" / "incidents", ignore_errors=True)
        flow = subprocess.Popen(
            [sys.executable, "-m", "cli", "flows", "run", "incidents"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # The plain consumer: capture -> delivery of the triggering frames.
        triggers: dict[tuple[str, int], datetime] = {}
        delivered: list[float] = []
        stop = threading.Event()

        def plain() -> None:
            consumer = Consumer(
                {
                    "bootstrap.servers": settings.kafka_servers,
                    "group.id": f"latency-{time.time()}",
                    "auto.offset.reset": "latest",
                    "log_level": 3,
                }
            )
            consumer.subscribe([settings.topic("detections")])
            while not stop.is_set():
                msg = consumer.poll(0.1)  # each message as soon as it arrives
                if msg is not None and msg.error() is None:
                    data = json.loads(msg.value())
                    key = (data["camera_id"], data["frame_id"])
                    if key in triggers:
                        delivered.append((datetime.now(UTC) - triggers[key]).total_seconds())
            consumer.close()

        reader = threading.Thread(target=plain, daemon=True)
        reader.start()
        time.sleep(8)  # the flow and the consumer connect
        producer = Producer({"bootstrap.servers": settings.kafka_servers, "linger.ms": 5, "log_level": 3})
        rng = random.Random(3)
        walkers = {
            c: [[c * 100 + k, rng.random(), 0.6 + 0.35 * rng.random()] for k in range(5)]
            for c in range(args.cameras)
        }
        start = time.time()
        frame_id = 0
        print(
            f"# flow latency: {args.cameras} cameras x 5 fps in real time for {args.seconds} s; {machine()}",
            flush=True,
        )
        while time.time() - start < args.seconds:
            tick = time.time()
            frame_id += 1
            now = datetime.now(UTC)
            elapsed = tick - start
            for c in range(args.cameras):
                objects = []
                for w in walkers[c]:
                    w[1] = (w[1] + 0.01) % 0.8 + 0.45 if w[1] < 0.45 or w[1] > 0.8 else w[1] + 0.01
                    objects.append(person(w[0], min(w[1], 1.0), w[2]))
                # The loiterer: at the shelf for LOITER_S + 2 s in every EVERY_S (staggered).
                phase = (elapsed + c * EVERY_S / args.cameras) % EVERY_S
                visit = int((elapsed + c * EVERY_S / args.cameras) // EVERY_S)
                if phase < LOITER_S + 2:
                    objects.append(person(90_000 + c * 1000 + visit, 0.3, 0.8))
                    if phase >= LOITER_S and phase - 0.2 < LOITER_S:
                        triggers[(f"cam-{c}", frame_id)] = now
                frame = Detection(
                    camera_id=f"cam-{c}",
                    store_id="bench",
                    frame_id=frame_id,
                    ts=now,
                    frame_w=768,
                    frame_h=576,
                    objects=objects,
                )
                producer.produce(
                    settings.topic("detections"), key=frame.camera_id.encode(), value=encode(frame)
                )
            producer.poll(0)
            time.sleep(max(0.0, 0.2 - (time.time() - tick)))
        producer.flush()
        time.sleep(5)
        stop.set()
        flow.terminate()
        flow.wait(timeout=30)
        with connect(settings.database_dsn) as conn:
            rows = conn.execute(
                "SELECT camera_id, started_at, first_seen_at FROM incidents WHERE track_id >= 90000"
            ).fetchall()
        latencies = [
            (r["first_seen_at"] - (r["started_at"] + timedelta(seconds=LOITER_S))).total_seconds()
            for r in rows
        ]
        if not latencies:
            msg = "no incidents were written: is the flow running?"
            raise SystemExit(msg)
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        b50, b95 = statistics.median(delivered), percentile(delivered, 0.95)
        print(
            f"frame ts -> plain consumer: p50 {b50 * 1000:6.0f} ms  p95 {b95 * 1000:6.0f} ms "
            f"({len(delivered)} triggering frames)\n"
            f"frame ts -> incident row:   p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms "
            f"({len(latencies)} incidents)\n"
            f"p95 ratio to the plain consumer {p95 / b95:.1f}x; target p95 <= 2000 ms"
        )


if __name__ == "__main__":
    main()
