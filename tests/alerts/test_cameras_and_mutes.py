"""A camera down for longer than the setting alerts its store's recipients once, and once
more when it is back; mutes keep a camera or a store quiet for a while."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.outbox import enqueue_camera_problems, enqueue_incident
from alerts.rules import Recipient
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import incident
from tests.support import cli_env, run_cli
from warehouse.alert_recipients import load_recipients, mute, save_recipient
from warehouse.db import Connection, connect
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
cameras:
  - {id: cam-1, store_id: store-001, name: Aisle, stream_url: /dev/null}
  - {id: cam-2, store_id: store-002, name: Door, stream_url: /dev/null}
"""
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
AFTER = timedelta(minutes=5)


@pytest.fixture
def conn(settings: Settings) -> Iterator[Connection]:
    with connect(settings.database_dsn) as c:
        apply_site_config(c, parse_site_config(SITE))
        save_recipient(
            c,
            Recipient(
                id="ana", name="Ana", email="ana@example.com", channels=("email",), stores=("store-001",)
            ),
        )
        yield c


def report(conn: Connection, camera: str, store: str, status: str, since: datetime) -> None:
    conn.execute(
        """INSERT INTO camera_health (camera_id, store_id, status, status_since, reported_at, fps_in,
               fps_analysed) VALUES (%s, %s, %s, %s, %s, 10, 0)
           ON CONFLICT (camera_id) DO UPDATE SET status = EXCLUDED.status,
               status_since = EXCLUDED.status_since""",
        (camera, store, status, since, since),
    )


def check(conn: Connection, now: datetime) -> list[tuple[str, str]]:
    with conn.transaction():
        enqueue_camera_problems(conn, load_recipients(conn), AFTER, now)
    rows = conn.execute(
        "SELECT reason, payload ->> 'status' AS status FROM alert_outbox ORDER BY id"
    ).fetchall()
    return [(r["reason"], r["status"]) for r in rows]


def test_a_camera_down_too_long_alerts_once_and_again_when_back(conn: Connection) -> None:
    report(conn, "cam-1", "store-001", "offline", T0)
    report(conn, "cam-2", "store-002", "offline", T0)  # not Ana's store
    assert check(conn, T0 + timedelta(minutes=4)) == []  # not long enough yet
    assert check(conn, T0 + timedelta(minutes=5)) == [("camera_problem", "offline")]
    assert check(conn, T0 + timedelta(minutes=30)) == [("camera_problem", "offline")]  # once per episode
    report(conn, "cam-1", "store-001", "online", T0 + timedelta(minutes=40))
    expected = [("camera_problem", "offline"), ("camera_recovered", "online")]
    assert check(conn, T0 + timedelta(minutes=41)) == expected
    assert check(conn, T0 + timedelta(minutes=50)) == expected
    # A new episode is a new alert.
    report(conn, "cam-1", "store-001", "degraded", T0 + timedelta(hours=2))
    assert check(conn, T0 + timedelta(hours=3))[-1] == ("camera_problem", "degraded")


def test_mutes_keep_a_camera_or_a_store_quiet(conn: Connection, settings: Settings, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    mute(conn, "camera", "cam-1", 60, "ana")
    report(conn, "cam-1", "store-001", "offline", now - timedelta(hours=1))
    assert check(conn, now) == []
    with conn.transaction():
        added = enqueue_incident(
            conn,
            incident(1, incident_id="m1", risk_level="high"),
            load_recipients(conn),
            {"store-001": ("Leeds", "Europe/London")},
            now,
        )
    assert added == 0
    conn.execute("UPDATE alert_mutes SET until = now() - interval '1 second'")  # the hour is over
    conn.commit()
    assert check(conn, now) == [("camera_problem", "offline")]

    env = cli_env(settings, tmp_path)
    done = run_cli(["alerts", "mute", "--store", "store-001", "--minutes", "30"], env=env)
    assert done.returncode == 0 and done.stdout.startswith("store store-001: no alerts until ")
    wrong = run_cli(["alerts", "mute", "--camera", "cam-9", "--minutes", "30"], env=env)
    assert wrong.returncode == 2 and "no camera 'cam-9'" in wrong.stderr
