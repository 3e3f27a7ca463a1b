"""Synthetic history: stores in their time zones, open hours only, a plausible mix, repeatable."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings
from warehouse.db import connect
from warehouse.rollups import run_rollups
from warehouse.seed import seed_history

UNTIL = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_seed_writes_open_hours_of_history_and_repeats_itself(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        done = seed_history(conn, days=3, stores=2, cameras=2, until=UNTIL, progress=lambda _m: None)
        stores = {r["id"]: r["timezone"] for r in conn.execute("SELECT id, timezone FROM stores")}
        incidents = conn.execute(
            "SELECT i.incident_id, i.started_at, i.user_confirmed, s.timezone, i.incident_type "
            "FROM incidents i JOIN stores s ON s.id = i.store_id ORDER BY 1"
        ).fetchall()
        minutes = conn.execute("SELECT count(*) AS n, min(minute) AS first FROM occupancy_minutes").fetchone()
        heat = conn.execute("SELECT count(*) AS n FROM heatmap_hours").fetchone()
        with pytest.raises(ShrinkwatchError, match="pass --replace"):
            seed_history(conn, days=3, stores=2, cameras=2, until=UNTIL, progress=lambda _m: None)
        again = seed_history(
            conn, days=3, stores=2, cameras=2, until=UNTIL, replace=True, progress=lambda _m: None
        )
        ids_again = [r["incident_id"] for r in conn.execute("SELECT incident_id FROM incidents ORDER BY 1")]
    assert stores == {"seed-001": "Europe/London", "seed-002": "Europe/Paris"}
    assert (done.stores, done.cameras) == (2, 4) and done.incidents == len(incidents) > 0
    assert minutes is not None and minutes["n"] == done.occupancy_rows and heat is not None
    assert heat["n"] == done.heatmap_rows
    assert done.occupancy_rows == done.heatmap_rows * 60 * 6  # every open hour: 60 minutes x (view + 5 zones)
    for row in incidents:  # only while the store is open (08:00-21:00, Sunday 10:00-17:00)
        local = row["started_at"].astimezone(ZoneInfo(row["timezone"]))
        assert (10 if local.weekday() == 6 else 8) <= local.hour < (17 if local.weekday() == 6 else 21)
    verdicts = [r["user_confirmed"] for r in incidents if r["user_confirmed"] is not None]
    assert 0 < sum(verdicts) < len(verdicts)  # some confirmed, some rejected
    assert again == done and ids_again == [r["incident_id"] for r in incidents]  # the same history
    assert len({r["incident_type"] for r in incidents}) >= 3


def test_rollups_over_a_seed(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        seed_history(conn, days=2, stores=1, cameras=1, until=UNTIL, progress=lambda _m: None)
    results = {r.name: r.rows for r in run_rollups(settings.database_dsn, full=True)}
    assert results["heatmap_daily"] >= 2 and results["footfall_hourly"] > 0 and results["roi_monthly"] >= 1
