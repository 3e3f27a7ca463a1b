"""Alerts: incident published -> email received, and the dispatcher's throughput.

Real parts: Kafka, PostgreSQL, `shrinkwatch alerts run`'s loop in a thread, and an aiosmtpd
SMTP server in a process of its own that stamps each message as it arrives (wall clock).
- Latency under a steady load: 50 cameras each raising a high-risk incident every
  `--every-s` seconds for `--seconds`; publish time -> email received, p50/p95 (target p95
  <= 3 s). Baseline in the same run: the same alert emails sent by plain smtplib.
- Throughput: `--burst` incidents published at once, then the time until the last email
  arrives (alerts/s), against plain smtplib sending the same alert emails, built beforehand,
  on one connection (messages/s): the ratio is what Kafka, the outbox and building each
  message cost on top of SMTP itself.
Each incident's snapshot is saved already (a frame of the sample video), so every email
inlines it, as when the detector has saved it (it does within a second); a shorter run
publishes incidents whose snapshot never comes, so that each email waits
`alerts_snapshot_wait_s` (2 s) before it goes without: the worst case.
Usage: python -m benchmarks.alerts_dispatch [--seconds 60] [--every-s 10] [--burst 1000]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import re
import smtplib
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import cv2
from confluent_kafka import Producer

from alerts.dispatcher import run
from alerts.email.templates import incident_email
from alerts.outbox import incident_payload
from alerts.rules import Recipient
from benchmarks.common import bench_settings, frames, machine, services
from shrinkwatch.contracts import Incident, Signal, encode
from shrinkwatch.net import free_port
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from warehouse.alert_recipients import save_recipient
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

CAMERAS = 50
STORE = "bench-alerts"
SNAPSHOT = "bench-alerts/snapshot.jpg"  # a frame of the sample video, as evidence
# The incident id in the email's link; quoted-printable writes its "=" as "=3D".
LINK = re.compile(rb"review\?id=(?:3D)?([\w-]+)")


class Arrivals:
    """aiosmtpd handler: sends (incident id, wall-clock time) for each message received."""

    def __init__(self, out: Any) -> None:
        self.out = out

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        now = time.time()
        found = LINK.search(envelope.content)
        self.out.put((found[1].decode() if found else "", now))
        return "250 OK"


def smtp_server(port: int, out: Any, stop: Any) -> None:
    """The SMTP server's process."""
    from aiosmtpd.controller import Controller

    controller = Controller(Arrivals(out), hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()


class Inbox:
    """What the SMTP server received, read from its process."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.at: dict[str, float] = {}
        self.count = 0

    def wait_for(self, ids: list[str], timeout_s: float) -> None:
        deadline = time.time() + timeout_s
        missing = set(ids) - self.at.keys()
        while missing and time.time() < deadline:
            try:
                incident_id, at = self.queue.get(timeout=0.5)
            except Exception:  # noqa: BLE001 (queue.Empty: look at the clock again)
                continue
            self.count += 1
            self.at.setdefault(incident_id, at)
            missing.discard(incident_id)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def high(incident_id: str, camera: int, snapshot: str | None = SNAPSHOT) -> Incident:
    now = datetime.now(UTC)
    return Incident(
        incident_id=incident_id,
        version=1,
        store_id=STORE,
        camera_id=f"bench-cam-{camera:02d}",
        track_id=1,
        incident_type="loitering_high_value",
        risk_score=0.8,
        risk_level="high",
        status="open",
        started_at=now,
        updated_at=now,
        ended_at=None,
        zone_ids=["z-shelf"],
        signals=[Signal(name="dwell_high_value_s", value=40.0, contribution=0.8)],
        snapshot=snapshot,  # saved by the detector: the email inlines it
    )


def plain_smtp(settings: Settings, inbox: Inbox, count: int) -> tuple[list[float], float]:
    """Baseline: `count` alert emails built beforehand, sent by smtplib on one connection;
    (each send's time, messages/s until the server had the last one)."""
    ids = [f"plain-{n}-{uuid.uuid4().hex[:6]}" for n in range(count)]
    messages = [
        incident_email(
            settings,
            n,
            "bench@example.com",
            "new",
            incident_payload(high(i, n % CAMERAS), "Bench"),
            settings.evidence_dir() / SNAPSHOT,
        )
        for n, i in enumerate(ids)
    ]
    each = []
    start = time.time()
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port) as client:
        for message in messages:
            began = time.perf_counter()
            client.send_message(message)
            each.append(time.perf_counter() - began)
    inbox.wait_for(ids, 60)
    return each, count / (max(inbox.at[i] for i in ids) - start)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="How long the steady load runs.")
    parser.add_argument(
        "--every-s", type=float, default=10, help="Each camera raises an incident this often."
    )
    parser.add_argument("--burst", type=int, default=1000, help="Incidents published at once for throughput.")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    received, stop_smtp = spawn.Queue(), spawn.Event()
    port = free_port()
    server = spawn.Process(target=smtp_server, args=(port, received, stop_smtp), daemon=True)
    server.start()
    inbox = Inbox(received)
    settings = bench_settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        dashboard_public_url="https://sw.example.com",
    )
    picture = settings.evidence_dir() / SNAPSHOT
    picture.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(picture), frames(1)[0])
    try:
        with services(settings) as settings:
            with connect(settings.database_dsn) as conn:
                apply_site_config(
                    conn, parse_site_config(f"stores: [{{id: {STORE}, name: Bench, timezone: UTC}}]")
                )
                save_recipient(
                    conn,
                    Recipient(
                        id="bench",
                        name="Bench",
                        email="bench@example.com",
                        channels=("email",),
                        stores=(STORE,),
                        min_level="medium",
                        max_per_hour=1_000_000,
                    ),
                )
            print(f"# alerts: {CAMERAS} cameras; {machine()}", flush=True)
            for _attempt in range(50):  # the server process is up once it answers
                try:
                    smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
                    break
                except OSError:
                    time.sleep(0.2)
            plain, plain_rate = plain_smtp(settings, inbox, args.burst)

            stop = threading.Event()
            dispatcher = threading.Thread(
                target=run,
                args=(settings, stop),
                kwargs={
                    "progress": lambda _m: None,
                    "group_id": f"bench-{uuid.uuid4()}",
                    "digests": False,
                },
            )
            dispatcher.start()
            producer = Producer({"bootstrap.servers": settings.kafka_servers, "linger.ms": 0, "log_level": 3})
            topic = settings.topic("incidents")

            # Latency under a steady load: with the snapshot saved, and (shorter) for a camera
            # whose snapshot never comes, where each email waits alerts_snapshot_wait_s.
            for label, seconds, snapshot in (
                ("snapshot saved", args.seconds, SNAPSHOT),
                ("no snapshot ever", min(args.seconds, 20.0), None),
            ):
                sent: dict[str, float] = {}
                begin = time.time()
                tick = 0
                while time.time() - begin < seconds:
                    for camera in range(CAMERAS):
                        due = begin + tick * args.every_s + camera * args.every_s / CAMERAS
                        time.sleep(max(0.0, due - time.time()))
                        incident_id = f"lat-{tick}-{camera}-{uuid.uuid4().hex[:6]}"
                        value = encode(high(incident_id, camera, snapshot))
                        producer.produce(topic, key=incident_id.encode(), value=value)
                        producer.poll(0)
                        sent[incident_id] = time.time()
                    tick += 1
                producer.flush(30)
                inbox.wait_for(list(sent), 60)
                latencies = [inbox.at[i] - t for i, t in sent.items() if i in inbox.at]
                if not latencies:
                    msg = f"no alert arrived ({inbox.count} messages in all): is the dispatcher up?"
                    raise SystemExit(msg)
                print(
                    f"latency, {label}, {len(sent)} incidents from {CAMERAS} cameras "
                    f"({CAMERAS / args.every_s:.0f}/s): p50 {statistics.median(latencies) * 1000:.0f} ms, "
                    f"p95 {p95(latencies) * 1000:.0f} ms (target p95 <= 3000 ms); "
                    f"{len(sent) - len(latencies)} missing | baseline: plain smtplib send of the same email "
                    f"p50 {statistics.median(plain) * 1000:.1f} ms, p95 {p95(plain) * 1000:.1f} ms",
                    flush=True,
                )

            # Throughput through the outbox.
            burst = [f"burst-{n}-{uuid.uuid4().hex[:6]}" for n in range(args.burst)]
            start = time.time()
            for n, incident_id in enumerate(burst):
                producer.produce(
                    topic, key=incident_id.encode(), value=encode(high(incident_id, n % CAMERAS))
                )
                producer.poll(0)
            producer.flush(30)
            inbox.wait_for(burst, 600)
            arrived = [inbox.at[i] for i in burst if i in inbox.at]
            took = max(arrived) - start
            rate = len(arrived) / took
            print(
                f"throughput: {len(arrived)} of {len(burst)} alerts in {took:.1f} s = {rate:.0f} alerts/s | "
                f"baseline plain smtplib, same emails, one connection: {plain_rate:.0f} messages/s | "
                f"ratio {rate / plain_rate:.2f}",
                flush=True,
            )
            stop.set()
            dispatcher.join(timeout=30)
            del producer
    finally:
        stop_smtp.set()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
