"""Hostile site files: arbitrary YAML text and mutated valid files give a SiteConfig or a
SiteConfigError naming each problem's key path (never a traceback, never a hang); applying
hostile names (quotes, SQL, unicode, huge strings) to real PostgreSQL either stores them exactly
or changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as fuzz
from hypothesis import strategies as st

from shrinkwatch.errors import ConfigError
from shrinkwatch.settings import Settings, load_settings
from shrinkwatch.site_file import MAX_VALUES, SiteConfig, SiteConfigError, parse_site_config
from tests.factories import SITE_YAML
from warehouse.db import connect
from warehouse.migrate import migrate
from warehouse.site_tables import apply_site_config, load_cameras, load_stores

FUZZ = fuzz(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TROUBLEMAKERS: list[Any] = [
    None,
    "",
    "\x00",
    "\ud800",
    "'; DROP TABLE stores; --",
    'a "quoted" \\ name',
    "x" * 5000,
    "${NOPE}",
    "Ünïcödé 店 🛒",
    -1,
    0,
    2**64,
    1e308,
    float("inf"),
    float("nan"),
    True,
    [],
    {},
    {"monday": "08:00-09:00"},
    {1: "x"},
    [[0, 0], [1, 0]],
    [[0, 0], [1, 0], [1, 1]],
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(TROUBLEMAKERS),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
BASE: dict[str, Any] = yaml.safe_load(SITE_YAML)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, (*prefix, i))
    return out


def dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        assume(False)  # a value YAML cannot write: not a file anyone could hand us
        raise


def judge(text: str) -> SiteConfig | SiteConfigError:
    """The config, or the error: which must list problems each with a key path and a reason."""
    try:
        return parse_site_config(text, "site.yaml")
    except SiteConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.path and problem.message
            assert problem.line is None or problem.line >= 1
            assert str(problem) in str(exc)
        return exc


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    judge(text)


@FUZZ
@given(st.data())
def test_mutated_site_files_name_the_key(data: st.DataObject) -> None:
    site = yaml.safe_load(SITE_YAML)
    path = data.draw(st.sampled_from(paths(site)))
    target = site
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(st.one_of(st.sampled_from(TROUBLEMAKERS), VALUES))
    result = judge(dump(site))
    if isinstance(result, SiteConfigError):
        where = ".".join(str(p) for p in path[:1])
        assert any(p.path.startswith(where) or p.path == "(root)" for p in result.problems), result


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("&a [*a]", "an alias refers to a value that contains it"),
        ("&a {stores: *a}", "an alias refers to a value that contains it"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, n in zip("abcdefg", "bcdefgh", strict=True)
            )
            + "stores: *h\n",
            f"more than {MAX_VALUES} values once its aliases are expanded",
        ),
        ("stores: [{id: s, name: n, timezone: UTC, hours: {monday: '08:00-09:00'}}]", "'mon', 'tue'"),
        (
            'stores: [{id: s, name: "a\\0b", timezone: UTC}]',
            "stores[0].name (line 1): must not contain a NUL",
        ),
        ('stores: [{id: s, name: "\\ud800", timezone: UTC}]', "unpaired surrogate"),
        ("stores: [{id: s, name: n, timezone: UTC, economics: {monthly_cost: .inf}}]", "finite number"),
    ],
)
def test_what_broke_the_reader_before_is_a_problem_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(SiteConfigError) as err:
        parse_site_config(text)
    assert reason in str(err.value)


def test_aliases_within_the_bound_still_read() -> None:
    text = (
        "stores:\n  - {id: s, name: n, timezone: UTC, hours: &h {mon: '08:00-09:00'}}\n"
        "  - {id: t, name: n, timezone: UTC, hours: *h}\n"
    )
    assert [s.hours for s in parse_site_config(text).stores] == [{"mon": "08:00-09:00"}] * 2


@pytest.fixture(scope="module")
def site_db(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One migrated database for the module, holding the factories' site (the `settings`
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
        with connect(settings.database_dsn) as conn:
            migrate(conn, progress=lambda _m: None)
            apply_site_config(conn, parse_site_config(SITE_YAML))
        yield settings
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


NAMES = st.one_of(
    st.text(min_size=1, max_size=40),
    st.sampled_from([t for t in TROUBLEMAKERS if isinstance(t, str)]),
    st.just("n" * 20_000),
)


def stored(settings: Settings) -> tuple[list[Any], list[Any]]:
    with connect(settings.database_dsn) as conn:
        return load_stores(conn), load_cameras(conn)


@pytest.mark.services
@fuzz(derandomize=True, deadline=None, database=None, max_examples=25)
@given(store=NAMES, city=NAMES, camera=NAMES, location=NAMES, url=NAMES, zone=NAMES)
def test_hostile_names_are_stored_exactly_or_change_nothing(
    site_db: Settings, store: str, city: str, camera: str, location: str, url: str, zone: str
) -> None:
    site = yaml.safe_load(SITE_YAML)
    site["stores"][0] |= {"name": store, "city": city}
    site["cameras"][0] |= {"name": camera, "location": location, "stream_url": url}
    site["cameras"][0]["zones"][0]["name"] = zone
    before = stored(site_db)
    try:
        config = parse_site_config(dump(site))
        with connect(site_db.database_dsn) as conn:
            apply_site_config(conn, config, environ={})
    except ConfigError:
        assert stored(site_db) == before
        return
    stores, cameras = stored(site_db)
    written = [c.model_copy(update={"zones": sorted(c.zones, key=lambda z: z.id)}) for c in config.cameras]
    assert stores == list(config.stores) and cameras == written  # zones come back by id
    with connect(site_db.database_dsn) as conn:  # back to the factories' site for the next example
        apply_site_config(conn, parse_site_config(SITE_YAML))
