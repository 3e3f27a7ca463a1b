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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from warehouse.db import Connection
from warehouse.partitions import drop_partitions
from warehouse.rollups import OVERLAP


@dataclass(frozen=True)
class Pruned:
    """Rows deleted per table."""

    occupancy_minutes: int
    occupancy_late: int
    heatmap_hours: int
    rollup_changes: int = 0


_PRUNE = {
    "occupancy_minutes": """DELETE FROM occupancy_minutes_default
        WHERE minute < now() - %(keep)s
          AND updated_at < (SELECT watermark FROM rollup_state WHERE name = 'footfall_hourly')
                           - %(overlap)s""",
    "occupancy_late": "DELETE FROM occupancy_late WHERE minute < now() - %(keep)s",
    # The change log: what both rollups that read it have read.
    "rollup_changes": """DELETE FROM rollup_changes
        WHERE changed_at < (SELECT min(watermark) FROM rollup_state
                            WHERE name IN ('footfall_hourly', 'heatmap_daily')
                            HAVING count(*) = 2) - %(overlap)s""",
    "heatmap_hours": """DELETE FROM heatmap_hours
        WHERE hour < now() - %(keep)s
          AND updated_at < (SELECT watermark FROM rollup_state WHERE name = 'heatmap_daily')
                           - %(overlap)s""",
}


def prune(conn: Connection, *, occupancy_days: int, heatmap_days: int) -> Pruned:
    """Delete what retention allows (see the module docstring): occupancy partitions first,
    then the remaining rows in one transaction."""
    keep = {
        "occupancy_minutes": occupancy_days,
        "occupancy_late": occupancy_days,
        "heatmap_hours": heatmap_days,
        "rollup_changes": 0,
    }
    deleted = {}
    watermark = conn.execute("SELECT watermark FROM rollup_state WHERE name = 'footfall_hourly'").fetchone()
    conn.commit()
    dropped = 0
    if watermark is not None:
        now = datetime.now(UTC)
        dropped = drop_partitions(
            conn, before=now - timedelta(days=occupancy_days), read_until=watermark["watermark"] - OVERLAP
        ).rows
    with conn.transaction():
        for table, statement in _PRUNE.items():
            params = {"keep": timedelta(days=keep[table]), "overlap": OVERLAP}
            deleted[table] = conn.execute(statement, params).rowcount
    deleted["occupancy_minutes"] += dropped
    return Pruned(**deleted)
