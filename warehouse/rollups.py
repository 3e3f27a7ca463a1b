"""Rollups: DuckDB aggregates the base tables, PostgreSQL serves the results.

Each rollup partitions its rows by an id (a store or a camera) and a period column (a
store-local day, an hour, a month). A refresh finds the (id, first period, last period)
windows that base-table changes since its watermark touched, copies exactly the rows of
those windows out of PostgreSQL (`postgres_query`, so the filter runs there), aggregates
them in DuckDB, and replaces those windows of the rollup table, all of them in one
PostgreSQL transaction with the new watermark. A full rebuild is the same code with one
window covering everything, so incremental and full results agree by construction (and the
tests check it).

Where results live: PostgreSQL tables, not DuckDB files. A DuckDB file allows one writer or
many readers, never both, so a dashboard reading it would fail during every refresh; here
readers keep reading the previous rows until the refresh commits, and the warehouse's
scoped, parameterised readers work on them like on any other table (docs/WAREHOUSE.md).

Watermarks come from the base tables' own change columns, which are stamped with the
writer's transaction start; a refresh re-reads OVERLAP before its watermark so that a row
written by a transaction that committed after the last refresh began is never missed
(re-reading a window is harmless: it is replaced with the same result).

Metrics (served by `rollups run --schedule`, warehouse.jobs): each rollup's last successful
refresh, `shrinkwatch_rollup_last_success_timestamp_seconds{rollup}`, is its `rollup_state`
row's `refreshed_at`, read from PostgreSQL when Prometheus scrapes (`read_freshness`): right after a
restart, and whichever process refreshed it; a rollup never refreshed has no sample, and while
PostgreSQL does not answer none has. `shrinkwatch_rollup_failures_total{rollup}` counts this
process's refreshes that raised.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from prometheus_client import Counter

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.metrics import ReadAtScrape, read_at_scrape
from warehouse.db import Connection, connect
from warehouse.duck import open_duckdb

log = logging.getLogger(__name__)
OVERLAP = timedelta(minutes=10)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = re.compile(r"^[a-z0-9-]{1,64}$")


@dataclass(frozen=True)
class Rollup:
    """One rollup: its table, how changes map to windows, its source rows and aggregate."""

    name: str
    id_column: str  # the rollup table's partition id (store_id or camera_id)
    period: str  # the rollup table's period column
    changed: str  # PostgreSQL: (id, first, last) windows touched since %(since)s
    source: str  # PostgreSQL: the rows to aggregate, with {window} as a WHERE condition
    source_id: str  # the source's id expression (a window's rows: this id ...)
    source_period: str | None  # ... and this expression between the window's periods
    aggregate: str  # DuckDB over `src`: the rollup rows, in `columns` order
    columns: tuple[str, ...]
    # When set, source_period is a plain column and a window's rows are those with
    # first <= column < last + period_step: a range an index (and partition pruning) serves.
    period_step: timedelta | None = None
    # For store-local periods: a plain timestamp column and how far before the first period
    # and after the last one its rows can lie; the window then also bounds that column
    # (an index range), beside the exact store-local condition.
    source_time: str | None = None
    time_slack: tuple[timedelta, timedelta] = (timedelta(days=1), timedelta(days=2))
    # Incremental refreshes ask this query (if set) instead of `changed`: the change log
    # the writers keep (migration 0012), so nothing scans the base table's old rows.
    changed_recently: str | None = None

    @property
    def table(self) -> str:
        return f"rollup_{self.name}"


_LOCAL_DAY = "(i.started_at AT TIME ZONE s.timezone)::date"
_INCIDENT_CHANGED = "greatest(i.last_written_at, i.reviewed_at) > %(since)s"

RISK_PATTERN = Rollup(
    name="risk_pattern",
    id_column="store_id",
    period="local_day",
    changed=f"""SELECT i.store_id, min({_LOCAL_DAY}), max({_LOCAL_DAY})
        FROM incidents i JOIN stores s ON s.id = i.store_id
        WHERE {_INCIDENT_CHANGED} GROUP BY i.store_id""",
    source="""SELECT i.store_id, i.started_at AT TIME ZONE s.timezone AS local_ts, i.incident_type,
               i.risk_level, i.user_confirmed
        FROM incidents i JOIN stores s ON s.id = i.store_id WHERE {window}""",
    source_id="i.store_id",
    source_period=_LOCAL_DAY,
    source_time="i.started_at",
    aggregate="""SELECT store_id, CAST(local_ts AS DATE) AS local_day, isodow(local_ts) - 1 AS weekday,
               hour(local_ts) AS local_hour, incident_type, count(*) AS incidents,
               count(*) FILTER (WHERE risk_level = 'high') AS high,
               count(*) FILTER (WHERE user_confirmed) AS confirmed,
               count(*) FILTER (WHERE NOT user_confirmed) AS rejected
        FROM src GROUP BY ALL ORDER BY ALL""",
    columns=(
        "store_id",
        "local_day",
        "weekday",
        "local_hour",
        "incident_type",
        "incidents",
        "high",
        "confirmed",
        "rejected",
    ),
)

_LOCAL_MONTH = "date_trunc('month', i.started_at AT TIME ZONE s.timezone)::date"
ROI_MONTHLY = Rollup(
    name="roi_monthly",
    id_column="store_id",
    period="month",
    # A store's economics changing re-prices all its months (NULL first/last: every period).
    changed=f"""SELECT i.store_id, min({_LOCAL_MONTH}), max({_LOCAL_MONTH})
        FROM incidents i JOIN stores s ON s.id = i.store_id
        WHERE {_INCIDENT_CHANGED} GROUP BY i.store_id
        UNION ALL SELECT id, NULL, NULL FROM stores WHERE updated_at > %(since)s""",
    source=f"""SELECT i.store_id, {_LOCAL_MONTH} AS month, i.user_confirmed,
               coalesce(s.economics->>'currency', 'GBP') AS currency,
               coalesce((s.economics->>'avg_loss_per_incident')::float8, 0) AS avg_loss,
               coalesce((s.economics->>'recovery_rate')::float8, 0) AS recovery_rate,
               coalesce((s.economics->>'monthly_cost')::float8, 0) AS monthly_cost
        FROM incidents i JOIN stores s ON s.id = i.store_id WHERE {{window}}""",
    source_id="i.store_id",
    source_period=_LOCAL_MONTH,
    source_time="i.started_at",
    time_slack=(timedelta(days=1), timedelta(days=33)),  # periods are first days of months
    aggregate="""WITH months AS (
            SELECT store_id, month, any_value(currency) AS currency,
                   count(*) FILTER (WHERE user_confirmed) AS confirmed,
                   any_value(avg_loss) AS avg_loss, any_value(recovery_rate) AS recovery_rate,
                   any_value(monthly_cost) AS monthly_cost
            FROM src GROUP BY store_id, month)
        SELECT store_id, month, currency, confirmed,
               confirmed * avg_loss * recovery_rate AS prevented_loss, monthly_cost,
               confirmed * avg_loss * recovery_rate - monthly_cost AS net_benefit,
               CASE WHEN monthly_cost > 0
                    THEN (confirmed * avg_loss * recovery_rate - monthly_cost) / monthly_cost * 100 END,
               CASE WHEN confirmed * avg_loss * recovery_rate > 0
                    THEN monthly_cost / (confirmed * avg_loss * recovery_rate) END
        FROM months ORDER BY ALL""",
    columns=(
        "store_id",
        "month",
        "currency",
        "confirmed",
        "prevented_loss",
        "monthly_cost",
        "net_benefit",
        "roi_pct",
        "payback_months",
    ),
)

FOOTFALL_HOURLY = Rollup(
    name="footfall_hourly",
    id_column="camera_id",
    period="hour",
    changed="""SELECT camera_id, min(date_trunc('hour', minute)), max(date_trunc('hour', minute))
        FROM occupancy_minutes WHERE updated_at > %(since)s GROUP BY camera_id""",
    source="""SELECT c.store_id, o.camera_id, o.zone_id,
               date_trunc('hour', o.minute) AT TIME ZONE 'UTC' AS hour,
               date_trunc('hour', o.minute) AT TIME ZONE s.timezone AS local_ts,
               o.visitors, o.people_avg, o.people_peak, o.frames
        FROM occupancy_minutes o JOIN cameras c ON c.id = o.camera_id JOIN stores s ON s.id = c.store_id
        WHERE {window}""",
    source_id="o.camera_id",
    source_period="o.minute",
    period_step=timedelta(hours=1),
    changed_recently="""SELECT id, min(period), max(period) FROM rollup_changes
        WHERE source = 'occupancy' AND changed_at > %(since)s GROUP BY id""",
    # (The hour leaves DuckDB as UTC text: its time-zone-aware values need pytz in Python.)
    aggregate="""SELECT store_id, camera_id, zone_id, strftime(hour, '%Y-%m-%d %H:%M:%S+00') AS hour,
               CAST(any_value(local_ts) AS DATE) AS local_day,
               hour(any_value(local_ts)) AS local_hour, sum(visitors) AS visitor_minutes,
               sum(people_avg) AS person_minutes, max(people_peak) AS people_peak, sum(frames) AS frames
        FROM src GROUP BY store_id, camera_id, zone_id, hour ORDER BY ALL""",
    columns=(
        "store_id",
        "camera_id",
        "zone_id",
        "hour",
        "local_day",
        "local_hour",
        "visitor_minutes",
        "person_minutes",
        "people_peak",
        "frames",
    ),
)

_HEAT_DAY = "(h.hour AT TIME ZONE s.timezone)::date"
HEATMAP_DAILY = Rollup(
    name="heatmap_daily",
    id_column="camera_id",
    period="local_day",
    changed=f"""SELECT h.camera_id, min({_HEAT_DAY}), max({_HEAT_DAY})
        FROM heatmap_hours h JOIN cameras c ON c.id = h.camera_id JOIN stores s ON s.id = c.store_id
        WHERE h.updated_at > %(since)s GROUP BY h.camera_id""",
    # The sparse arrays travel as they are (a tenth of the bytes of one row per cell) and
    # are unnested in DuckDB.
    source=f"""SELECT c.store_id, h.camera_id, {_HEAT_DAY} AS local_day, h.hour, h.grid_w, h.grid_h,
               h.cells, h.person_s, h.dwell_s
        FROM heatmap_hours h JOIN cameras c ON c.id = h.camera_id JOIN stores s ON s.id = c.store_id
        WHERE {{window}}""",
    source_id="h.camera_id",
    source_period=_HEAT_DAY,
    source_time="h.hour",
    changed_recently="""SELECT r.id, min((r.period AT TIME ZONE s.timezone)::date),
               max((r.period AT TIME ZONE s.timezone)::date)
        FROM rollup_changes r JOIN cameras c ON c.id = r.id JOIN stores s ON s.id = c.store_id
        WHERE r.source = 'heatmap' AND r.changed_at > %(since)s GROUP BY r.id""",
    aggregate="""WITH hourly AS MATERIALIZED (SELECT * FROM src),
        cells AS (
            SELECT store_id, camera_id, local_day, grid_w, grid_h, cell,
                   sum(person_s) AS person_s, sum(dwell_s) AS dwell_s
            FROM (SELECT store_id, camera_id, local_day, grid_w, grid_h, unnest(cells) AS cell,
                         unnest(person_s) AS person_s, unnest(dwell_s) AS dwell_s FROM hourly)
            GROUP BY ALL),
        hours AS (SELECT camera_id, local_day, count(DISTINCT hour) AS hours FROM hourly GROUP BY ALL)
        SELECT c.store_id, c.camera_id, c.local_day, c.grid_w, c.grid_h, h.hours,
               list(c.cell ORDER BY c.cell), list(round(c.person_s, 3) ORDER BY c.cell),
               list(round(c.dwell_s, 3) ORDER BY c.cell)
        FROM cells c JOIN hours h USING (camera_id, local_day)
        GROUP BY c.store_id, c.camera_id, c.local_day, c.grid_w, c.grid_h, h.hours ORDER BY ALL""",
    columns=(
        "store_id",
        "camera_id",
        "local_day",
        "grid_w",
        "grid_h",
        "hours",
        "cells",
        "person_s",
        "dwell_s",
    ),
)

DETECTION_QUALITY = Rollup(
    name="detection_quality",
    id_column="store_id",
    period="",  # no period: a store's whole history is one window
    changed=f"""SELECT DISTINCT i.store_id, NULL::date AS first, NULL::date AS last FROM incidents i
        WHERE {_INCIDENT_CHANGED}""",
    source="""SELECT i.store_id, i.incident_type, i.user_confirmed,
               extract(epoch FROM i.reviewed_at - i.started_at) / 3600.0 AS review_hours,
               coalesce(array(SELECT s ->> 'name' FROM jsonb_array_elements(i.signals) s), '{{}}') AS signals
        FROM incidents i WHERE {window}""",
    source_id="i.store_id",
    source_period=None,
    aggregate="""WITH per_signal AS (
            SELECT store_id, incident_type, unnest(list_append(signals, '*')) AS signal, user_confirmed,
                   review_hours
            FROM src)
        SELECT store_id, incident_type, signal, count(*) AS incidents,
               count(user_confirmed) AS reviewed,
               count(*) FILTER (WHERE user_confirmed) AS confirmed,
               count(*) FILTER (WHERE NOT user_confirmed) AS rejected,
               CASE WHEN count(user_confirmed) > 0
                    THEN count(*) FILTER (WHERE user_confirmed) / count(user_confirmed) END,
               quantile_cont(review_hours, 0.5) FILTER (WHERE user_confirmed IS NOT NULL),
               quantile_cont(review_hours, 0.9) FILTER (WHERE user_confirmed IS NOT NULL)
        FROM per_signal GROUP BY ALL ORDER BY ALL""",
    columns=(
        "store_id",
        "incident_type",
        "signal",
        "incidents",
        "reviewed",
        "confirmed",
        "rejected",
        "confirmation_rate",
        "review_hours_p50",
        "review_hours_p90",
    ),
)

ROLLUPS = (RISK_PATTERN, ROI_MONTHLY, FOOTFALL_HOURLY, HEATMAP_DAILY, DETECTION_QUALITY)

FAILURES = Counter("shrinkwatch_rollup_failures", "Rollup refreshes that failed, per rollup.", ["rollup"])
for _rollup in ROLLUPS:
    FAILURES.labels(_rollup.name)
LAST_SUCCESS = "shrinkwatch_rollup_last_success_timestamp_seconds"
LAST_SUCCESS_HELP = "When each rollup last refreshed successfully (unix seconds), read from PostgreSQL."
SCRAPE_CONNECT_S = 3.0  # within Prometheus's 10 s scrape timeout


@dataclass(frozen=True)
class Window:
    """Rows of one id between two periods (inclusive); None: the whole id, or everything."""

    id: str | None = None
    first: date | datetime | None = None
    last: date | datetime | None = None


def _literal(value: str | date | datetime) -> str:
    """A PostgreSQL literal of one of our own values (an id or a period), checked first:
    `postgres_query` takes SQL text, not parameters."""
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    if not _ID.match(value):
        msg = f"not an id a rollup can use: {value!r}"
        raise ShrinkwatchError(msg)
    return f"'{value}'"


def _condition(rollup: Rollup, window: Window) -> str:
    if window.id is None:
        return "true"
    same_id = f"{rollup.source_id} = {_literal(window.id)}"
    if window.first is None or window.last is None or rollup.source_period is None:
        return same_id  # the whole id
    if rollup.period_step is not None:
        assert isinstance(window.last, datetime)
        return (
            f"{same_id} AND {rollup.source_period} >= {_literal(window.first)} "
            f"AND {rollup.source_period} < {_literal(window.last + rollup.period_step)}"
        )
    exact = f"{rollup.source_period} BETWEEN {_literal(window.first)} AND {_literal(window.last)}"
    if rollup.source_time is None:
        return f"{same_id} AND {exact}"
    before, after = rollup.time_slack
    low = datetime.combine(window.first, datetime.min.time(), UTC) - before
    high = datetime.combine(window.last, datetime.min.time(), UTC) + after
    return (
        f"{same_id} AND {rollup.source_time} >= {_literal(low)} AND {rollup.source_time} < {_literal(high)} "
        f"AND {exact}"
    )


def _delete(rollup: Rollup, window: Window) -> tuple[str, dict[str, Any]]:
    if window.id is None:
        return f"DELETE FROM {rollup.table}", {}  # noqa: S608 (our table names)
    if window.first is None or window.last is None:
        return f"DELETE FROM {rollup.table} WHERE {rollup.id_column} = %(id)s", {"id": window.id}  # noqa: S608
    return (
        f"DELETE FROM {rollup.table} WHERE {rollup.id_column} = %(id)s "  # noqa: S608
        f"AND {rollup.period} BETWEEN %(first)s AND %(last)s",
        {"id": window.id, "first": window.first, "last": window.last},
    )


def _windows(conn: Connection, rollup: Rollup, since: datetime) -> list[Window]:
    """The windows base-table changes since `since` touched, one per id (widest wins)."""
    found: dict[str, Window] = {}
    query = rollup.changed_recently if rollup.changed_recently and since > EPOCH else rollup.changed
    for row in conn.execute(query, {"since": since}).fetchall():
        ident, first, last = row.values()  # (the queries name their three columns apart)
        seen = found.get(ident)
        if first is None or (seen is not None and seen.first is None):
            found[ident] = Window(ident)
        elif seen is None:
            found[ident] = Window(ident, first, last)
        else:
            found[ident] = Window(ident, min(first, seen.first), max(last, seen.last))
    return [found[k] for k in sorted(found)]


@dataclass(frozen=True)
class Refreshed:
    """What one rollup refresh did."""

    name: str
    windows: int
    rows: int
    seconds: float


def refresh(dsn: str, rollup: Rollup, *, full: bool = False) -> Refreshed:
    """Bring one rollup up to date (or rebuild it); see the module docstring."""
    started = time.perf_counter()
    with connect(dsn) as conn:
        state = conn.execute("SELECT watermark FROM rollup_state WHERE name = %s", (rollup.name,)).fetchone()
        now_row = conn.execute("SELECT now() AS now").fetchone()
        assert now_row is not None
        watermark: datetime = now_row["now"]
        conn.commit()
        rebuild = full or state is None
        # A rebuild replaces, for each id, the periods its base rows cover now: rollup rows
        # whose base rows were pruned (retention) are history and stay.
        since = EPOCH if full or state is None else state["watermark"] - OVERLAP
        windows = _windows(conn, rollup, since)
        conn.commit()
        duck = open_duckdb(dsn)
        try:
            results = []
            # One source query per refresh: a rebuild reads everything; an incremental refresh
            # reads its windows together (a query per window costs ~0.1 s each, and a new hour
            # touches every camera).
            if rebuild:
                batches = [("true", windows)]
            elif windows:
                batches = [(" OR ".join(f"({_condition(rollup, w)})" for w in windows), windows)]
            else:
                batches = []
            for condition, replaced in batches:
                query = rollup.source.format(window=condition).replace("'", "''")
                # A view: the aggregate streams the rows (a rebuild of a chain's footfall is
                # tens of millions of them; an aggregate reading them twice materialises).
                duck.execute(
                    f"CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM postgres_query('pg', '{query}')"
                )
                results.append((replaced, duck.execute(rollup.aggregate).fetchall()))
        finally:
            duck.close()
        written = 0
        copy = f"COPY {rollup.table} ({', '.join(rollup.columns)}) FROM STDIN"
        with conn.transaction(), conn.cursor() as cur:
            for replaced, rows in results:
                for window in replaced:
                    cur.execute(*_delete(rollup, window))
                if rows:
                    with cur.copy(copy) as out:
                        for row in rows:
                            out.write_row(row)
                written += len(rows)
            cur.execute(
                """INSERT INTO rollup_state (name, watermark, refreshed_at, rows_written)
                   VALUES (%s, %s, now(), %s)
                   ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark,
                       refreshed_at = now(), rows_written = EXCLUDED.rows_written""",
                (rollup.name, watermark, written),
            )
        if rebuild:
            # A rebuild replaced every row: clear the dead ones and refresh the statistics now,
            # so readers' index scans do not wade through them until autovacuum comes by.
            conn.autocommit = True
            conn.execute(f"VACUUM (ANALYZE) {rollup.table}")
    return Refreshed(rollup.name, len(windows), written, time.perf_counter() - started)


def last_refreshed(conn: Connection) -> dict[str, datetime]:
    """When each rollup that was ever refreshed last was: {name: refreshed_at}."""
    return {r["name"]: r["refreshed_at"] for r in conn.execute("SELECT name, refreshed_at FROM rollup_state")}


def read_freshness(dsn: str) -> dict[str, float]:
    """Each refreshed rollup's last success (unix seconds), as PostgreSQL holds it now."""
    with connect(dsn, autocommit=True, timeout_s=SCRAPE_CONNECT_S) as conn:
        return {name: at.timestamp() for name, at in sorted(last_refreshed(conn).items())}


def freshness(dsn: str) -> ReadAtScrape:
    """The last-success gauge of this database, read at each scrape (not registered)."""
    return ReadAtScrape(LAST_SUCCESS, LAST_SUCCESS_HELP, ["rollup"], partial(read_freshness, dsn))


def watch_freshness(dsn: str) -> None:
    """Export the last-success gauge of this database from this process's registry (once per
    process; a later call points it at `dsn`)."""
    read_at_scrape(LAST_SUCCESS, LAST_SUCCESS_HELP, ["rollup"], partial(read_freshness, dsn))


def run_rollups(
    dsn: str,
    *,
    full: bool = False,
    only: Iterable[str] | None = None,
    progress: Callable[[str], None] = log.info,
) -> list[Refreshed]:
    """Refresh every rollup (or those named), incrementally unless `full`; the first that
    fails is counted (FAILURES) and raises, and the rest wait for the next run."""
    wanted = set(only) if only else None
    unknown = sorted((wanted or set()) - {r.name for r in ROLLUPS})
    if unknown:
        msg = f"unknown rollup(s) {', '.join(unknown)}; known: {', '.join(r.name for r in ROLLUPS)}"
        raise ShrinkwatchError(msg)
    done = []
    for rollup in ROLLUPS:
        if wanted is not None and rollup.name not in wanted:
            continue
        try:
            result = refresh(dsn, rollup, full=full)
        except Exception:
            FAILURES.labels(rollup.name).inc()
            raise
        progress(
            f"{result.name}: {result.rows} rows in {result.windows} window(s), {result.seconds:.2f} s"
            + (" (full rebuild)" if full else "")
        )
        done.append(result)
    return done
