"""The flows' PostgreSQL sink waits out a lost server (through a cut TCP proxy in front of the
real one), says so once and once when it is back, and fails at once on any other error."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from flows import sinks
from flows.sinks import PostgresSink
from shrinkwatch.settings import Settings
from tests.tcp_proxy import TcpProxy
from warehouse.db import Connection


@pytest.fixture
def proxy(settings: Settings) -> Iterator[TcpProxy]:
    with TcpProxy.before(settings.database_dsn) as running:
        yield running


def _write_rows(conn: Connection, items: list[int]) -> None:
    with conn.transaction():
        conn.execute("CREATE TABLE IF NOT EXISTS sink_probe (n integer PRIMARY KEY)")
        for n in items:
            conn.execute("INSERT INTO sink_probe VALUES (%s) ON CONFLICT DO NOTHING", (n,))


def test_a_lost_server_holds_the_batch_until_it_is_back(
    settings: Settings, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    part = PostgresSink(proxy.dsn(settings.database_dsn), _write_rows).build("store", 0, 1)
    part.write_batch([1, 2])
    proxy.cut()
    done = threading.Event()
    writer = threading.Thread(target=lambda: (part.write_batch([3, 4]), done.set()), daemon=True)
    with caplog.at_level(logging.WARNING, logger="flows.sinks"):
        writer.start()
        # It is retrying, not failed: the thread is alive and has not finished.
        deadline = time.monotonic() + 60
        while not any("not reachable" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the outage was never said"
            time.sleep(0.05)
        assert writer.is_alive() and not done.is_set()
        proxy.restore()
        writer.join(timeout=120)
    assert done.is_set()
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "not reachable" in m]) == 1
    assert len([m for m in said if "is back after" in m]) == 1
    with psycopg.connect(settings.database_dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT n FROM sink_probe ORDER BY n")] == [1, 2, 3, 4]
    part.close()


def test_another_database_error_fails_at_once(settings: Settings) -> None:
    calls = []

    def times_out(conn: Connection, items: list[int]) -> None:
        calls.append(items)
        conn.execute("SET statement_timeout = 1")
        conn.execute("SELECT pg_sleep(1)")

    part = PostgresSink(settings.database_dsn, times_out).build("store", 0, 1)
    with pytest.raises(psycopg.errors.QueryCanceled):
        part.write_batch([1])
    assert calls == [[1]]  # tried once, not retried


def test_a_stop_ends_the_wait(settings: Settings, proxy: TcpProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    stopping = threading.Event()
    monkeypatch.setattr(sinks, "STOPPING", stopping)
    part = PostgresSink(proxy.dsn(settings.database_dsn), _write_rows).build("store", 0, 1)
    proxy.cut()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            part.write_batch([1])
        except Exception as exc:  # noqa: BLE001 (the test looks at it)
            failed.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(0.5)  # let it reach the wait; the stop must end it either way
    stopping.set()
    writer.join(timeout=60)
    assert not writer.is_alive()
    assert failed and isinstance(failed[0], psycopg.OperationalError | sinks.DatabaseUnreachable)
