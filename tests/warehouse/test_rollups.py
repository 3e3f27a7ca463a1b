"""Rollups on a small hand-computed dataset: store time zones, a DST change, ROI, incremental
refresh equal to a full rebuild, and readers during a refresh."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import incident
from tests.support import record_review
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.occupancy import HeatRow, MinuteRow, write_occupancy
from warehouse.rollups import ROLLUPS, run_rollups
from warehouse.scope import QueryError
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - id: store-001
    name: Leeds
    timezone: Europe/London
    economics: {currency: GBP, avg_loss_per_incident: 85.0, recovery_rate: 0.6, monthly_cost: 299.0}
  - {id: store-002, name: Boston, timezone: America/New_York}
cameras:
  - {id: cam-1, store_id: store-001, name: Aisle, stream_url: /dev/null}
  - {id: cam-2, store_id: store-002, name: Aisle, stream_url: /dev/null}
"""
UTC_ = UTC


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC_)


def seed(settings: Settings) -> None:
    incidents = [
        # Boston: Saturday 7 March 21:30 EST, then Sunday 8 March 03:30 EDT (after the change).
        incident(1, incident_id="b1", store_id="store-002", camera_id="cam-2", started_at=at(8, 2, 30)),
        incident(1, incident_id="b2", store_id="store-002", camera_id="cam-2", started_at=at(8, 7, 30)),
        # Leeds (GMT in March): three on Monday 9 March at 10:xx, one high; one on 1 April (BST).
        incident(1, incident_id="l1", started_at=at(9, 10, 5)),
        incident(1, incident_id="l2", started_at=at(9, 10, 40), risk_level="high"),
        incident(1, incident_id="l3", started_at=at(9, 10, 50), incident_type="restricted_zone"),
        incident(
            1, incident_id="l4", started_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
        ),  # 1 April, 00:30 BST
    ]
    minutes = [MinuteRow("cam-1", "*", at(9, 10, m), 300, 2 + m, 1.5, 3) for m in range(3)] + [
        MinuteRow("cam-1", "z-razors", at(9, 10, 0), 300, 1, 0.5, 1)
    ]
    heat = [
        HeatRow("cam-1", at(9, 10), 64, 36, 18000, [5, 70], [10.0, 20.0], [4.0, 0.0]),
        HeatRow("cam-1", at(9, 11), 64, 36, 18000, [70, 900], [1.5, 2.0], [1.5, 0.0]),
        HeatRow("cam-2", at(8, 6), 64, 36, 18000, [1], [1.0], [1.0]),  # 01:00 EST, 8 March
    ]
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        upsert_incidents(conn, incidents)
        record_review(conn, "l1", confirmed=True)
        record_review(conn, "l2", confirmed=True)
        record_review(conn, "l3", confirmed=False)
        write_occupancy(conn, [*minutes, *heat])


def table(settings: Settings, name: str) -> list[dict[str, Any]]:
    with connect(settings.database_dsn) as conn:
        return conn.execute(f"SELECT * FROM rollup_{name} ORDER BY 1, 2, 3, 4").fetchall()  # noqa: S608


def everything(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    return {r.name: table(settings, r.name) for r in ROLLUPS}


def test_each_rollup_on_hand_computed_data(settings: Settings) -> None:
    seed(settings)
    said: list[str] = []
    run_rollups(settings.database_dsn, progress=said.append)
    assert [line.split(":")[0] for line in said] == [r.name for r in ROLLUPS]

    pattern = {
        (r["store_id"], r["local_day"], r["local_hour"], r["incident_type"]): r
        for r in table(settings, "risk_pattern")
    }
    assert set(pattern) == {
        ("store-002", date(2026, 3, 7), 21, "loitering_high_value"),  # Saturday evening, EST
        ("store-002", date(2026, 3, 8), 3, "loitering_high_value"),  # Sunday, EDT
        ("store-001", date(2026, 3, 9), 10, "loitering_high_value"),
        ("store-001", date(2026, 3, 9), 10, "restricted_zone"),
        ("store-001", date(2026, 4, 1), 0, "loitering_high_value"),  # BST
    }
    monday = pattern[("store-001", date(2026, 3, 9), 10, "loitering_high_value")]
    assert (
        monday["weekday"],
        monday["incidents"],
        monday["high"],
        monday["confirmed"],
        monday["rejected"],
    ) == (0, 2, 1, 2, 0)
    assert pattern[("store-002", date(2026, 3, 7), 21, "loitering_high_value")]["weekday"] == 5
    assert pattern[("store-001", date(2026, 3, 9), 10, "restricted_zone")]["rejected"] == 1

    roi = {(r["store_id"], r["month"]): r for r in table(settings, "roi_monthly")}
    march = roi[("store-001", date(2026, 3, 1))]
    assert march["confirmed"] == 2 and march["currency"] == "GBP"
    assert march["prevented_loss"] == pytest.approx(2 * 85.0 * 0.6)  # 102
    assert march["net_benefit"] == pytest.approx(102.0 - 299.0)
    assert march["roi_pct"] == pytest.approx((102.0 - 299.0) / 299.0 * 100)
    assert march["payback_months"] == pytest.approx(299.0 / 102.0)
    april = roi[("store-001", date(2026, 4, 1))]
    assert april["confirmed"] == 0 and april["prevented_loss"] == 0 and april["payback_months"] is None
    boston = roi[("store-002", date(2026, 3, 1))]
    assert boston["monthly_cost"] == 0 and boston["roi_pct"] is None  # no economics given

    footfall = {(r["zone_id"], r["hour"]): r for r in table(settings, "footfall_hourly")}
    whole = footfall[("*", at(9, 10))]
    assert (whole["visitor_minutes"], whole["person_minutes"], whole["people_peak"], whole["frames"]) == (
        9,
        4.5,
        3,
        900,
    )
    assert (whole["store_id"], whole["local_day"], whole["local_hour"]) == ("store-001", date(2026, 3, 9), 10)
    assert footfall[("z-razors", at(9, 10))]["visitor_minutes"] == 1

    heat = {(r["camera_id"], r["local_day"]): r for r in table(settings, "heatmap_daily")}
    day = heat[("cam-1", date(2026, 3, 9))]
    assert (day["hours"], day["cells"], day["grid_w"], day["grid_h"]) == (2, [5, 70, 900], 64, 36)
    assert day["person_s"] == pytest.approx([10.0, 21.5, 2.0]) and day["dwell_s"] == pytest.approx(
        [4.0, 1.5, 0.0]
    )
    assert heat[("cam-2", date(2026, 3, 8))]["cells"] == [1]  # 06:00 UTC is 01:00 in Boston, 8 March


def test_detection_quality_per_type_and_signal(settings: Settings) -> None:
    seed(settings)
    run_rollups(settings.database_dsn)
    quality = {
        (r["store_id"], r["incident_type"], r["signal"]): r for r in table(settings, "detection_quality")
    }
    loitering = quality[("store-001", "loitering_high_value", "*")]
    # l1, l2 confirmed (reviewed just now, minutes to hours after they started), l4 unreviewed.
    assert (loitering["incidents"], loitering["reviewed"], loitering["confirmed"], loitering["rejected"]) == (
        3,
        2,
        2,
        0,
    )
    assert loitering["confirmation_rate"] == 1.0 and loitering["review_hours_p50"] > 0
    assert quality[("store-001", "loitering_high_value", "dwell_high_value_s")]["reviewed"] == 2
    restricted = quality[("store-001", "restricted_zone", "*")]
    assert (restricted["confirmed"], restricted["rejected"], restricted["confirmation_rate"]) == (0, 1, 0.0)
    boston = quality[("store-002", "loitering_high_value", "*")]
    assert (
        boston["reviewed"] == 0 and boston["confirmation_rate"] is None and boston["review_hours_p50"] is None
    )


def test_incremental_refresh_equals_a_full_rebuild(settings: Settings) -> None:
    seed(settings)
    run_rollups(settings.database_dsn)
    with connect(settings.database_dsn) as conn:  # new facts of every kind
        upsert_incidents(
            conn,
            [
                incident(1, incident_id="l5", started_at=at(20, 15)),
                incident(2, incident_id="l1", started_at=at(9, 10, 5), risk_level="high"),
            ],
        )
        record_review(conn, "l4", confirmed=True)
        write_occupancy(
            conn,
            [
                MinuteRow("cam-1", "*", at(9, 10, 30), 300, 4, 2.0, 4),
                HeatRow("cam-1", at(9, 12), 64, 36, 100, [5], [1.0], [0.0]),
            ],
        )
        conn.execute(
            """UPDATE stores SET economics = economics || '{"monthly_cost": 199.0}', updated_at = now()
               WHERE id = 'store-001'"""
        )
        conn.commit()
    results = run_rollups(settings.database_dsn)
    assert all(r.windows >= 1 for r in results)
    incremental = everything(settings)
    run_rollups(settings.database_dsn, full=True)
    assert everything(settings) == incremental
    assert {
        r["month"]: r["monthly_cost"] for r in incremental["roi_monthly"] if r["store_id"] == "store-001"
    } == {
        date(2026, 3, 1): 199.0,
        date(2026, 4, 1): 199.0,
    }
    # Nothing changed since: another incremental run (which re-reads its overlap) changes nothing.
    run_rollups(settings.database_dsn)
    assert everything(settings) == incremental


def test_a_reader_during_a_refresh_sees_the_old_rows_or_the_new_never_half(settings: Settings) -> None:
    seed(settings)
    run_rollups(settings.database_dsn)
    before = table(settings, "risk_pattern")
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1, incident_id=f"n{i}", started_at=at(10, i)) for i in range(12)])
    reader = psycopg.connect(settings.database_dsn, row_factory=psycopg.rows.dict_row)
    reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        assert reader.execute("SELECT count(*) AS n FROM rollup_risk_pattern").fetchone() == {
            "n": len(before)
        }
        run_rollups(settings.database_dsn, full=True)  # commits while the reader's transaction is open
        assert reader.execute("SELECT count(*) AS n FROM rollup_risk_pattern").fetchone() == {
            "n": len(before)
        }
        reader.rollback()
        after = reader.execute("SELECT count(*) AS n FROM rollup_risk_pattern").fetchone()
    finally:
        reader.close()
    assert after == {"n": len(before) + 12}


def test_unknown_rollup_is_a_clear_error(settings: Settings) -> None:
    from shrinkwatch.errors import ShrinkwatchError

    with pytest.raises(ShrinkwatchError, match="unknown rollup"):
        run_rollups(settings.database_dsn, only=["nope"])


def test_the_command_refreshes_and_says_what_it_did(
    settings: Settings, make_settings: Any, tmp_path: Any
) -> None:
    from tests.support import cli_env, run_cli

    seed(settings)
    result = run_cli(["rollups", "run", "--full"], env=cli_env(settings, tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr
    assert (
        "risk_pattern: 5 rows in 2 window(s)" in result.stderr and "(full rebuild)" in result.stderr
    )  # a store each
    assert "rollups refreshed:" in result.stderr
    assert len(table(settings, "risk_pattern")) == 5
    bare = run_cli(["rollups", "run"], env=cli_env(make_settings(), tmp_path), timeout=180)
    assert bare.returncode == 2 and "run `shrinkwatch db migrate` first" in bare.stderr


def test_analytics_queries_read_the_rollups_within_the_scope(settings: Settings) -> None:
    from warehouse.analytics import camera_heatmap, footfall_by_zone, risk_pattern
    from warehouse.economics import roi_by_month
    from warehouse.scope import Scope

    seed(settings)
    run_rollups(settings.database_dsn)
    leeds, boston = Scope.of("store-001"), Scope.of("store-002")
    march = (date(2026, 3, 1), date(2026, 3, 31))
    with connect(settings.database_dsn) as conn:
        pattern = risk_pattern(conn, leeds, "store-001", *march)
        assert list(pattern.itertuples(index=False, name=None)) == [
            (0, 10, "loitering_high_value", 2, 1, 2, 0),
            (0, 10, "restricted_zone", 1, 0, 0, 1),
        ]
        roi = roi_by_month(conn, leeds, date(2026, 1, 1), date(2026, 12, 31))
        assert list(roi["month"]) == [date(2026, 3, 1), date(2026, 4, 1)]
        assert roi_by_month(conn, leeds, *march)["prevented_loss"].tolist() == pytest.approx([102.0])
        footfall = footfall_by_zone(conn, leeds, "store-001", *march)
        assert footfall[footfall["zone_id"] == "*"]["visitor_minutes"].tolist() == [9]
        heat = camera_heatmap(conn, leeds, "cam-1", *march)
        assert (
            heat is not None and heat.days == 1 and len(heat.person_s) == 36 and len(heat.person_s[0]) == 64
        )
        assert heat.person_s[1][6] == pytest.approx(21.5) and heat.dwell_s[0][5] == pytest.approx(4.0)

        # A caller limited to Boston gets nothing of Leeds, from every function.
        assert risk_pattern(conn, boston, "store-001", *march).empty
        assert roi_by_month(conn, boston, date(2026, 1, 1), date(2026, 12, 31), ("store-001",)).empty
        assert set(roi_by_month(conn, boston, date(2026, 1, 1), date(2026, 12, 31))["store_id"]) == {
            "store-002"
        }
        assert footfall_by_zone(conn, boston, "store-001", *march).empty
        assert camera_heatmap(conn, boston, "cam-1", *march) is None
        # Unknown or hostile values find nothing; a reversed range is a clear error.
        assert risk_pattern(conn, leeds, "store-001' OR 'x'='x", *march).empty
        assert camera_heatmap(conn, leeds, "no-such-camera", *march) is None
        with pytest.raises(QueryError, match="is after"):
            footfall_by_zone(conn, leeds, "store-001", date(2026, 3, 31), date(2026, 3, 1))


def test_analytics_answers_and_roi_assumptions(settings: Settings) -> None:
    from warehouse.analytics import detection_quality, incident_trend, risk_patterns
    from warehouse.economics import roi_by_month, set_economics
    from warehouse.scope import Scope

    seed(settings)
    run_rollups(settings.database_dsn)
    leeds, march = Scope.of("store-001"), (date(2026, 3, 1), date(2026, 3, 31))
    with connect(settings.database_dsn) as conn:
        trend = incident_trend(conn, leeds, *march)
        assert list(trend.itertuples(index=False, name=None)) == [
            (date(2026, 3, 9), "loitering_high_value", 2, 1, 2, 0),
            (date(2026, 3, 9), "restricted_zone", 1, 0, 0, 1),
        ]
        assert list(risk_patterns(conn, leeds, *march).itertuples(index=False, name=None)) == [(0, 10, 3, 1)]
        quality = detection_quality(conn, leeds).set_index("signal")
        assert quality.loc["*", ["incidents", "reviewed", "confirmed", "rejected"]].tolist() == [4, 3, 2, 1]
        assert quality.loc["*", "confirmation_rate"] == pytest.approx(2 / 3)

        new = {"currency": "GBP", "avg_loss_per_incident": 100.0, "recovery_rate": 0.5, "monthly_cost": 299.0}
        assert set_economics(conn, leeds, "store-001", new)
        with pytest.raises(QueryError, match="recovery_rate: Input should be less than or equal to 1"):
            set_economics(conn, leeds, "store-001", new | {"recovery_rate": 1.5})
    run_rollups(settings.database_dsn)  # incremental: the new economics re-price every month
    with connect(settings.database_dsn) as conn:
        roi = roi_by_month(conn, leeds, *march)
    assert roi["prevented_loss"].tolist() == pytest.approx([2 * 100.0 * 0.5])
    assert roi["net_benefit"].tolist() == pytest.approx([100.0 - 299.0])


def test_every_query_function_keeps_to_the_scope(settings: Settings) -> None:
    """A caller limited to Boston gets nothing of Leeds from any function of the warehouse that
    takes a scope, whatever it asks for; the list below must name every one of them."""
    import importlib
    import inspect
    import pkgutil
    from types import SimpleNamespace

    import warehouse
    from flows.calibration import calibrate
    from shrinkwatch.site_file import Economics
    from warehouse.accounts import add_user
    from warehouse.disclosures import record_disclosure, record_request
    from warehouse.incident_events import Position
    from warehouse.scope import IncidentFilter, Scope

    layer: dict[str, Any] = {}
    for info in pkgutil.iter_modules(warehouse.__path__):
        module = importlib.import_module(f"warehouse.{info.name}")
        for name, fn in vars(module).items():
            if (
                inspect.isfunction(fn)
                and fn.__module__ == module.__name__
                and not name.startswith("_")
                and "scope" in inspect.signature(fn).parameters
            ):
                assert name not in layer, f"two functions called {name}"
                layer[name] = fn
    q = SimpleNamespace(**layer)

    seed(settings)
    with connect(settings.database_dsn) as conn:
        calibrate(conn, 10, lambda _m: None)
        leeds_window = (datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 2, 18, tzinfo=UTC))
        record_disclosure(
            conn,
            kind="case",
            disclosed_by="ana",
            recipient="West Yorkshire Police",
            reason="theft on 2 March",
            incident_ids=["l1"],
            store_ids=["store-001"],
            file_name="case.zip",
            sha256="0" * 64,
        )
        record_request(
            conn,
            received_on=date(2026, 3, 3),
            requester="a shopper",
            description="",
            store_id="store-001",
            camera_id="cam-1",
            window_start=leeds_window[0],
            window_end=leeds_window[1],
            recorded_by="root",
        )
        conn.commit()
    run_rollups(settings.database_dsn)
    boston, leeds_only = Scope.of("store-002"), IncidentFilter(stores=("store-001",))
    march, year = (date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 1, 1), date(2026, 12, 31))
    year_bounds = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    with connect(settings.database_dsn) as conn:
        add_user(conn, "bo", "store_manager", password="a-long-password", stores=["store-002"])
        economics_before = conn.execute("SELECT economics FROM stores WHERE id = 'store-001'").fetchone()
        checks: dict[str, Any] = {
            "incidents_page": lambda: q.incidents_page(conn, boston, leeds_only)[0].empty,
            "incident_count": lambda: q.incident_count(conn, boston, leeds_only) == 0,
            "incident_detail": lambda: q.incident_detail(conn, boston, "l1") is None,
            "next_unreviewed": lambda: q.next_unreviewed(conn, boston, leeds_only) is None,
            "record_verdict": lambda: (
                not q.record_verdict(conn, boston, "l4", confirmed=True, reviewer="bo", note="mine now")
            ),
            "incidents_csv": lambda: q.incidents_csv(conn, boston, leeds_only).count(b"\n") == 1,
            "stores_in_scope": lambda: list(q.stores_in_scope(conn, boston)["id"]) == ["store-002"],
            "cameras_in_scope": lambda: list(q.cameras_in_scope(conn, boston)["id"]) == ["cam-2"],
            "camera_status": lambda: list(q.camera_status(conn, boston)["camera_id"]) == ["cam-2"],
            "risk_pattern": lambda: q.risk_pattern(conn, boston, "store-001", *march).empty,
            "risk_patterns": lambda: q.risk_patterns(conn, boston, *march, ("store-001",)).empty,
            "incident_trend": lambda: (
                q.incident_trend(conn, boston, *march, ("store-001",)).empty
                and int(q.incident_trend(conn, boston, *march)["incidents"].sum()) == 2
            ),
            "roi_by_month": lambda: q.roi_by_month(conn, boston, *year, ("store-001",)).empty,
            "footfall_by_zone": lambda: q.footfall_by_zone(conn, boston, "store-001", *march).empty,
            "camera_heatmap": lambda: q.camera_heatmap(conn, boston, "cam-1", *march) is None,
            "detection_quality": lambda: q.detection_quality(conn, boston, ("store-001",)).empty,
            "weights_in_force": lambda: (
                q.weights_in_force(conn, boston).empty
                and not q.weights_in_force(conn, Scope.of("store-001")).empty
            ),
            "set_economics": lambda: (
                not q.set_economics(conn, boston, "store-001", {"currency": "USD", "monthly_cost": 1.0})
            ),
            "set_store_economics": lambda: (
                not q.set_store_economics(
                    conn, boston, "store-001", Economics(currency="USD", monthly_cost=1.0)
                )
            ),
            "mark_seen": lambda: q.mark_seen(conn, boston, "bo", ["l1", "b1"]) == 1,  # only Boston's
            "disclosures": lambda: (
                q.disclosures(conn, boston).empty and len(q.disclosures(conn, Scope.of("store-001"))) == 1
            ),
            "disclosures_csv": lambda: q.disclosures_csv(conn, boston).count(b"\n") == 1,
            "access_requests": lambda: (
                q.access_requests(conn, boston, date(2026, 3, 4)).empty
                and len(q.access_requests(conn, Scope.of("store-001"), date(2026, 3, 4))) == 1
            ),
            "camera_incidents": lambda: (
                q.camera_incidents(conn, boston, "cam-1", *year_bounds) == []
                and len(q.camera_incidents(conn, Scope.of("store-001"), "cam-1", *year_bounds)) > 0
            ),
            "read_events": lambda: (  # the live incidents' change log, from its start
                {e.store_id for e in q.read_events(conn, boston, Position(0, 0)).events} == {"store-002"}
                and {e.store_id for e in q.read_events(conn, Scope.of("store-001"), Position(0, 0)).events}
                == {"store-001"}
            ),
        }
        assert set(layer) == set(checks), "every function that takes a scope needs a line here"
        failed = [name for name, check in checks.items() if not check()]
        assert failed == []
        row = conn.execute(
            "SELECT user_confirmed, review_note FROM incidents WHERE incident_id = 'l4'"
        ).fetchone()
        assert row == {"user_confirmed": None, "review_note": None}
        after = conn.execute("SELECT economics FROM stores WHERE id = 'store-001'").fetchone()
        assert after == economics_before


@pytest.mark.parametrize("partitioned", [True, False], ids=["day partitions", "default partition"])
def test_retention_prunes_only_what_the_rollups_hold_and_rebuilds_keep_history(
    settings: Settings, partitioned: bool
) -> None:
    from warehouse.partitions import ensure_partitions
    from warehouse.retention import prune

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        if partitioned:  # else the rows wait in the default partition: pruned row by row
            ensure_partitions(conn, old.date(), recent.date())
        write_occupancy(
            conn,
            [
                MinuteRow("cam-1", "*", hour + timedelta(minutes=m), 300, 2, 1.0, 2)
                for hour in (old, recent)
                for m in range(3)
            ]
            + [HeatRow("cam-1", hour, 64, 36, 900, [5], [1.0], [0.5]) for hour in (old, recent)],
        )
        # Nothing is rolled up yet: nothing may go.
        untouched = prune(conn, occupancy_days=35, heatmap_days=35)
        assert (untouched.occupancy_minutes, untouched.heatmap_hours) == (0, 0)
        assert conn.execute("SELECT count(*) AS n FROM occupancy_minutes").fetchone() == {"n": 6}
    run_rollups(settings.database_dsn)
    with connect(settings.database_dsn) as conn:
        # Rows written this very minute are within the refresh overlap: back-date them, as
        # rows written 40 days ago would be.
        conn.execute("UPDATE occupancy_minutes SET updated_at = now() - interval '1 hour'")
        conn.execute("UPDATE heatmap_hours SET updated_at = now() - interval '1 hour'")
        conn.execute("UPDATE rollup_state SET watermark = now()")
        conn.commit()
        done = prune(conn, occupancy_days=35, heatmap_days=35)
        left = [r["minute"] for r in conn.execute("SELECT minute FROM occupancy_minutes ORDER BY minute")]
    assert (done.occupancy_minutes, done.heatmap_hours) == (3, 1)
    assert left == [recent + timedelta(minutes=m) for m in range(3)]
    hours = [r["hour"] for r in table(settings, "footfall_hourly")]
    assert hours == [old, recent]  # the rollup keeps the pruned hour
    run_rollups(settings.database_dsn, full=True)  # ... and so does a full rebuild
    assert [r["hour"] for r in table(settings, "footfall_hourly")] == [old, recent]
    assert len(table(settings, "heatmap_daily")) == 2
