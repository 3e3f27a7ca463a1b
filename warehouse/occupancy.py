"""Footfall, occupancy and heatmaps (owner of `occupancy_minutes`, `occupancy_late`,
`heatmap_hours` and the rollups' change log `rollup_changes`): what the occupancy flow writes
per camera zone and minute, and per camera and hour.

Writes are idempotent upserts (a replay changes nothing) and log the camera-hours they touch
in `rollup_changes` in the same transaction, so a rollup refresh finds what changed without
scanning old rows (warehouse.rollups). Retention (warehouse.retention) decides what is old
enough to go; `delete_rolled_up` deletes it. The partitions of `occupancy_minutes` are made
and dropped by warehouse.partitions, as the table's schema, not its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from warehouse.db import Connection


@dataclass(frozen=True)
class MinuteRow:
    """A closed minute of one camera zone."""

    camera_id: str
    zone_id: str
    minute: datetime
    frames: int
    visitors: int
    people_avg: float
    people_peak: int


@dataclass(frozen=True)
class HeatRow:
    """A closed hour of one camera's heatmap, sparse: the cells people stood in."""

    camera_id: str
    hour: datetime
    grid_w: int
    grid_h: int
    frames: int
    cells: list[int]
    person_s: list[float]
    dwell_s: list[float]


@dataclass(frozen=True)
class LateFrame:
    """A frame that arrived after its minute was closed."""

    camera_id: str
    ts: datetime
    frame_id: int
    minute: datetime


_UPSERT_MINUTE = """
INSERT INTO occupancy_minutes (camera_id, zone_id, minute, frames, visitors, people_avg, people_peak)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (camera_id, zone_id, minute) DO UPDATE SET
    frames = EXCLUDED.frames, visitors = EXCLUDED.visitors, people_avg = EXCLUDED.people_avg,
    people_peak = EXCLUDED.people_peak, updated_at = now()
"""
_INSERT_LATE = """
INSERT INTO occupancy_late (camera_id, ts, frame_id, minute) VALUES (%s, %s, %s, %s)
ON CONFLICT (camera_id, ts) DO NOTHING
"""
_COUNT_LATE = """
UPDATE occupancy_minutes m SET late_frames = (
    SELECT count(*) FROM occupancy_late l WHERE l.camera_id = m.camera_id AND l.minute = m.minute)
WHERE m.camera_id = %s AND m.minute = %s
"""


# The rollups' change log (migration 0012): a row per camera-hour written, stamped with this
# transaction's time like the rows themselves.
_LOG_CHANGE = """
INSERT INTO rollup_changes (source, id, period) VALUES (%s, %s, %s)
ON CONFLICT (source, id, period) DO UPDATE SET changed_at = now()
"""

_UPSERT_HEAT = """
INSERT INTO heatmap_hours (camera_id, hour, grid_w, grid_h, frames, cells, person_s, dwell_s)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (camera_id, hour) DO UPDATE SET
    grid_w = EXCLUDED.grid_w, grid_h = EXCLUDED.grid_h, frames = EXCLUDED.frames,
    cells = EXCLUDED.cells, person_s = EXCLUDED.person_s, dwell_s = EXCLUDED.dwell_s, updated_at = now()
"""


def write_occupancy(conn: Connection, items: list[Any]) -> None:
    """Upsert closed minutes and heatmap hours, record late frames (idempotent: replays
    change nothing)."""
    rows = [i for i in items if isinstance(i, MinuteRow)]
    late = [i for i in items if isinstance(i, LateFrame)]
    heat = [i for i in items if isinstance(i, HeatRow)]
    with conn.transaction(), conn.cursor() as cur:
        if heat:
            cur.executemany(
                _UPSERT_HEAT,
                [
                    (h.camera_id, h.hour, h.grid_w, h.grid_h, h.frames, h.cells, h.person_s, h.dwell_s)
                    for h in heat
                ],
            )
        if rows:
            cur.executemany(
                _UPSERT_MINUTE,
                [
                    (r.camera_id, r.zone_id, r.minute, r.frames, r.visitors, r.people_avg, r.people_peak)
                    for r in rows
                ],
            )
        if late:
            cur.executemany(_INSERT_LATE, [(f.camera_id, f.ts, f.frame_id, f.minute) for f in late])
        touched = {(r.camera_id, r.minute) for r in rows} | {(f.camera_id, f.minute) for f in late}
        if touched:
            cur.executemany(_COUNT_LATE, sorted(touched))
        changes = sorted(
            {
                ("occupancy", camera, minute.replace(minute=0, second=0, microsecond=0))
                for camera, minute in touched
            }
            | {("heatmap", h.camera_id, h.hour) for h in heat}
        )
        if changes:
            cur.executemany(_LOG_CHANGE, changes)


# What retention may delete: rows past their horizon (%(keep)s) that their rollup has read
# (changed before its watermark, less the refresh overlap). Minutes of days with a partition
# go with it (warehouse.partitions); these are the ones still in the default partition.
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


def delete_rolled_up(conn: Connection, keep: dict[str, timedelta], overlap: timedelta) -> dict[str, int]:
    """Delete, in one transaction, each table's rows older than `keep[table]` that the rollups
    have read; returns the rows deleted per table (warehouse.retention says why)."""
    deleted = {}
    with conn.transaction():
        for table, statement in _PRUNE.items():
            params = {"keep": keep[table], "overlap": overlap}
            deleted[table] = conn.execute(statement, params).rowcount
    return deleted
