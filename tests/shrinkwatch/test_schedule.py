"""shrinkwatch.schedule: a scheduled job whose PostgreSQL goes away says so once per outage
and once when it is back (real failures: a cut TCP proxy in front of the real server); a
fault of the job itself is said every time; the scheduler runs until a signal stops it."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import psycopg
import pytest

from shrinkwatch.schedule import dependency_down, guard, run_every
from shrinkwatch.settings import Settings
from tests.tcp_proxy import TcpProxy
from warehouse.db import DatabaseUnreachable, connect


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as exc:
            msg = "the job wrapped it"
            raise RuntimeError(msg) from exc
    except RuntimeError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("exc", "which"),
    [
        (DatabaseUnreachable("cannot connect"), "PostgreSQL"),
        (psycopg.OperationalError("server closed the connection unexpectedly"), "PostgreSQL"),
        (psycopg.errors.AdminShutdown("terminating connection"), "PostgreSQL"),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), "PostgreSQL"),
        (_raised_from(DatabaseUnreachable("cannot connect")), "PostgreSQL"),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), None),
        (psycopg.errors.UndefinedTable("relation does not exist"), None),
        (ValueError("a bug"), None),
    ],
)
def test_what_counts_as_a_dependency_down(exc: BaseException, which: str | None) -> None:
    assert dependency_down(exc) == which


@pytest.fixture
def proxy(settings: Settings) -> Iterator[TcpProxy]:
    with TcpProxy.before(settings.database_dsn) as running:
        yield running


def test_an_outage_is_said_once_and_its_end_once(settings: Settings, proxy: TcpProxy) -> None:
    dsn = proxy.dsn(settings.database_dsn)
    said: list[str] = []
    held: list[psycopg.Connection] = []
    fault = [False]

    def job() -> None:
        if fault[0]:
            msg = "a bug in the job"
            raise ValueError(msg)
        if held:  # a connection opened before the cut, lost mid-run
            held.pop().execute("SELECT 1")
            return
        with connect(dsn, timeout_s=2) as conn:
            conn.execute("SELECT 1")

    run = guard(job, "rollup refresh", said.append)
    run()
    proxy.cut()
    for _ in range(3):  # three intervals of the outage: said once
        run()
    proxy.restore()
    run()
    run()
    held.append(connect(dsn))
    proxy.cut()
    run()  # the connection is lost mid-run: a second outage
    proxy.restore()
    run()
    fault[0] = True
    run()
    run()
    assert [line.split(" (")[0].split(" after")[0] for line in said] == [
        "rollup refresh: PostgreSQL is not reachable",
        "rollup refresh: PostgreSQL is back",
        "rollup refresh: PostgreSQL is not reachable",
        "rollup refresh: PostgreSQL is back",
        "rollup refresh failed, will retry at the next run: a bug in the job",
        "rollup refresh failed, will retry at the next run: a bug in the job",
    ]


def test_run_every_runs_until_a_signal_and_rides_out_an_outage(settings: Settings, proxy: TcpProxy) -> None:
    dsn = proxy.dsn(settings.database_dsn)
    said: list[str] = []
    runs: list[str] = []

    def job() -> None:
        runs.append("run")
        if len(runs) == 2:
            proxy.cut()
        if len(runs) == 4:
            proxy.restore()
        if len(runs) == 5:
            # The handler run_every installed for SIGTERM, called as the signal would call it: a
            # real signal to the test process crashed it (SIGSEGV as the handler was entered)
            # once earlier tests had loaded Ultralytics and OpenVINO in it.
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler)
            handler(signal.SIGTERM, None)
        with connect(dsn, timeout_s=2) as conn:
            conn.execute("SELECT 1")

    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        run_every(job, 0.2, "calibration", said.append)
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert len(runs) >= 5
    about = [line.split(" (")[0].split(" after")[0] for line in said]
    assert about == [
        "calibration every 0.2 s",
        "calibration: PostgreSQL is not reachable",
        "calibration: PostgreSQL is back",
        "calibration scheduler stopped",
    ]
