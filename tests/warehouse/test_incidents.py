"""Incident upserts: idempotent, version-guarded, and never touching the analyst's review."""

from __future__ import annotations

from shrinkwatch.settings import Settings
from tests.factories import incident
from warehouse.db import connect
from warehouse.incidents import count_incidents, list_incidents, upsert_incidents


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
