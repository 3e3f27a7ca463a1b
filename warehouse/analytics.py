"""The analytics pages' questions: risk patterns, trends, footfall, heatmaps and how often
analysts confirm what each signal flags. This module owns no table: it reads the rollups
(`warehouse.rollups` writes them) and, for heatmaps of some hours of the day, the hourly
grids (`warehouse.occupancy`).

Every function takes the caller's `Scope` first, then the store-local days it asks about,
and returns a DataFrame (or a `Heatmap`) whose columns its docstring names; the scope is in
every WHERE clause, and a reversed range (or an id PostgreSQL cannot be sent) raises
`QueryError`. They read rollups, not base tables, so a question about a quarter of a chain
costs milliseconds (docs/WAREHOUSE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from warehouse.db import Connection
from warehouse.scope import QueryError, Scope, check_days, check_text


def risk_pattern(
    conn: Connection, scope: Scope, store_id: str, first_day: date, last_day: date
) -> pd.DataFrame:
    """A store's incidents by weekday (0 = Monday) and local hour over store-local days.
    Columns: weekday, local_hour, incident_type, incidents, high, confirmed, rejected."""
    check_days(first_day, last_day)
    check_text("store_id", store_id)
    rows = conn.execute(
        """SELECT weekday, local_hour, incident_type, sum(incidents)::int AS incidents,
                  sum(high)::int AS high, sum(confirmed)::int AS confirmed, sum(rejected)::int AS rejected
           FROM rollup_risk_pattern
           WHERE store_id = ANY(%(scope)s) AND store_id = %(store)s
             AND local_day BETWEEN %(first)s AND %(last)s
           GROUP BY weekday, local_hour, incident_type ORDER BY weekday, local_hour, incident_type""",
        {"scope": sorted(scope.store_ids), "store": store_id, "first": first_day, "last": last_day},
    ).fetchall()
    columns = ["weekday", "local_hour", "incident_type", "incidents", "high", "confirmed", "rejected"]
    return pd.DataFrame(rows, columns=columns)


def footfall_by_zone(
    conn: Connection, scope: Scope, store_id: str, first_day: date, last_day: date
) -> pd.DataFrame:
    """Footfall and dwell per camera zone and store-local day. Columns: camera_id, zone_id,
    local_day, visitor_minutes, person_minutes, people_peak."""
    check_days(first_day, last_day)
    check_text("store_id", store_id)
    rows = conn.execute(
        """SELECT camera_id, zone_id, local_day, sum(visitor_minutes)::int AS visitor_minutes,
                  sum(person_minutes) AS person_minutes, max(people_peak) AS people_peak
           FROM rollup_footfall_hourly
           WHERE store_id = ANY(%(scope)s) AND store_id = %(store)s
             AND local_day BETWEEN %(first)s AND %(last)s
           GROUP BY camera_id, zone_id, local_day ORDER BY camera_id, zone_id, local_day""",
        {"scope": sorted(scope.store_ids), "store": store_id, "first": first_day, "last": last_day},
    ).fetchall()
    columns = ["camera_id", "zone_id", "local_day", "visitor_minutes", "person_minutes", "people_peak"]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Heatmap:
    """A camera's heatmap over some days: person-seconds and dwell seconds per cell, as
    grid_h x grid_w lists of rows (ready for a Plotly heatmap over the camera frame)."""

    camera_id: str
    days: int
    person_s: list[list[float]]
    dwell_s: list[list[float]]


def camera_heatmap(
    conn: Connection,
    scope: Scope,
    camera_id: str,
    first_day: date,
    last_day: date,
    hours: tuple[int, int] | None = None,
) -> Heatmap | None:
    """The camera's heatmap summed over store-local days (None when it has none there).
    `hours` = (from, to) keeps only those store-local hours of each day (from <= hour < to);
    it reads the hourly grids, which are kept `retention_heatmap_days`; whole days come from
    the daily rollup, which is kept for good. `days` counts the days (or hours) summed."""
    check_days(first_day, last_day)
    check_text("camera_id", camera_id)
    params = {"scope": sorted(scope.store_ids), "camera": camera_id, "first": first_day, "last": last_day}
    if hours is None or hours == (0, 24):
        rows = conn.execute(
            """SELECT grid_w, grid_h, cells, person_s, dwell_s FROM rollup_heatmap_daily
               WHERE store_id = ANY(%(scope)s) AND camera_id = %(camera)s
                 AND local_day BETWEEN %(first)s AND %(last)s
               ORDER BY local_day""",
            params,
        ).fetchall()
    else:
        start, end = hours
        if not 0 <= start < end <= 24:
            msg = f"hours: {start} to {end} is not a range within 0..24"
            raise QueryError(msg)
        rows = conn.execute(
            """SELECT h.grid_w, h.grid_h, h.cells, h.person_s, h.dwell_s
               FROM heatmap_hours h JOIN cameras c ON c.id = h.camera_id JOIN stores s ON s.id = c.store_id
               WHERE c.store_id = ANY(%(scope)s) AND h.camera_id = %(camera)s
                 AND h.hour >= (%(first)s::date - 1)::timestamp AT TIME ZONE 'UTC'
                 AND h.hour < (%(last)s::date + 2)::timestamp AT TIME ZONE 'UTC'
                 AND (h.hour AT TIME ZONE s.timezone)::date BETWEEN %(first)s AND %(last)s
                 AND extract(hour FROM h.hour AT TIME ZONE s.timezone) >= %(start)s
                 AND extract(hour FROM h.hour AT TIME ZONE s.timezone) < %(end)s
               ORDER BY h.hour""",
            params | {"start": start, "end": end},
        ).fetchall()
    if not rows:
        return None
    # The newest grid size counts (a camera whose grid changed mid-range: the other days are
    # left out rather than mixed into cells that mean something else).
    width, height = rows[-1]["grid_w"], rows[-1]["grid_h"]
    rows = [r for r in rows if (r["grid_w"], r["grid_h"]) == (width, height)]
    person = [[0.0] * width for _ in range(height)]
    dwell = [[0.0] * width for _ in range(height)]
    for row in rows:
        for cell, spent, still in zip(row["cells"], row["person_s"], row["dwell_s"], strict=True):
            person[cell // width][cell % width] += spent
            dwell[cell // width][cell % width] += still
    return Heatmap(camera_id, len(rows), person, dwell)


def _risk_rollup(
    conn: Connection,
    scope: Scope,
    first_day: date,
    last_day: date,
    stores: tuple[str, ...],
    by: tuple[str, ...],
    sums: tuple[str, ...],
) -> pd.DataFrame:
    """rollup_risk_pattern summed over the stores (all in scope unless named), grouped `by`."""
    check_days(first_day, last_day)
    check_text("stores", *stores)
    group = ", ".join(by)
    totals = ", ".join(f"sum({c})::int AS {c}" for c in sums)
    rows = conn.execute(
        f"""SELECT {group}, {totals} FROM rollup_risk_pattern
           WHERE store_id = ANY(%(scope)s) AND (%(stores)s::text[] IS NULL OR store_id = ANY(%(stores)s))
             AND local_day BETWEEN %(first)s AND %(last)s
           GROUP BY {group} ORDER BY {group}""",  # noqa: S608 (our column names)
        {
            "scope": sorted(scope.store_ids),
            "stores": list(stores) or None,
            "first": first_day,
            "last": last_day,
        },
    ).fetchall()
    return pd.DataFrame(rows, columns=[*by, *sums])


def incident_trend(
    conn: Connection, scope: Scope, first_day: date, last_day: date, stores: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Incidents per store-local day and type (summed over the stores). Columns: local_day,
    incident_type, incidents, high, confirmed, rejected."""
    return _risk_rollup(
        conn,
        scope,
        first_day,
        last_day,
        stores,
        ("local_day", "incident_type"),
        ("incidents", "high", "confirmed", "rejected"),
    )


def risk_patterns(
    conn: Connection, scope: Scope, first_day: date, last_day: date, stores: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Incidents by weekday (0 = Monday) and store-local hour, summed over the stores (all in
    scope unless named). Columns: weekday, local_hour, incidents, high."""
    return _risk_rollup(
        conn, scope, first_day, last_day, stores, ("weekday", "local_hour"), ("incidents", "high")
    )


def detection_quality(conn: Connection, scope: Scope, stores: tuple[str, ...] = ()) -> pd.DataFrame:
    """How often analysts confirm what each signal flags, over all time, summed over the
    stores. Columns: signal ('*': all incidents), incidents, reviewed, confirmed, rejected,
    confirmation_rate (None before any verdict), review_hours_p50 (the stores' medians,
    weighted by their verdicts)."""
    check_text("stores", *stores)
    rows = conn.execute(
        """SELECT signal, sum(incidents)::int AS incidents, sum(reviewed)::int AS reviewed,
                  sum(confirmed)::int AS confirmed, sum(rejected)::int AS rejected,
                  CASE WHEN sum(reviewed) > 0 THEN sum(confirmed)::float8 / sum(reviewed) END
                      AS confirmation_rate,
                  sum(review_hours_p50 * reviewed) / nullif(sum(reviewed) FILTER
                      (WHERE review_hours_p50 IS NOT NULL), 0) AS review_hours_p50
           FROM rollup_detection_quality
           WHERE store_id = ANY(%(scope)s) AND (%(stores)s::text[] IS NULL OR store_id = ANY(%(stores)s))
           GROUP BY signal ORDER BY signal""",
        {"scope": sorted(scope.store_ids), "stores": list(stores) or None},
    ).fetchall()
    columns = [
        "signal",
        "incidents",
        "reviewed",
        "confirmed",
        "rejected",
        "confirmation_rate",
        "review_hours_p50",
    ]
    return pd.DataFrame(rows, columns=columns)
