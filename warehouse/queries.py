"""The questions the dashboard and the digests ask of incidents, analytics and cameras:
typed filters, a required scope. (Accounts, site tables, weights and the outbox have their
own modules.)

Every function takes the caller's `Scope` (the store ids it may see) first: a caller limited
to one store gets nothing of another, whatever filters it passes, because the scope is part
of every query's WHERE clause, not a filter applied afterwards. SQL is parameterised only.
Filter values that cannot match (an unknown store, an injection string) give an empty
answer; values that make no sense (a reversed date range, an unknown incident type, a page
size out of bounds) raise `QueryError` with a message a page can show.

Dates are calendar days in each store's own time zone: "1 to 7 March" means the incidents
that started on those days where they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import pandas as pd
from psycopg.types.json import Jsonb

from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.spreadsheets import csv_bytes
from warehouse.db import Connection
from warehouse.rollups import ROI_MONTHLY

RISK_LEVELS = ("low", "medium", "high")
STATUSES = ("open", "closed")
REVIEW_STATES = ("unreviewed", "confirmed", "rejected")


class QueryError(ShrinkwatchError):
    """A filter that makes no sense (the message says which and why)."""


@dataclass(frozen=True)
class Scope:
    """The stores a caller may see; an empty scope sees nothing."""

    store_ids: frozenset[str]

    @classmethod
    def of(cls, *store_ids: str) -> Scope:
        return cls(frozenset(store_ids))


@dataclass(frozen=True)
class IncidentFilter:
    """What to list; None (or empty) means no restriction on that field."""

    stores: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    review: tuple[str, ...] = ()  # unreviewed / confirmed / rejected
    first_day: date | None = None  # store-local, inclusive
    last_day: date | None = None  # store-local, inclusive
    min_score: float = field(default=0.0)
    started_after: datetime | None = None  # an exact window (digests): after ...
    started_before: datetime | None = None  # ... and up to and including this instant

    def check(self) -> None:
        """QueryError naming the first value that makes no sense."""
        for name, values, allowed in (
            ("types", self.types, INCIDENT_TYPES),
            ("levels", self.levels, RISK_LEVELS),
            ("statuses", self.statuses, STATUSES),
            ("review", self.review, REVIEW_STATES),
        ):
            unknown = sorted(set(values) - set(allowed))
            if unknown:
                msg = (
                    f"{name}: unknown value(s) {', '.join(map(repr, unknown))}; expected {', '.join(allowed)}"
                )
                raise QueryError(msg)
        if self.first_day and self.last_day and self.first_day > self.last_day:
            msg = f"date range: {self.first_day} is after {self.last_day}"
            raise QueryError(msg)
        if not 0.0 <= self.min_score <= 1.0:
            msg = f"min_score: {self.min_score} is outside 0..1"
            raise QueryError(msg)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the next page starts after this incident (newest first)."""

    started_at: datetime
    incident_id: str


INCIDENT_COLUMNS = (
    "incident_id",
    "version",
    "store_id",
    "camera_id",
    "track_id",
    "incident_type",
    "risk_score",
    "risk_level",
    "status",
    "started_at",
    "updated_at",
    "ended_at",
    "zone_ids",
    "signals",
    "snapshot",
    "user_confirmed",
    "reviewed_by",
    "reviewed_at",
    "review_note",
    "weights_version",
)

# The scope first; every other condition is "no restriction" when its parameter is NULL.
# Store-local days become each store's UTC bounds, and also bounds a day wider in UTC that
# hold every store's (no time zone is a day away from UTC): a range started_at's index
# serves, whatever the stores. The review states are plain conditions on user_confirmed,
# which the planner can estimate (a CASE expression it cannot: it then sorted everything).
_WHERE = """
    i.store_id = ANY(%(scope)s)
    AND (%(stores)s::text[] IS NULL OR i.store_id = ANY(%(stores)s))
    AND (%(cameras)s::text[] IS NULL OR i.camera_id = ANY(%(cameras)s))
    AND (%(types)s::text[] IS NULL OR i.incident_type = ANY(%(types)s))
    AND (%(levels)s::text[] IS NULL OR i.risk_level = ANY(%(levels)s))
    AND (%(statuses)s::text[] IS NULL OR i.status = ANY(%(statuses)s))
    AND (%(review)s::text[] IS NULL
         OR (i.user_confirmed IS NULL AND 'unreviewed' = ANY(%(review)s))
         OR (i.user_confirmed AND 'confirmed' = ANY(%(review)s))
         OR (NOT i.user_confirmed AND 'rejected' = ANY(%(review)s)))
    AND (%(first_day)s::date IS NULL
         OR (i.started_at >= (%(first_day)s::date - 1)::timestamp AT TIME ZONE 'UTC'
             AND i.started_at >= (%(first_day)s::date::timestamp AT TIME ZONE s.timezone)))
    AND (%(last_day)s::date IS NULL
         OR (i.started_at < (%(last_day)s::date + 2)::timestamp AT TIME ZONE 'UTC'
             AND i.started_at < ((%(last_day)s::date + 1)::timestamp AT TIME ZONE s.timezone)))
    AND i.risk_score >= %(min_score)s
    AND (%(after)s::timestamptz IS NULL OR i.started_at > %(after)s)
    AND (%(before)s::timestamptz IS NULL OR i.started_at <= %(before)s)
"""


def _params(scope: Scope, filters: IncidentFilter) -> dict[str, Any]:
    filters.check()

    def listed(values: tuple[str, ...]) -> list[str] | None:
        return list(values) or None

    return {
        "scope": sorted(scope.store_ids),
        "stores": listed(filters.stores),
        "cameras": listed(filters.cameras),
        "types": listed(filters.types),
        "levels": listed(filters.levels),
        "statuses": listed(filters.statuses),
        "review": listed(filters.review),
        "first_day": filters.first_day,
        "last_day": filters.last_day,
        "min_score": filters.min_score,
        "after": filters.started_after,
        "before": filters.started_before,
    }


# "seen": whether %(viewer)s has seen it (NULL viewer: false), apart from any verdict.
_SEEN = """EXISTS (SELECT 1 FROM incident_seen v
                   WHERE v.incident_id = i.incident_id AND v.username = %(viewer)s) AS seen"""


def incidents_page(
    conn: Connection,
    scope: Scope,
    filters: IncidentFilter = IncidentFilter(),
    *,
    after: Cursor | None = None,
    page_size: int = 50,
    viewer: str | None = None,
) -> tuple[pd.DataFrame, Cursor | None]:
    """One page of incidents, newest first, and the cursor of the next page (None at the
    end). Columns: INCIDENT_COLUMNS, then `seen` (by `viewer`). Keyset paging: as fast on
    page 2,000 as on page 1."""
    if not 1 <= page_size <= 1000:
        msg = f"page_size: {page_size} is outside 1..1000"
        raise QueryError(msg)
    params = _params(scope, filters) | {
        "after_ts": after.started_at if after else None,
        "after_id": after.incident_id if after else None,
        "limit": page_size + 1,
        "viewer": viewer,
    }
    rows = conn.execute(
        f"""SELECT {", ".join(f"i.{c}" for c in INCIDENT_COLUMNS)}, {_SEEN}
            FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE {_WHERE}
              AND (%(after_ts)s::timestamptz IS NULL
                   OR (i.started_at, i.incident_id) < (%(after_ts)s, %(after_id)s))
            ORDER BY i.started_at DESC, i.incident_id DESC
            LIMIT %(limit)s""",  # noqa: S608 (the column list is ours; values are parameters)
        params,
    ).fetchall()
    more = len(rows) > page_size
    rows = rows[:page_size]
    frame = pd.DataFrame(rows, columns=[*INCIDENT_COLUMNS, "seen"])
    cursor = Cursor(rows[-1]["started_at"], rows[-1]["incident_id"]) if more else None
    return frame, cursor


def incident_detail(
    conn: Connection, scope: Scope, incident_id: str, *, viewer: str | None = None
) -> dict[str, Any] | None:
    """One incident (INCIDENT_COLUMNS, `seen`, and the store's name and time zone), or None
    when it does not exist or is outside the scope: the two look the same to the caller."""
    return conn.execute(
        f"""SELECT {", ".join(f"i.{c}" for c in INCIDENT_COLUMNS)}, {_SEEN},
                   s.name AS store_name, s.timezone AS store_timezone
            FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE i.incident_id = %(id)s AND i.store_id = ANY(%(scope)s)""",  # noqa: S608
        {"id": incident_id, "scope": sorted(scope.store_ids), "viewer": viewer},
    ).fetchone()


def next_unreviewed(
    conn: Connection, scope: Scope, filters: IncidentFilter = IncidentFilter(), *, skip: tuple[str, ...] = ()
) -> str | None:
    """The newest incident without a verdict that matches the filters (other than those in
    `skip`), or None when there is none left."""
    params = _params(scope, replace(filters, review=("unreviewed",))) | {"skip": list(skip)}
    row = conn.execute(
        f"""SELECT i.incident_id FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE {_WHERE} AND NOT (i.incident_id = ANY(%(skip)s))
            ORDER BY i.started_at DESC, i.incident_id DESC LIMIT 1""",  # noqa: S608
        params,
    ).fetchone()
    return row["incident_id"] if row else None


def record_verdict(
    conn: Connection, scope: Scope, incident_id: str, *, confirmed: bool, reviewer: str, note: str | None
) -> bool:
    """An analyst's verdict (confirmed or rejected, and a note) on an incident within the
    scope; the calibration learns from it. False when there is no such incident in scope.
    Reviewing also marks the incident seen by the reviewer."""
    note = (note or "").strip() or None
    if note is not None and len(note) > 2000:
        msg = "note: at most 2000 characters"
        raise QueryError(msg)
    with conn.transaction():
        row = conn.execute(
            """UPDATE incidents SET user_confirmed = %(confirmed)s, reviewed_by = %(reviewer)s,
                   reviewed_at = now(), review_note = %(note)s
               WHERE incident_id = %(id)s AND store_id = ANY(%(scope)s) RETURNING incident_id""",
            {
                "confirmed": confirmed,
                "reviewer": reviewer,
                "note": note,
                "id": incident_id,
                "scope": sorted(scope.store_ids),
            },
        ).fetchone()
        if row is not None:
            conn.execute(
                """INSERT INTO incident_seen (incident_id, username) VALUES (%s, %s)
                   ON CONFLICT DO NOTHING""",
                (incident_id, reviewer),
            )
    return row is not None


def incidents_csv(conn: Connection, scope: Scope, filters: IncidentFilter, *, limit: int = 100_000) -> bytes:
    """The filtered list as CSV (newest first, at most `limit` rows; signals as
    name=contribution pairs), for spreadsheets: no cell runs as a formula
    (shrinkwatch.spreadsheets)."""
    params = _params(scope, filters) | {"limit": limit}
    columns = [c for c in INCIDENT_COLUMNS if c not in ("signals", "snapshot")]
    rows = conn.execute(
        f"""SELECT {", ".join(f"i.{c}" for c in columns)},
                   (SELECT string_agg((x ->> 'name') || '=' || round((x ->> 'contribution')::numeric, 3), ' ')
                    FROM jsonb_array_elements(i.signals) x) AS signals
            FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE {_WHERE}
            ORDER BY i.started_at DESC, i.incident_id DESC LIMIT %(limit)s""",  # noqa: S608
        params,
    ).fetchall()
    header = [*columns, "signals"]
    cells = ({**row, "zone_ids": " ".join(row["zone_ids"] or [])} for row in rows)
    return csv_bytes(header, ([row[c] for c in header] for row in cells))


def stores_in_scope(conn: Connection, scope: Scope) -> pd.DataFrame:
    """The stores the caller may see. Columns: id, name, timezone, economics."""
    rows = conn.execute(
        "SELECT id, name, timezone, economics FROM stores WHERE id = ANY(%s) ORDER BY id",
        (sorted(scope.store_ids),),
    ).fetchall()
    return pd.DataFrame(rows, columns=["id", "name", "timezone", "economics"])


def cameras_in_scope(conn: Connection, scope: Scope) -> pd.DataFrame:
    """The cameras of the stores the caller may see. Columns: id, store_id, name, location."""
    rows = conn.execute(
        "SELECT id, store_id, name, location FROM cameras WHERE store_id = ANY(%s) ORDER BY store_id, id",
        (sorted(scope.store_ids),),
    ).fetchall()
    return pd.DataFrame(rows, columns=["id", "store_id", "name", "location"])


def incident_count(conn: Connection, scope: Scope, filters: IncidentFilter = IncidentFilter()) -> int:
    """How many incidents match (within the scope)."""
    row = conn.execute(
        f"SELECT count(*) AS n FROM incidents i JOIN stores s ON s.id = i.store_id WHERE {_WHERE}",  # noqa: S608
        _params(scope, filters),
    ).fetchone()
    return int(row["n"]) if row else 0


def _days(first_day: date, last_day: date) -> None:
    if first_day > last_day:
        msg = f"date range: {first_day} is after {last_day}"
        raise QueryError(msg)


def risk_pattern(
    conn: Connection, scope: Scope, store_id: str, first_day: date, last_day: date
) -> pd.DataFrame:
    """A store's incidents by weekday (0 = Monday) and local hour over store-local days.
    Columns: weekday, local_hour, incident_type, incidents, high, confirmed, rejected."""
    _days(first_day, last_day)
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


def roi_by_month(
    conn: Connection, scope: Scope, first_month: date, last_month: date, stores: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Return on investment per store and month (months as their first day, store-local).
    Columns: store_id, month, currency, confirmed, prevented_loss, monthly_cost, net_benefit,
    roi_pct, payback_months."""
    _days(first_month, last_month)
    rows = conn.execute(
        f"""SELECT {", ".join(ROI_MONTHLY.columns)}
           FROM rollup_roi_monthly
           WHERE store_id = ANY(%(scope)s) AND (%(stores)s::text[] IS NULL OR store_id = ANY(%(stores)s))
             AND month BETWEEN date_trunc('month', %(first)s::date) AND %(last)s
           ORDER BY store_id, month""",
        {
            "scope": sorted(scope.store_ids),
            "stores": list(stores) or None,
            "first": first_month,
            "last": last_month,
        },
    ).fetchall()
    return pd.DataFrame(rows, columns=list(ROI_MONTHLY.columns))


def footfall_by_zone(
    conn: Connection, scope: Scope, store_id: str, first_day: date, last_day: date
) -> pd.DataFrame:
    """Footfall and dwell per camera zone and store-local day. Columns: camera_id, zone_id,
    local_day, visitor_minutes, person_minutes, people_peak."""
    _days(first_day, last_day)
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
    _days(first_day, last_day)
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
    _days(first_day, last_day)
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


def weights_in_force(conn: Connection, scope: Scope) -> pd.DataFrame:
    """The calibrated risk weights in force per store in scope (stores never calibrated are
    absent: they use the defaults). Columns: store_id, version, signal, weight."""
    rows = conn.execute(
        """SELECT DISTINCT ON (store_id) store_id, version, weights FROM risk_weights
           WHERE store_id = ANY(%s) ORDER BY store_id, version DESC""",
        (sorted(scope.store_ids),),
    ).fetchall()
    flat = [
        {"store_id": r["store_id"], "version": r["version"], "signal": name, "weight": weight}
        for r in rows
        for name, weight in sorted(r["weights"].items())
    ]
    return pd.DataFrame(flat, columns=["store_id", "version", "signal", "weight"])


def set_economics(conn: Connection, scope: Scope, store_id: str, economics: dict[str, Any]) -> bool:
    """Replace a store's ROI assumptions (validated like the site file's `economics`); the ROI
    rollup re-prices all of the store's months at its next refresh. False when the store is
    not in scope."""
    from pydantic import ValidationError

    from shrinkwatch.site_file import Economics

    try:
        checked = Economics.model_validate(economics)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise QueryError(problems) from None
    with conn.transaction():
        done = conn.execute(
            """UPDATE stores SET economics = %s, updated_at = now()
               WHERE id = %s AND id = ANY(%s)""",
            (Jsonb(checked.model_dump(exclude_none=True)), store_id, sorted(scope.store_ids)),
        ).rowcount
    return bool(done)


def camera_status(conn: Connection, scope: Scope) -> pd.DataFrame:
    """Each camera of the stores in scope with its reader's latest health (None where no
    reader has reported). Columns: camera_id, store_id, name, status, status_since,
    reported_at, fps_in, fps_analysed, error."""
    rows = conn.execute(
        """SELECT c.id AS camera_id, c.store_id, c.name, h.status, h.status_since, h.reported_at,
                  h.fps_in, h.fps_analysed, h.error
           FROM cameras c LEFT JOIN camera_health h ON h.camera_id = c.id
           WHERE c.store_id = ANY(%s) ORDER BY c.store_id, c.id""",
        (sorted(scope.store_ids),),
    ).fetchall()
    columns = [
        "camera_id",
        "store_id",
        "name",
        "status",
        "status_since",
        "reported_at",
        "fps_in",
        "fps_analysed",
        "error",
    ]
    return pd.DataFrame(rows, columns=columns)
