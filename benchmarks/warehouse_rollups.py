"""The warehouse at chain scale: rollup build and refresh, and the dashboard's questions.

Seeds synthetic history (`warehouse seed`), then reports:
- the full rollup build, and the incremental refresh after one new hour of every camera
  (target: <= 5 s);
- the dashboard's questions (a camera's heatmap for a week, a store's risk pattern for a
  quarter, chain ROI for a year, one page of a filtered incident list, footfall per zone for
  a month): p50/p95 from the rollups vs the same answers computed from the base tables in
  the same run (targets: p95 <= 150 ms, >= 10x faster);
- the same questions while a full rebuild runs, and whether any reader saw a half-written
  result (the risk pattern's total must be the old one or the new one, nothing between).
Usage: python -m benchmarks.warehouse_rollups [--days 90] [--stores 20] [--cameras 10]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from benchmarks.common import bench_settings, keep_as_seed, machine, seed_database, services
from shrinkwatch.contracts import Incident, Signal
from warehouse.analytics import camera_heatmap, footfall_by_zone, risk_pattern
from warehouse.db import Connection, connect
from warehouse.economics import roi_by_month
from warehouse.incidents import incidents_page, upsert_incidents
from warehouse.occupancy import HeatRow, MinuteRow, write_occupancy
from warehouse.rollups import run_rollups
from warehouse.scope import IncidentFilter, Scope
from warehouse.seed import ZONES, seed_history, seeded_stores

REPEAT = 10


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any], repeat: int = REPEAT) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def questions(
    conn: Connection, scope: Scope, end: date
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """{question: (from the rollups, from the base tables)} answering the same thing.

    The base-table queries are written as well as the rollups': each bounds its timestamps
    in UTC (store-local days lie within a day of them) so that the indexes and the daily
    partitions serve it, and filters the store-local days exactly."""
    week, quarter, month = end - timedelta(days=6), end - timedelta(days=90), end - timedelta(days=29)
    filters = IncidentFilter(levels=("high", "medium"), review=("unreviewed", "confirmed"), first_day=month)
    params = {
        "first": month,
        "last": end,
        "store": "seed-001",
        "camera": "seed-001-cam-01",
        "lo": month - timedelta(days=1),
        "hi": end + timedelta(days=2),
    }

    def base(sql: str, **extra: Any) -> Callable[[], Any]:
        return lambda: conn.execute(sql, {**params, **extra}).fetchall()

    return {
        "camera heatmap, a week": (
            lambda: camera_heatmap(conn, scope, "seed-001-cam-01", week, end),
            base(
                """SELECT u.cell, sum(u.person_s), sum(u.dwell_s)
                   FROM heatmap_hours h JOIN cameras c ON c.id = h.camera_id
                   JOIN stores s ON s.id = c.store_id
                   CROSS JOIN LATERAL unnest(h.cells, h.person_s, h.dwell_s) AS u(cell, person_s, dwell_s)
                   WHERE h.camera_id = %(camera)s AND h.hour >= %(lo)s AND h.hour < %(hi)s
                     AND (h.hour AT TIME ZONE s.timezone)::date BETWEEN %(week)s AND %(last)s
                   GROUP BY u.cell""",
                week=week,
                lo=week - timedelta(days=1),
            ),
        ),
        "store risk pattern, a quarter": (
            lambda: risk_pattern(conn, scope, "seed-001", quarter, end),
            base(
                """SELECT extract(isodow FROM i.started_at AT TIME ZONE s.timezone) - 1,
                          extract(hour FROM i.started_at AT TIME ZONE s.timezone), i.incident_type, count(*)
                   FROM incidents i JOIN stores s ON s.id = i.store_id
                   WHERE i.store_id = %(store)s AND i.started_at >= %(lo)s AND i.started_at < %(hi)s
                     AND (i.started_at AT TIME ZONE s.timezone)::date BETWEEN %(quarter)s AND %(last)s
                   GROUP BY 1, 2, 3""",
                quarter=quarter,
                lo=quarter - timedelta(days=1),
            ),
        ),
        "chain ROI, a year": (
            lambda: roi_by_month(conn, scope, end - timedelta(days=365), end),
            base(
                """SELECT i.store_id, date_trunc('month', i.started_at AT TIME ZONE s.timezone),
                          count(*) FILTER (WHERE i.user_confirmed)
                          * coalesce((s.economics->>'avg_loss_per_incident')::float8, 0)
                          * coalesce((s.economics->>'recovery_rate')::float8, 0)
                   FROM incidents i JOIN stores s ON s.id = i.store_id
                   WHERE i.started_at >= %(year)s GROUP BY i.store_id, 2, s.economics""",
                year=end - timedelta(days=365),
            ),
        ),
        "incident list, one filtered page": (
            lambda: incidents_page(conn, scope, filters, page_size=50),
            base(
                """SELECT i.* FROM incidents i JOIN stores s ON s.id = i.store_id
                   WHERE i.risk_level IN ('high', 'medium') AND i.user_confirmed IS NOT FALSE
                     AND i.started_at >= %(lo)s
                     AND (i.started_at AT TIME ZONE s.timezone)::date >= %(first)s
                   ORDER BY i.started_at DESC, i.incident_id DESC LIMIT 50"""
            ),
        ),
        "footfall per zone, a month": (
            lambda: footfall_by_zone(conn, scope, "seed-001", month, end),
            base(
                """SELECT o.camera_id, o.zone_id, (o.minute AT TIME ZONE s.timezone)::date,
                          sum(o.visitors), sum(o.people_avg), max(o.people_peak)
                   FROM occupancy_minutes o JOIN cameras c ON c.id = o.camera_id
                   JOIN stores s ON s.id = c.store_id
                   WHERE c.store_id = %(store)s AND o.minute >= %(lo)s AND o.minute < %(hi)s
                     AND (o.minute AT TIME ZONE s.timezone)::date BETWEEN %(first)s AND %(last)s
                   GROUP BY 1, 2, 3"""
            ),
        ),
    }


def new_hour(dsn: str, cameras: list[tuple[str, str]], hour: datetime) -> None:
    """One more hour of every camera: occupancy, a heatmap hour, an incident each."""
    items: list[Any] = []
    incidents = []
    for camera_id, store_id in cameras:
        for zone in ["*", *(z[0] for z in ZONES)]:
            items += [
                MinuteRow(camera_id, zone, hour + timedelta(minutes=m), 300, 3, 1.5, 3) for m in range(60)
            ]
        items.append(HeatRow(camera_id, hour, 64, 36, 18000, [100, 101], [30.0, 20.0], [10.0, 0.0]))
        incidents.append(
            Incident(
                incident_id=f"bench-{camera_id}-{hour:%Y%m%d%H}",
                version=1,
                store_id=store_id,
                camera_id=camera_id,
                track_id=1,
                incident_type="loitering_high_value",
                risk_score=0.5,
                risk_level="medium",
                status="closed",
                started_at=hour + timedelta(minutes=10),
                updated_at=hour + timedelta(minutes=12),
                ended_at=hour + timedelta(minutes=12),
                zone_ids=["z-shelf"],
                signals=[Signal(name="dwell_high_value_s", value=40.0, contribution=0.5)],
            )
        )
    with connect(dsn) as conn:
        write_occupancy(conn, items)
        upsert_incidents(conn, incidents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument(
        "--reuse-seed",
        action="store_true",
        help="Start from a copy of the seed an earlier --reuse-seed run kept (same --days, --stores, "
        "--cameras); without one, seed and keep a copy for the next run",
    )
    args = parser.parse_args()
    seed = seed_database(args.days, args.stores, args.cameras) if args.reuse_seed else None
    with services(bench_settings(), template=seed) as settings:  # a database and topics of its own
        dsn = settings.database_dsn
        until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        start = time.perf_counter()
        with connect(dsn) as conn:
            if args.reuse_seed and seeded_stores(conn) == args.stores:
                print(f"# warehouse: reusing the seed of a previous run ({args.stores} stores); {machine()}")
                done = None
            else:
                done = seed_history(
                    conn,
                    days=args.days,
                    stores=args.stores,
                    cameras=args.cameras,
                    until=until,
                    replace=True,
                    progress=lambda _m: None,
                )
        if done is not None and seed is not None:
            keep_as_seed(dsn, seed)
        if done is not None:
            print(
                f"# warehouse: {args.days} days x {args.stores} stores x {args.cameras} cameras seeded in "
                f"{time.perf_counter() - start:.0f} s: {done.incidents} incidents, "
                f"{done.occupancy_rows} occupancy "
                f"minutes, {done.heatmap_rows} heatmap hours; {machine()}",
                flush=True,
            )
        full = run_rollups(dsn, full=True, progress=lambda _m: None)
        print(
            f"full rollup build: {sum(r.seconds for r in full):.1f} s "
            + ", ".join(f"{r.name} {r.seconds:.1f} s" for r in full),
            flush=True,
        )
        with connect(dsn) as conn:
            cameras = [
                (r["id"], r["store_id"])
                for r in conn.execute("SELECT id, store_id FROM cameras WHERE id LIKE 'seed-%'")
            ]
        new_hour(dsn, cameras, until)
        incremental = run_rollups(dsn, progress=lambda _m: None)
        seconds = sum(r.seconds for r in incremental)
        print(
            f"incremental refresh of the latest hour ({len(cameras)} cameras): {seconds:.2f} s "
            "(target <= 5 s)",
            flush=True,
        )

        scope = Scope(frozenset(f"seed-{i + 1:03d}" for i in range(args.stores)))
        with connect(dsn, autocommit=True) as conn:
            asked = questions(conn, scope, until.date())
            for name, (rollup, base) in asked.items():
                rollup()  # warm
                r50, r95 = percentiles(timed(rollup))
                b50, b95 = percentiles(timed(base, repeat=3))
                print(
                    f"{name:34s} rollups p50 {r50:7.1f} ms p95 {r95:7.1f} ms | base tables p50 {b50:8.1f} ms "
                    f"p95 {b95:8.1f} ms | {b50 / r50:6.1f}x (targets: p95 <= 150 ms, >= 10x)",
                    flush=True,
                )

            # Readers during a full rebuild: same questions, and the risk pattern's total.
            def total() -> int:
                row = conn.execute(
                    "SELECT coalesce(sum(incidents), 0) AS n FROM rollup_risk_pattern"
                ).fetchone()
                return int(row["n"]) if row else 0

            # New incidents the rebuild will add: a reader must see the old total or the new one.
            new_hour(dsn, cameras, until + timedelta(hours=1))
            before = total()
            rebuilding = threading.Thread(
                target=lambda: run_rollups(dsn, full=True, progress=lambda _m: None)
            )
            rebuilding.start()
            during: list[float] = []
            totals: set[int] = set()
            while rebuilding.is_alive():
                for rollup, _base in asked.values():
                    during += timed(rollup, repeat=1)
                totals.add(total())
            rebuilding.join()
            after = total()
            d50, d95 = percentiles(during)
            print(
                f"during a full rebuild: {len(during)} answers, p50 {d50:.1f} ms p95 {d95:.1f} ms; "
                f"risk-pattern totals seen {sorted(totals)} (before {before}, after {after}): "
                + ("never half-written" if totals <= {before, after} else "HALF-WRITTEN RESULT SEEN"),
                flush=True,
            )


if __name__ == "__main__":
    main()
