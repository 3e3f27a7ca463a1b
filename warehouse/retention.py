"""Retention: per-minute occupancy and hourly heatmaps are pruned once their rollups hold them.

The base rows that grow with every camera-minute are kept for `retention_occupancy_days`
and `retention_heatmap_days`; the hourly and daily rollups built from them stay (a full
rollup rebuild replaces only the periods whose base rows still exist). A row is pruned only
if it is older than the horizon *and* its rollup has already read it (its change time is
before that rollup's watermark, less the refresh overlap): pruning never loses data that a
rollup has not seen. Incidents, the system of record, are never pruned here.

Per-minute occupancy goes a UTC day at a time, by dropping the day's partition
(warehouse.partitions) once all of the day is past the horizon; rows that wait in the
default partition are deleted row by row under the same rule.

Sign-in records go too once nothing needs them (`purge_sign_in_records`), and API tokens
90 days after they were revoked or expired. Retention decides what goes when; the rows are
deleted by the modules that own their tables (`warehouse.occupancy`, `warehouse.sessions`,
`warehouse.sign_in_throttle`, `warehouse.single_sign_on`, `warehouse.api_tokens`) and the
partitions dropped by `warehouse.partitions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from warehouse.api_tokens import purge_tokens
from warehouse.db import Connection
from warehouse.occupancy import delete_rolled_up
from warehouse.partitions import drop_partitions
from warehouse.rollups import OVERLAP
from warehouse.sessions import purge_sessions
from warehouse.sign_in_throttle import purge_failures
from warehouse.single_sign_on import purge_sso_requests


@dataclass(frozen=True)
class Pruned:
    """Rows deleted per table."""

    occupancy_minutes: int
    occupancy_late: int
    heatmap_hours: int
    rollup_changes: int = 0


def prune(conn: Connection, *, occupancy_days: int, heatmap_days: int) -> Pruned:
    """Delete what retention allows (see the module docstring): occupancy partitions first,
    then the remaining rows in one transaction."""
    keep = {
        "occupancy_minutes": occupancy_days,
        "occupancy_late": occupancy_days,
        "heatmap_hours": heatmap_days,
        "rollup_changes": 0,
    }
    watermark = conn.execute("SELECT watermark FROM rollup_state WHERE name = 'footfall_hourly'").fetchone()
    conn.commit()
    dropped = 0
    if watermark is not None:
        now = datetime.now(UTC)
        dropped = drop_partitions(
            conn, before=now - timedelta(days=occupancy_days), read_until=watermark["watermark"] - OVERLAP
        ).rows
    deleted = delete_rolled_up(conn, {table: timedelta(days=days) for table, days in keep.items()}, OVERLAP)
    deleted["occupancy_minutes"] += dropped
    return Pruned(**deleted)


def purge_sign_in_records(
    conn: Connection,
    *,
    keep_sessions: timedelta = timedelta(days=30),
    keep_tokens: timedelta = timedelta(days=90),
) -> int:
    """Forget what sign-in no longer needs: failures past the throttling window, sessions
    ended or expired more than `keep_sessions` ago, single sign-on attempts never finished,
    API tokens revoked or expired more than `keep_tokens` ago. Returns the rows removed (the
    rollup scheduler calls it with retention)."""
    with conn.transaction():
        removed = purge_failures(conn)
        removed += purge_sessions(conn, keep_sessions)
        removed += purge_sso_requests(conn)
        removed += purge_tokens(conn, keep_tokens)
    return removed
