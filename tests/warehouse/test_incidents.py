"""Incident upserts: idempotent, version-guarded, and never touching the analyst's review."""

from __future__ import annotations

from datetime import timedelta

from shrinkwatch.contracts import Incident, Signal
from shrinkwatch.settings import Settings
from tests.factories import T0
from warehouse.db import connect
from warehouse.incidents import count_incidents, list_incidents, upsert_incidents


def incident(version: int, status: str = "open") -> Incident:
    return Incident(
        incident_id="inc-1",
        version=version,
        store_id="store-001",
        camera_id="cam-1",
        track_id=7,
        incident_type="loitering_high_value",
        risk_score=0.5,
        risk_level="medium",
        status=status,
        started_at=T0,
        updated_at=T0 + timedelta(seconds=version),
        ended_at=None,
        zone_ids=["z-razors"],
        signals=[Signal(name="dwell_high_value_s", value=10.0 + version, contribution=0.5)],
    )


def test_upsert_keeps_highest_version_and_review(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1)])
        upsert_incidents(conn, [incident(3, "closed"), incident(2)])
        conn.execute("UPDATE incidents SET user_confirmed = true, reviewed_by = 'ana'")
        conn.commit()
        upsert_incidents(conn, [incident(2), incident(1)])  # a replay after a restart
        upsert_incidents(conn, [incident(3, "closed")])
        rows = list_incidents(conn)
        assert count_incidents(conn) == 1
    row = rows[0]
    assert row["version"] == 3 and row["status"] == "closed"
    assert row["signals"][0]["value"] == 13.0
    assert row["user_confirmed"] is True and row["reviewed_by"] == "ana"
