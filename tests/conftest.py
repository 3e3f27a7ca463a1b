"""Session fixtures: the real Kafka broker and PostgreSQL, started once for the whole run.

Every test that touches them gets its own topic prefix and its own database, so tests
never see each other's data, and leaves nothing behind: the database is dropped and the
prefix's topics are deleted when the test ends. The session's own contract topics (which
`infra up` creates) are under a prefix made up for the session and deleted at its end.
Point SHRINKWATCH_KAFKA_BOOTSTRAP / SHRINKWATCH_DATABASE_URL at running services to use
those instead.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shrinkwatch.paths import shared_file
from shrinkwatch.settings import Settings, load_settings
from tests.support import TEST_HOME

# Ports apart from the defaults, so a developer's running demo and the suite coexist.
TEST_PORTS = {"kafka_port": 29092, "kafka_controller_port": 29093, "postgres_port": 25432}
# No /metrics unless a test asks for them (on a free port of its own): tests run many services
# at once, and the fixed ports of shrinkwatch.metrics would be taken by one another.
NO_METRICS = {"metrics_port": 0}


@pytest.fixture(scope="session")
def base_settings() -> Iterator[Settings]:
    """Settings of the session's services, started here if they are not already running."""
    from infra import services

    # External services given in the environment are read here, then taken out of it:
    # environment variables win over every other source, and each test's own database
    # and topic prefix must win.
    external = {
        key: os.environ[f"SHRINKWATCH_{key.upper()}"]
        for key in ("kafka_bootstrap", "database_url")
        if f"SHRINKWATCH_{key.upper()}" in os.environ
    }
    for var in list(os.environ):
        if var.startswith("SHRINKWATCH_") and var != "SHRINKWATCH_SHARED_DIR":
            del os.environ[var]
    prefix = f"s{uuid.uuid4().hex[:8]}."  # `up` creates the contract topics under it
    settings = load_settings(
        None, home=TEST_HOME, topic_prefix=prefix, **TEST_PORTS, **NO_METRICS, **external
    )
    started = services.up(settings, progress=lambda m: print(f"[services] {m}", file=sys.stderr))
    yield settings
    delete_topics(settings.kafka_servers, [prefix])
    if started:
        services.down(
            settings, progress=lambda m: print(f"[services] {m}", file=sys.stderr), only=set(started)
        )


def _admin_dsn(dsn: str, database: str = "postgres") -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=database)


def delete_topics(bootstrap: str, prefixes: list[str]) -> None:
    """Delete every topic whose name starts with one of `prefixes` (prefixes made up here)."""
    from shrinkwatch.kafka_admin import delete_prefixed

    delete_prefixed(bootstrap, prefixes)


@pytest.fixture
def make_settings(base_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    """Factory: settings with a fresh database, fresh topic prefix and a private home; the
    databases are dropped and the prefixes' topics deleted when the test ends."""
    created: list[str] = []
    prefixes: list[str] = []

    def factory(**overrides: Any) -> Settings:
        from shrinkwatch.kafka_admin import ensure_topics

        name = f"sw_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_admin_dsn(base_settings.database_dsn), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        prefixes.append(f"t{uuid.uuid4().hex[:8]}.")
        values = {
            "home": tmp_path / f"home-{len(created)}",
            "kafka_bootstrap": base_settings.kafka_servers,
            "database_url": _admin_dsn(base_settings.database_dsn, name),
            "topic_prefix": prefixes[-1],
            "topic_partitions": 2,
            "model": str(shared_file("models", "yolov8n.pt") or "yolov8n.pt"),
            **NO_METRICS,
        }
        values.update(overrides)
        settings = load_settings(None, **values)
        ensure_topics(settings)
        return settings

    yield factory
    try:
        delete_topics(base_settings.kafka_servers, prefixes)
    finally:
        with psycopg.connect(_admin_dsn(base_settings.database_dsn), autocommit=True) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Fresh, migrated settings for one test."""
    from warehouse.db import connect
    from warehouse.migrate import migrate

    s = make_settings()
    with connect(s.database_dsn) as conn:
        migrate(conn, progress=lambda _m: None)
    return s
