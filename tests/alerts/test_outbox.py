"""The outbox: each alert enqueued once whatever reads the incidents again; escalation;
quiet hours; the hourly limit's summary; a recipient hears only of their stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from alerts.outbox import enqueue_incident
from alerts.rules import Recipient
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import incident
from warehouse.alert_recipients import load_recipients, save_recipient
from warehouse.db import Connection, connect
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
"""
STORES = {"store-001": ("Leeds", "Europe/London"), "store-002": ("Boston", "America/New_York")}
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


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
                min_level="medium",
                max_per_hour=3,
            ),
        )
        yield c


def outbox(conn: Connection) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT subject, recipient_id, reason, payload, not_before FROM alert_outbox ORDER BY id"
    ).fetchall()


def enqueue(conn: Connection, *versions: Any, now: datetime = NOON) -> int:
    with conn.transaction():
        return sum(enqueue_incident(conn, v, load_recipients(conn), STORES, now) for v in versions)


def test_once_per_incident_and_once_more_when_it_escalates(conn: Connection) -> None:
    low = incident(1, incident_id="i1", risk_level="low")
    medium = incident(2, incident_id="i1", risk_level="medium")
    medium_again = incident(3, incident_id="i1", risk_level="medium", status="closed")
    high = incident(4, incident_id="i1", risk_level="high")
    assert enqueue(conn, low) == 0  # below Ana's minimum
    assert enqueue(conn, medium, medium_again) == 1
    assert enqueue(conn, high) == 1
    assert enqueue(conn, low, medium, medium_again, high, high) == 0  # a replay adds nothing
    assert [(r["subject"], r["reason"], r["payload"]["risk_level"]) for r in outbox(conn)] == [
        ("i1", "new", "medium"),
        ("i1", "escalated", "high"),
    ]
    assert enqueue(conn, incident(1, incident_id="i2", risk_level="high")) == 1  # high at once: new only
    assert enqueue(conn, incident(2, incident_id="i2", risk_level="high")) == 0


def test_a_recipient_hears_only_of_their_stores(conn: Connection) -> None:
    boston = incident(1, incident_id="b1", store_id="store-002", camera_id="cam-2", risk_level="high")
    assert enqueue(conn, boston) == 0
    assert outbox(conn) == []


def test_quiet_hours_hold_an_alert_until_they_end(conn: Connection) -> None:
    [ana] = load_recipients(conn)
    save_recipient(conn, Recipient(**{**ana.__dict__, "quiet_start": time(22), "quiet_end": time(7)}))
    night = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 23:30 in Leeds (GMT)
    enqueue(conn, incident(1, incident_id="n1", risk_level="high"), now=night)
    assert outbox(conn)[0]["not_before"] == datetime(2026, 3, 3, 7, tzinfo=UTC)


def test_past_the_hourly_limit_one_summary_instead_of_silence(conn: Connection) -> None:
    versions = [incident(1, incident_id=f"i{n}", risk_level="high") for n in range(6)]
    enqueue(conn, *versions)
    enqueue(conn, *versions)  # replayed: the summary does not grow
    rows = outbox(conn)
    assert [r["reason"] for r in rows] == ["new", "new", "new", "summary"]
    summary = rows[-1]
    assert summary["payload"]["incidents"] == ["i3", "i4", "i5"]
    assert summary["not_before"] == NOON + timedelta(hours=1)  # when the hour is over
    # An hour later the limit has room again.
    assert (
        enqueue(conn, incident(1, incident_id="later", risk_level="high"), now=NOON + timedelta(hours=2)) == 1
    )


def test_old_news_is_not_alerted(conn: Connection) -> None:
    """A backlog, or a first start on a topic with history: incidents last changed long ago."""
    old = incident(
        1,
        incident_id="old",
        risk_level="high",
        started_at=NOON - timedelta(hours=3),
        updated_at=NOON - timedelta(hours=3),
    )
    fresh = incident(
        1,
        incident_id="fresh",
        risk_level="high",
        started_at=NOON - timedelta(minutes=5),
        updated_at=NOON - timedelta(minutes=5),
    )
    with conn.transaction():
        added = [
            enqueue_incident(conn, v, load_recipients(conn), STORES, NOON, timedelta(hours=1))
            for v in (old, fresh)
        ]
    assert added == [0, 1]


def test_a_stale_sender_never_overwrites_another_senders_result(conn: Connection, settings: Settings) -> None:
    from alerts.outbox import mark_failed
    from warehouse.alert_outbox import claim_due, mark_sent, recover_interrupted

    enqueue(conn, incident(1, incident_id="s1", risk_level="high", updated_at=NOON), now=NOON)
    with connect(settings.database_dsn) as stale:
        [mine] = claim_due(stale)
        # Suppose the row was taken from it (its session looked dead) and another sender sent it.
        conn.execute("UPDATE alert_outbox SET status = 'pending', claimed_by = NULL")
        conn.commit()
        [theirs] = claim_due(conn)
        mark_sent(conn, theirs)
        assert mark_failed(stale, mine, "SMTP timed out", permanent=False, max_attempts=5) == "pending"
        row = conn.execute("SELECT status, last_error FROM alert_outbox").fetchone()
        assert row == {"status": "sent", "last_error": None}  # the stale failure changed nothing
        mark_sent(stale, mine)  # it did go out: still sent, once
        assert conn.execute("SELECT status FROM alert_outbox").fetchone() == {"status": "sent"}
        assert recover_interrupted(conn) == 0
