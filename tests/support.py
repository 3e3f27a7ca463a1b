"""Helpers for tests that run `shrinkwatch` commands as child processes, and for the local
HTTP servers that stand in for outside services."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shrinkwatch.net import free_port  # noqa: F401 (the tests take it from here)
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import REPO_ROOT, Settings, child_environment, write_settings_file
from warehouse.db import Connection

TEST_HOME = REPO_ROOT / ".shrinkwatch-test"


def settings_file(settings: Settings, path: Path) -> Path:
    """Write settings to a YAML file that a child `shrinkwatch` process can read (a secret given
    as a value is not in it: `cli_env` hands it over in the environment)."""
    return write_settings_file(settings, path)


def cli_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Environment for a child `shrinkwatch` process using exactly these settings."""
    return child_environment(settings, tmp_path / f"settings-{uuid.uuid4().hex[:6]}.yaml")


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run `shrinkwatch ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def spawn_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `shrinkwatch ARGS` in the background, logging to a file."""
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )


VTEST = shared_file("video", "vtest.avi")
MODEL = shared_file("models", "yolov8n.pt")
needs_footage = pytest.mark.skipif(
    VTEST is None or MODEL is None, reason="needs ../shared/video/vtest.avi and ../shared/models/yolov8n.pt"
)


def produce(settings: Settings, topic: str, items: list[tuple[bytes | None, bytes | None]]) -> None:
    """Publish (key, value) pairs to a topic and wait until they are delivered."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_servers, "log_level": 3})
    for key, value in items:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def consume(settings: Settings, topic: str, *, until: int, timeout_s: float = 60.0) -> list[Any]:
    """Read a topic from the beginning until `until` messages arrived (or the timeout)."""
    import time

    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < until and time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(100, timeout=0.5) if m.error() is None)
    finally:
        consumer.close()
    return out


def read_all(settings: Settings, topic: str, timeout_s: float = 180.0) -> list[Any]:
    """Every message the topic holds now: each partition read from its start up to the end
    it had when called. Waits for that end, not for a quiet spell, so a slow machine only
    takes longer; in order within a partition (one key)."""
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=60).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=60)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = {p for p, end in ends.items() if end > 0}
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is None and msg.partition() in pending:
                    out.append(msg)
                    if msg.offset() + 1 >= ends[msg.partition()]:
                        pending.discard(msg.partition())
        if pending:
            pytest.fail(f"timed out after {timeout_s:.0f} s reading {topic} to its end")
        return out
    finally:
        consumer.close()


def wait_for(
    predicate: Any, timeout_s: float = 60.0, interval_s: float = 0.5, what: str = "condition"
) -> Any:
    """Poll until predicate() is truthy; return its value or fail the test."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_until_stable(fetch: Any, quiet_s: float, timeout_s: float) -> Any:
    """Poll fetch() until it returns the same non-empty value for quiet_s seconds."""
    import time

    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        value = fetch()
        if value != last:
            last, since = value, time.monotonic()
        elif value and time.monotonic() - since >= quiet_s:
            return value
        time.sleep(0.5)
    pytest.fail(f"no stable result within {timeout_s:.0f} s (last: {last!r})")


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler for the tests' local HTTP servers: no access log, JSON answers."""

    def log_message(self, *_args: Any) -> None:
        pass

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve with this handler on a free port of 127.0.0.1 for the block; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stored_incidents(
    conn: Connection, *, store_id: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """What the warehouse holds, most recent first, as dicts with the incident table's
    columns: what a test reads back to check what the product wrote."""
    return conn.execute(
        """SELECT incident_id, version, store_id, camera_id, track_id, incident_type,
                  risk_score, risk_level, status, started_at, updated_at, ended_at,
                  zone_ids, signals, snapshot, user_confirmed, reviewed_by, reviewed_at,
                  weights_version
           FROM incidents
           WHERE %(store)s::text IS NULL OR store_id = %(store)s
           ORDER BY started_at DESC, incident_id
           LIMIT %(limit)s""",
        {"store": store_id, "limit": limit},
    ).fetchall()


def record_review(
    conn: Connection, incident_id: str, *, confirmed: bool, reviewer: str = "ana", note: str | None = None
) -> bool:
    """An analyst's verdict as the review page records it (warehouse.incidents.record_verdict,
    the one verdict writer): by the account `reviewer` (an analyst, made if need be), who sees
    every store that has incidents. True when the incident exists."""
    from shrinkwatch.errors import ShrinkwatchError
    from warehouse.accounts import add_user, get_user
    from warehouse.incidents import record_verdict
    from warehouse.scope import Scope

    try:
        get_user(conn, reviewer)
    except ShrinkwatchError:
        add_user(conn, reviewer, "analyst", password=None)
    stores = frozenset(r["store_id"] for r in conn.execute("SELECT DISTINCT store_id FROM incidents"))
    return record_verdict(conn, Scope(stores), incident_id, confirmed=confirmed, reviewer=reviewer, note=note)
