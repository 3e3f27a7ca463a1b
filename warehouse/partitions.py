"""Daily partitions of `occupancy_minutes` (migration 0010 says why).

A partition per UTC day, named `occupancy_minutes_YYYYMMDD`, plus a default partition that
catches rows of a day nobody created yet (nothing is lost; `ensure_partitions` moves them
into their day when it creates it). `ensure_partitions` keeps yesterday to a week ahead;
the rollup scheduler, the seed and the occupancy flow call it.
`drop_partitions` is retention: it drops a day once the whole day is past the horizon and
the footfall rollup has read every row of it.

Creating and dropping partitions take short locks on `occupancy_minutes`: each waits at most
LOCK_WAIT for readers and writers to let go, and a day that could not get its lock is left
for the next run instead of stalling the flows behind it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from warehouse.db import Connection

log = logging.getLogger(__name__)
AHEAD_DAYS = 7
LOCK_WAIT = "5s"
_NAME = re.compile(r"^occupancy_minutes_(\d{8})$")


def partition_days(conn: Connection) -> list[date]:
    """The days that have a partition, oldest first."""
    rows = conn.execute(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'occupancy_minutes'::regclass"""
    ).fetchall()
    days = []
    for row in rows:
        match = _NAME.match(row["relname"])
        if match:
            days.append(datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC).date())
    return sorted(days)


def _with_lock_wait(conn: Connection, statement: str, params: tuple[object, ...]) -> bool:
    """Run one statement in its own transaction, waiting at most LOCK_WAIT for locks."""
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            conn.execute(statement, params)
    except psycopg.errors.LockNotAvailable:
        return False
    return True


def ensure_partitions(conn: Connection, first: date | None = None, last: date | None = None) -> list[date]:
    """Create the missing partitions of [first, last] (default: yesterday to AHEAD_DAYS
    ahead) and of every day waiting in the default partition; return the days created."""
    today = datetime.now(UTC).date()
    first = first or today - timedelta(days=1)
    last = last or today + timedelta(days=AHEAD_DAYS)
    have = set(partition_days(conn))
    waiting = {
        row["day"]
        for row in conn.execute(
            "SELECT DISTINCT (minute AT TIME ZONE 'UTC')::date AS day FROM occupancy_minutes_default"
        )
    }
    conn.commit()
    wanted = {first + timedelta(days=n) for n in range((last - first).days + 1)} | waiting
    created = []
    for day in sorted(wanted - have):
        if _with_lock_wait(conn, "SELECT occupancy_add_partition(%s)", (day,)):
            created.append(day)
        else:
            log.warning("occupancy partition %s: its lock was busy, left for the next run", day)
    return created


@dataclass(frozen=True)
class Dropped:
    """What `drop_partitions` removed."""

    days: list[date]
    rows: int


def drop_partitions(conn: Connection, *, before: datetime, read_until: datetime) -> Dropped:
    """Drop each day that ends at or before `before` and has no row changed at or after
    `read_until` (the footfall rollup's watermark less its overlap: every row is in it)."""
    days: list[date] = []
    rows = 0
    for day in partition_days(conn):
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if end > before:
            break
        table = f"occupancy_minutes_{day:%Y%m%d}"
        found = conn.execute(
            f"""SELECT count(*) AS n, count(*) FILTER (WHERE updated_at >= %s) AS unread
                FROM {table}""",  # noqa: S608 (a name from the catalog, matched by _NAME)
            (read_until,),
        ).fetchone()
        conn.commit()
        assert found is not None
        if found["unread"]:
            continue  # the footfall rollup has not read all of it yet
        if _with_lock_wait(conn, f"DROP TABLE {table}", ()):
            days.append(day)
            rows += int(found["n"])
        else:
            log.warning("occupancy partition %s: its lock was busy, left for the next run", day)
    return Dropped(days, rows)
