"""A benchmark touches only data it made (benchmarks.common): it works in a database and
topics of its own, drops and deletes them however its run ends, refuses to destroy anything
it did not make, refuses to run where it cannot make its own database, and reads no
server from the environment. Run on the session's test services, not the benchmarks' own."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from benchmarks import common
from shrinkwatch.net import free_port
from shrinkwatch.settings import TOPICS, Settings
from tests.factories import incident
from warehouse.db import connect
from warehouse.incidents import incidents_written, upsert_incidents
from warehouse.migrate import current_version


def server(base_settings: Settings, home: Path, **changes: object) -> Settings:
    """The session's services as a benchmark would be given them: a prefix made up here."""
    return base_settings.model_copy(update={"topic_prefix": common.new_prefix(), "home": home, **changes})


def databases(settings: Settings) -> set[str]:
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def dbname(dsn: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]  # type: ignore[return-value]


def topics_gone(settings: Settings, timeout_s: float = 30.0) -> bool:
    """True once the broker lists no topic under the prefix (deletion reaches metadata late)."""
    deadline = time.monotonic() + timeout_s
    while common.prefix_topics(settings):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_dropping_refuses_a_database_the_run_did_not_create(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1)])
        conn.commit()
    with pytest.raises(SystemExit, match="did not create it"):
        common.drop_database(settings.database_dsn)
    with pytest.raises(SystemExit, match="did not create the database"):
        common.keep_as_seed(settings.database_dsn, "sw_bench_seed_never")
    with connect(settings.database_dsn) as conn:
        assert incidents_written(conn) == 1
    assert "sw_bench_seed_never" not in databases(settings)


def test_deleting_topics_refuses_a_prefix_the_run_did_not_make(settings: Settings) -> None:
    with pytest.raises(SystemExit, match="did not make them"):
        common.delete_topics(settings)
    assert common.prefix_topics(settings) == sorted(settings.topic(t) for t in TOPICS)


@pytest.mark.parametrize("ending", [None, RuntimeError, KeyboardInterrupt])
def test_the_runs_database_and_topics_are_gone_when_it_ends(
    base_settings: Settings, tmp_path: Path, ending: type[BaseException] | None
) -> None:
    given = server(base_settings, tmp_path)
    seen: dict[str, object] = {}

    def run() -> None:
        with common.own_data(given) as settings:
            seen["database"] = dbname(settings.database_dsn)
            seen["topics"] = common.prefix_topics(settings)
            with connect(settings.database_dsn) as conn:
                seen["schema"] = current_version(conn)
                upsert_incidents(conn, [incident(1)])
                conn.commit()
            if ending is not None:
                raise ending

    if ending is None:
        run()
    else:
        with pytest.raises(ending):
            run()
    assert str(seen["database"]).startswith("sw_bench_") and seen["schema"] != 0
    assert seen["topics"] == sorted(given.topic(t) for t in TOPICS)
    assert seen["database"] not in databases(base_settings)
    assert topics_gone(given)


def test_a_run_that_cannot_create_its_database_refuses_and_leaves_nothing(
    base_settings: Settings, tmp_path: Path
) -> None:
    nowhere = f"postgresql://shrinkwatch@127.0.0.1:{free_port()}/shrinkwatch"  # nothing listens there
    given = server(base_settings, tmp_path, database_url=nowhere)
    refused = pytest.raises(SystemExit, match="could not create the benchmark's own database")
    with refused, common.own_data(given):
        pytest.fail("a run without its own database went on")
    assert topics_gone(given)


def test_a_run_does_not_make_up_its_prefix_from_the_settings_it_is_given(
    base_settings: Settings, tmp_path: Path
) -> None:
    given = base_settings.model_copy(update={"home": tmp_path})  # the session's own prefix
    with pytest.raises(SystemExit, match="was not made up for this run"), common.own_data(given):
        pytest.fail("a run went on under a prefix it did not make")


def test_benchmark_settings_read_no_server_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in os.environ.items():  # restored as they were when the test ends
        if name.startswith("SHRINKWATCH_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHRINKWATCH_DATABASE_URL", "postgresql://prod@db.example.com/shrinkwatch")
    monkeypatch.setenv("SHRINKWATCH_KAFKA_BOOTSTRAP", "kafka.example.com:9092")
    monkeypatch.setenv("SHRINKWATCH_TOPIC_PREFIX", "sw.")
    settings = common.bench_settings()
    assert settings.database_url is None and settings.kafka_bootstrap is None
    assert settings.database_dsn.endswith(f":{common.BENCH_PORTS['postgres_port']}/shrinkwatch")
    assert settings.topic_prefix.startswith("bench") and settings.home == common.BENCH_HOME
    assert "SHRINKWATCH_DATABASE_URL" not in os.environ  # nor in any process the benchmark starts
