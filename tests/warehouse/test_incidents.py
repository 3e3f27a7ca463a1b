"""Incident upserts: idempotent, version-guarded, and never touching the analyst's review."""

from __future__ import annotations

from shrinkwatch.settings import Settings
from tests.factories import incident
from tests.support import record_review, stored_incidents
from warehouse.db import connect
from warehouse.incidents import (
    incidents_written,
    reviewed_incidents,
    upsert_incidents,
)


def test_upsert_keeps_highest_version_and_review(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1)])
        upsert_incidents(conn, [incident(3, "closed"), incident(2)])
        conn.execute("UPDATE incidents SET user_confirmed = true, reviewed_by = 'ana'")
        conn.commit()
        upsert_incidents(conn, [incident(2), incident(1)])  # a replay after a restart
        upsert_incidents(conn, [incident(3, "closed")])
        rows = stored_incidents(conn)
        assert incidents_written(conn) == 1
    row = rows[0]
    assert row["version"] == 3 and row["status"] == "closed"
    assert row["signals"][0]["value"] == 13.0
    assert row["user_confirmed"] is True and row["reviewed_by"] == "ana"


def test_the_row_has_its_snapshot_name_from_the_first_version(settings: Settings) -> None:
    named = "cam-1/" + incident(1).incident_id + ".jpg"
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1, snapshot=named)])
        first = stored_incidents(conn)
        upsert_incidents(conn, [incident(2)])  # a version from a flow before names: None keeps the name
        rows = stored_incidents(conn)
    assert [(r["version"], r["snapshot"]) for r in first] == [(1, named)]
    assert [(r["version"], r["snapshot"]) for r in rows] == [(2, named)]


def test_review_is_recorded_and_listed_for_calibration(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1)])
        assert record_review(conn, incident(1).incident_id, confirmed=True, note="bag")
        assert not record_review(conn, "no-such-incident", confirmed=False)
        reviewed = reviewed_incidents(conn)
        row = conn.execute("SELECT store_id, reviewed_by, reviewed_at, review_note FROM incidents").fetchone()
    assert row is not None
    assert [(r["store_id"], r["user_confirmed"]) for r in reviewed] == [(row["store_id"], True)]
    assert row["reviewed_by"] == "ana" and row["review_note"] == "bag" and row["reviewed_at"] is not None
