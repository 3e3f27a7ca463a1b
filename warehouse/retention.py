"""Retention: per-minute occupancy and hourly heatmaps are pruned once their rollups hold them.

The base rows that grow with every camera-minute are kept for `retention_occupancy_days`
and `retention_heatmap_days`; the hourly and daily rollups built from them stay (a full
rollup rebuild replaces only the periods whose base rows still exist). A row is pruned only
if it is older than the horizon *and* its rollup has already read it (its change time is
before that rollup's watermark, less the refresh overlap): pruning never loses data that a
rollup has not seen. Incidents, the system of record, are never pruned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from warehouse.db import Connection
from warehouse.rollups import OVERLAP


@dataclass(frozen=True)
class Pruned:
    """Rows deleted per table."""

    occupancy_minutes: int
    occupancy_late: int
    heatmap_hours: int


_PRUNE = {
    "occupancy_minutes": """DELETE FROM occupancy_minutes
        WHERE minute < now() - %(keep)s
          AND updated_at < (SELECT watermark FROM rollup_state WHERE name = 'footfall_hourly')
                           - %(overlap)s""",
    "occupancy_late": "DELETE FROM occupancy_late WHERE minute < now() - %(keep)s",
    "heatmap_hours": """DELETE FROM heatmap_hours
        WHERE hour < now() - %(keep)s
          AND updated_at < (SELECT watermark FROM rollup_state WHERE name = 'heatmap_daily')
                           - %(overlap)s""",
}


def prune(conn: Connection, *, occupancy_days: int, heatmap_days: int) -> Pruned:
    """Delete what retention allows (see the module docstring); in one transaction."""
    keep = {
        "occupancy_minutes": occupancy_days,
        "occupancy_late": occupancy_days,
        "heatmap_hours": heatmap_days,
    }
    deleted = {}
    with conn.transaction():
        for table, statement in _PRUNE.items():
            params = {"keep": timedelta(days=keep[table]), "overlap": OVERLAP}
            deleted[table] = conn.execute(statement, params).rowcount
    return Pruned(**deleted)
