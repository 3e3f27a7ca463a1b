"""Daily partitions of occupancy_minutes: the migration keeps every row, rows of a day
without a partition wait in the default one and move into their day, retention drops whole
days that the footfall rollup has read, and a busy lock makes a run skip, not stall."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shrinkwatch.settings import Settings
from warehouse import partitions
from warehouse.db import Connection, connect
from warehouse.migrate import migrate
from warehouse.occupancy import MinuteRow, write_occupancy
from warehouse.partitions import drop_partitions, ensure_partitions, partition_days


def rows(conn: Connection, table: str = "occupancy_minutes") -> list[dict[str, Any]]:
    return conn.execute(
        f"SELECT camera_id, zone_id, minute, visitors FROM {table} ORDER BY 1, 2, 3"  # noqa: S608
    ).fetchall()


def where(conn: Connection) -> dict[str, int]:
    """Rows per partition."""
    found = conn.execute(
        "SELECT tableoid::regclass::text AS part, count(*) AS n FROM occupancy_minutes GROUP BY 1"
    ).fetchall()
    return {r["part"]: r["n"] for r in found}


def test_migration_moves_existing_minutes_into_their_days(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    old = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    with connect(settings.database_dsn) as conn:
        migrate(conn, progress=lambda _m: None, up_to=9)
        conn.cursor().executemany(  # as the flow of that version wrote them
            """INSERT INTO occupancy_minutes (camera_id, zone_id, minute, frames, visitors, people_avg,
                   people_peak) VALUES (%s, %s, %s, 300, %s, 1.0, 1)""",
            [("cam-1", "*", old + timedelta(minutes=m), m) for m in range(3)] + [("cam-1", "z-a", old, 7)],
        )
        conn.commit()
        before = rows(conn)
        migrate(conn, progress=lambda _m: None)
        assert rows(conn) == before
        assert where(conn) == {"occupancy_minutes_20251231": 2, "occupancy_minutes_20260101": 2}
        today = datetime.now(UTC).date()
        days = partition_days(conn)
        assert {today - timedelta(days=1), today, today + timedelta(days=7)} <= set(days)
        # The primary key still makes the flow's upsert an update, not a second row.
        write_occupancy(conn, [MinuteRow("cam-1", "z-a", old, 300, 9, 1.0, 1)])
        assert [r["visitors"] for r in rows(conn) if r["zone_id"] == "z-a"] == [9]


def test_rows_of_a_day_without_partition_wait_in_the_default_one_and_move(settings: Settings) -> None:
    day = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    with connect(settings.database_dsn) as conn:
        write_occupancy(
            conn, [MinuteRow("cam-1", "*", day + timedelta(minutes=m), 300, 2, 1.0, 2) for m in range(2)]
        )
        assert where(conn) == {"occupancy_minutes_default": 2}
        before = rows(conn)
        created = ensure_partitions(conn)
        assert date(2024, 2, 29) in created
        assert where(conn) == {"occupancy_minutes_20240229": 2}
        assert rows(conn) == before
        assert ensure_partitions(conn) == []  # nothing left to do
        write_occupancy(conn, [MinuteRow("cam-1", "*", day, 300, 5, 1.0, 2)])  # an update, in its day
        assert where(conn) == {"occupancy_minutes_20240229": 2}


def test_retention_drops_whole_days_the_rollup_has_read(settings: Settings) -> None:
    first = date(2024, 1, 10)
    with connect(settings.database_dsn) as conn:
        ensure_partitions(conn, first, first + timedelta(days=2))
        minutes = [
            MinuteRow("cam-1", "*", datetime(2024, 1, 10 + d, 9, m, tzinfo=UTC), 300, 1, 1.0, 1)
            for d in range(3)
            for m in range(2)
        ]
        write_occupancy(conn, minutes)
        conn.execute("UPDATE occupancy_minutes SET updated_at = minute + interval '1 minute'")
        # The 11th was written again later (a late frame), after what the rollup has read.
        conn.execute(
            "UPDATE occupancy_minutes SET updated_at = '2024-02-01Z' WHERE minute::date = '2024-01-11'"
        )
        conn.commit()
        # Horizon: the end of the 12th; the footfall rollup has read up to 20 January.
        done = drop_partitions(
            conn, before=datetime(2024, 1, 13, tzinfo=UTC), read_until=datetime(2024, 1, 20, tzinfo=UTC)
        )
        assert done.days == [date(2024, 1, 10), date(2024, 1, 12)]
        assert done.rows == 4
        assert where(conn) == {"occupancy_minutes_20240111": 2}
        # A day that is only partly past the horizon stays whole.
        partial = drop_partitions(
            conn, before=datetime(2024, 1, 11, 23, tzinfo=UTC), read_until=datetime(2024, 3, 1, tzinfo=UTC)
        )
        assert partial.days == []


def test_a_busy_lock_leaves_the_day_for_the_next_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "LOCK_WAIT", "200ms")
    with connect(settings.database_dsn) as reader, connect(settings.database_dsn) as conn:
        ensure_partitions(conn, date(2024, 1, 10), date(2024, 1, 10))
        reader.execute("SELECT count(*) FROM occupancy_minutes")  # holds its lock until commit
        done = drop_partitions(
            conn, before=datetime(2024, 1, 20, tzinfo=UTC), read_until=datetime(2024, 3, 1, tzinfo=UTC)
        )
        assert done.days == []
        assert date(2024, 1, 10) in partition_days(conn)
        reader.commit()
        done = drop_partitions(
            conn, before=datetime(2024, 1, 20, tzinfo=UTC), read_until=datetime(2024, 3, 1, tzinfo=UTC)
        )
        assert done.days == [date(2024, 1, 10)]
