"""Digests: the schedule in the recipient's time zone (DST included), one digest covering
the whole gap after downtime and queued once, only the recipient's stores, the scheduler's
job kept in PostgreSQL across a restart, and the email a recipient gets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from alerts.digest import Schedule, latest_due, parse_schedule, queue_due_digests, start_scheduler
from alerts.dispatcher import run
from alerts.rules import Recipient
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.alerts.conftest import Mailbox
from tests.factories import incident
from tests.support import cli_env, run_cli
from warehouse.alert_recipients import load_recipients, save_recipient
from warehouse.db import Connection, connect
from warehouse.incidents import upsert_incidents
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
"""


@pytest.mark.parametrize(
    ("text", "schedule"),
    [("daily 07:00", Schedule(time(7))), ("Weekly MON 06:30", Schedule(time(6, 30), 0))],
)
def test_schedules(text: str, schedule: Schedule) -> None:
    assert parse_schedule(text) == schedule


@pytest.mark.parametrize("text", ["hourly", "daily 25:00", "weekly someday 07:00", "daily"])
def test_bad_schedules_say_how_to_write_them(text: str) -> None:
    with pytest.raises(ShrinkwatchError, match="write 'daily 07:00' or 'weekly mon 07:00'"):
        parse_schedule(text)


@pytest.mark.parametrize(
    ("schedule", "timezone", "now", "due"),
    [
        (
            Schedule(time(7)),
            "Europe/London",
            datetime(2026, 3, 2, 6, 59, tzinfo=UTC),
            datetime(2026, 3, 1, 7, tzinfo=UTC),
        ),
        (
            Schedule(time(7)),
            "Europe/London",
            datetime(2026, 3, 2, 7, 0, tzinfo=UTC),
            datetime(2026, 3, 2, 7, tzinfo=UTC),
        ),
        # British summer time starts 29 March 2026: 07:00 BST is 06:00 UTC.
        (
            Schedule(time(7)),
            "Europe/London",
            datetime(2026, 3, 29, 6, 30, tzinfo=UTC),
            datetime(2026, 3, 29, 6, tzinfo=UTC),
        ),
        # Weekly on Monday 07:00 in New York (EST in February: 12:00 UTC).
        (
            Schedule(time(7), 0),
            "America/New_York",
            datetime(2026, 2, 4, 12, tzinfo=UTC),
            datetime(2026, 2, 2, 12, tzinfo=UTC),
        ),
    ],
)
def test_latest_due_in_the_recipients_time_zone(
    schedule: Schedule, timezone: str, now: datetime, due: datetime
) -> None:
    assert latest_due(schedule, timezone, now) == due


@pytest.fixture
def conn(settings: Settings) -> Iterator[Connection]:
    with connect(settings.database_dsn) as c:
        apply_site_config(c, parse_site_config(SITE))
        save_recipient(
            c,
            Recipient(
                id="ana",
                name="Ana",
                email="ana@example.com",
                channels=("email",),
                stores=("store-001",),
                digest="daily 07:00",
                timezone="Europe/London",
            ),
        )
        yield c


def digests(conn: Connection) -> list[dict[str, object]]:
    return conn.execute(
        "SELECT subject, payload FROM alert_outbox WHERE reason = 'digest' ORDER BY id"
    ).fetchall()


def test_after_downtime_one_digest_covers_the_whole_gap_once(conn: Connection) -> None:
    now = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    conn.execute("INSERT INTO alert_digests (recipient_id, watermark) VALUES ('ana', '2026-03-02 07:00Z')")
    conn.commit()
    upsert_incidents(
        conn,
        [
            incident(
                1,
                incident_id="gap-1",
                started_at=datetime(2026, 3, 2, 12, tzinfo=UTC),
                risk_level="high",
                risk_score=0.9,
            ),
            incident(1, incident_id="gap-2", started_at=datetime(2026, 3, 4, 20, tzinfo=UTC)),
            incident(
                1, incident_id="later", started_at=datetime(2026, 3, 5, 8, tzinfo=UTC)
            ),  # after today's 07:00
            incident(
                1,
                incident_id="boston",
                store_id="store-002",
                camera_id="cam-2",
                started_at=datetime(2026, 3, 3, 12, tzinfo=UTC),
            ),
        ],
    )
    assert queue_due_digests(conn, load_recipients(conn), now) == 1
    assert queue_due_digests(conn, load_recipients(conn), now) == 0  # asked again: nothing more
    [digest] = digests(conn)
    payload = digest["payload"]
    assert digest["subject"] == "digest:ana:2026-03-05T07:00:00+00:00"
    assert (payload["start"], payload["end"]) == ("2026-03-02T07:00:00+00:00", "2026-03-05T07:00:00+00:00")
    assert payload["total"] == 2 and payload["by_store"] == {"Leeds": 2}  # never Boston's
    assert [t["incident_id"] for t in payload["top"]] == ["gap-1", "gap-2"]  # highest score first
    # The next day's digest starts where this one ended.
    assert queue_due_digests(conn, load_recipients(conn), now + timedelta(days=1)) == 1
    assert digests(conn)[-1]["payload"]["start"] == "2026-03-05T07:00:00+00:00"


def test_the_scheduler_keeps_its_job_in_postgresql(settings: Settings, conn: Connection) -> None:
    first = start_scheduler(settings.database_dsn, every_s=3600)
    first.shutdown(wait=True)
    again = start_scheduler(settings.database_dsn, every_s=3600)  # a restart
    try:
        rows = conn.execute("SELECT id FROM apscheduler_jobs").fetchall()
        assert [r["id"] for r in rows] == ["shrinkwatch-digests"]
    finally:
        again.shutdown(wait=True)


def test_the_digest_email(settings: Settings, conn: Connection, mailbox: Mailbox, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    ready = settings.model_copy(update={"smtp_port": mailbox.port, "smtp_security": "none"})
    snapshot = ready.evidence_dir() / "cam-1" / "d1.jpg"
    snapshot.parent.mkdir(parents=True)
    cv2.imwrite(str(snapshot), np.full((360, 640, 3), 120, np.uint8))
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    upsert_incidents(
        conn,
        [
            incident(
                1, incident_id="d1", started_at=two_hours_ago, risk_level="high", snapshot="cam-1/d1.jpg"
            ),
            incident(1, incident_id="d2", started_at=two_hours_ago, store_id="store-002", camera_id="cam-9"),
        ],
    )
    done = run_cli(["alerts", "digest", "--now", "--recipient", "ana"], env=cli_env(ready, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digests: 1 recipient(s); 1 sent")
    [(to, message)] = mailbox.received
    assert to == ["ana@example.com"] and message["Subject"].startswith(
        "[Shrinkwatch] Digest: 1 incident since "
    )
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "- Leeds: 1" in text and "review?id=d1" in text
    assert "Boston" not in text and "d2" not in text  # not one of Ana's stores
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "review?id=d1" in html
    images = {p.get_content_type(): p for p in message.walk() if p.get_content_maintype() == "image"}
    assert sorted(images) == ["image/jpeg", "image/png"]  # the chart, and d1's snapshot
    for part in images.values():
        assert f"cid:{part['Content-ID'][1:-1]}" in html
    thumbnail = cv2.imdecode(np.frombuffer(images["image/jpeg"].get_content(), np.uint8), cv2.IMREAD_COLOR)
    assert thumbnail.shape[:2] == (180, 320)
    chart = cv2.imdecode(np.frombuffer(images["image/png"].get_content(), np.uint8), cv2.IMREAD_COLOR)
    assert chart.shape[:2] == (220, 640)
    # The dispatcher's scheduler has nothing due now: this digest moved the watermark.
    counts = run(ready, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)
    assert counts.sent == 0 and len(mailbox.received) == 1


def test_digest_check_says_what_would_go_out_and_sends_nothing(
    settings: Settings, conn: Connection, mailbox: Mailbox, tmp_path: Path
) -> None:
    ready = settings.model_copy(update={"smtp_port": mailbox.port, "smtp_security": "none"})
    done = run_cli(["alerts", "digest", "--check"], env=cli_env(ready, tmp_path))
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("ana: daily 07:00 Europe/London; no digest yet; next ")
    assert "(one is due now: `alerts run` sends it)" in line and line.endswith("UTC on email")
    assert mailbox.received == []
    assert conn.execute("SELECT count(*) AS n FROM alert_outbox").fetchone() == {"n": 0}
