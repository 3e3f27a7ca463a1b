"""Hostile filters for the warehouse's scoped readers (warehouse.scope's IncidentFilter and
Cursor; warehouse.incidents' list, count, CSV, detail and next unreviewed; warehouse.analytics):
any values give an answer within the scope or a QueryError with a message, never another
exception, and nothing is written (every table's row count is the same after)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz
from hypothesis import strategies as st

from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.settings import Settings, load_settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import incident
from tests.support import record_review
from warehouse import analytics
from warehouse.db import Connection, connect
from warehouse.incidents import (
    incident_count,
    incident_detail,
    incidents_csv,
    incidents_page,
    next_unreviewed,
    upsert_incidents,
)
from warehouse.migrate import migrate
from warehouse.scope import REVIEW_STATES, RISK_LEVELS, STATUSES, Cursor, IncidentFilter, QueryError, Scope
from warehouse.site_tables import apply_site_config

pytestmark = pytest.mark.services

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
cameras:
  - {id: cam-1, store_id: store-001, name: Aisle, stream_url: /dev/null}
  - {id: cam-2, store_id: store-002, name: Aisle, stream_url: /dev/null}
"""
T0 = datetime(2026, 3, 8, 10, tzinfo=UTC)
LEEDS = Scope.of("store-001")
TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "store-001",
            "store-002",
            "cam-1",
            "cam-2",
            "l-1",
            "b-1",
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "' OR 1=1 --",
            "'); DELETE FROM incidents; --",
            "%(scope)s",
            "%s",
            "{}",
            "x" * 10_000,
        ]
    ),
)
DATES = st.one_of(st.dates(), st.sampled_from([date.min, date.max, date(2026, 3, 8)]))
TIMES = st.one_of(
    st.none(),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),  # naive
    st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), T0]),
)
FILTERS = st.builds(
    IncidentFilter,
    stores=st.lists(TEXT, max_size=3).map(tuple),
    cameras=st.lists(TEXT, max_size=3).map(tuple),
    types=st.lists(st.one_of(st.sampled_from(INCIDENT_TYPES), TEXT), max_size=2).map(tuple),
    levels=st.lists(st.one_of(st.sampled_from(RISK_LEVELS), TEXT), max_size=2).map(tuple),
    statuses=st.lists(st.one_of(st.sampled_from(STATUSES), TEXT), max_size=2).map(tuple),
    review=st.lists(st.one_of(st.sampled_from(REVIEW_STATES), TEXT), max_size=2).map(tuple),
    first_day=st.one_of(st.none(), DATES),
    last_day=st.one_of(st.none(), DATES),
    min_score=st.one_of(st.floats(), st.sampled_from([0.0, 0.5, 1.0])),
    started_after=TIMES,
    started_before=TIMES,
)
FUZZ = fuzz(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def seeded(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One migrated database for the module with two stores' incidents (the `settings`
    fixture's is per test, and hypothesis runs many examples in one test)."""
    name = f"sw_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg.conninfo.make_conninfo(base_settings.database_dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = load_settings(
            None,
            home=tmp_path_factory.mktemp("home"),
            database_url=psycopg.conninfo.make_conninfo(base_settings.database_dsn, dbname=name),
        )
        incidents = [
            incident(1, incident_id=f"l-{i}", started_at=T0 + timedelta(hours=i), updated_at=T0)
            for i in range(4)
        ] + [
            incident(1, incident_id=f"b-{i}", store_id="store-002", camera_id="cam-2", started_at=T0)
            for i in range(2)
        ]
        with connect(settings.database_dsn) as conn:
            migrate(conn, progress=lambda _m: None)
            apply_site_config(conn, parse_site_config(SITE))
            upsert_incidents(conn, incidents)
            record_review(conn, "l-1", confirmed=True)
        yield settings
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def row_counts(conn: Connection) -> dict[str, int]:
    tables = [
        r["table_name"]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    ]
    return {t: conn.execute(f'SELECT count(*) AS n FROM "{t}"').fetchone()["n"] for t in tables}  # noqa: S608


def answered(seeded: Settings, ask: Any) -> Any:
    """What `ask(conn)` returns, or None for a QueryError with a message; nothing written."""
    with connect(seeded.database_dsn) as conn:
        before = row_counts(conn)
        try:
            result = ask(conn)
        except QueryError as exc:
            assert str(exc)
            result = None
        conn.rollback()  # a reader that wrote would leave it uncommitted: the counts see it
        assert row_counts(conn) == before
    return result


@FUZZ
@given(filters=FILTERS, page_size=st.integers(-5, 1200), viewer=st.one_of(st.none(), TEXT))
def test_incident_list_count_and_csv(
    seeded: Settings, filters: IncidentFilter, page_size: int, viewer: Any
) -> None:
    def ask(conn: Connection) -> Any:
        frame, _cursor = incidents_page(conn, LEEDS, filters, page_size=page_size, viewer=viewer)
        assert set(frame["store_id"]) <= {"store-001"}
        assert incident_count(conn, LEEDS, filters) >= len(frame)
        assert b"b-" not in incidents_csv(conn, LEEDS, filters)
        unreviewed = next_unreviewed(conn, LEEDS, filters, skip=tuple(filters.cameras))
        assert unreviewed is None or unreviewed.startswith("l-")
        return frame

    answered(seeded, ask)


@FUZZ
@given(started_at=TIMES.filter(lambda t: t is not None), incident_id=TEXT, viewer=st.one_of(st.none(), TEXT))
def test_cursor_and_detail(seeded: Settings, started_at: datetime, incident_id: str, viewer: Any) -> None:
    def ask(conn: Connection) -> Any:
        frame, _ = incidents_page(conn, LEEDS, after=Cursor(started_at, incident_id), page_size=2)
        assert set(frame["store_id"]) <= {"store-001"}
        detail = incident_detail(conn, LEEDS, incident_id, viewer=viewer)
        assert detail is None or detail["store_id"] == "store-001"
        return frame

    answered(seeded, ask)


@FUZZ
@given(
    first=DATES,
    last=DATES,
    store=TEXT,
    stores=st.lists(TEXT, max_size=2).map(tuple),
    hours=st.one_of(st.none(), st.tuples(st.integers(-2, 26), st.integers(-2, 26))),
)
def test_analytics(seeded: Settings, first: date, last: date, store: str, stores: Any, hours: Any) -> None:
    def ask(conn: Connection) -> Any:
        analytics.risk_pattern(conn, LEEDS, store, first, last)
        analytics.footfall_by_zone(conn, LEEDS, store, first, last)
        analytics.camera_heatmap(conn, LEEDS, store, first, last, hours)
        analytics.incident_trend(conn, LEEDS, first, last, stores)
        analytics.risk_patterns(conn, LEEDS, first, last, stores)
        return analytics.detection_quality(conn, LEEDS, stores)

    answered(seeded, ask)


@pytest.mark.parametrize(
    ("ask", "message"),
    [
        (
            lambda c: incidents_page(c, LEEDS, IncidentFilter(stores=("a\x00b",))),
            "stores: 'a\\x00b' must not",
        ),
        (
            lambda c: incident_count(c, LEEDS, IncidentFilter(cameras=("\ud800",))),
            "cameras: '\\ud800' must be",
        ),
        (lambda c: incidents_page(c, LEEDS, after=Cursor(T0, "\x00")), "after: '\\x00' must not contain"),
        (lambda c: incident_detail(c, LEEDS, "l-1\x00"), "incident_id: 'l-1\\x00' must not contain"),
        (lambda c: next_unreviewed(c, LEEDS, skip=("\x00",)), "skip: '\\x00' must not contain"),
        (lambda c: analytics.detection_quality(c, LEEDS, ("\x00",)), "stores: '\\x00' must not"),
    ],
)
def test_text_postgresql_cannot_be_sent_is_a_query_error(seeded: Settings, ask: Any, message: str) -> None:
    with connect(seeded.database_dsn) as conn, pytest.raises(QueryError) as err:
        ask(conn)
    assert str(err.value).startswith(message)
