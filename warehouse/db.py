"""Connections to PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.logs import scrub

Connection = psycopg.Connection[dict[str, Any]]


class DatabaseUnreachable(ShrinkwatchError):
    """PostgreSQL did not answer (not running, restarting, or the network is down): a
    long-running service waits and retries (shrinkwatch.outage); a command reports it."""


def connect(
    dsn: str, *, autocommit: bool = False, timeout_s: float = 10.0, application_name: str | None = None
) -> Connection:
    """Open a connection with dict rows (named `application_name` in pg_stat_activity when
    given); a clear ShrinkwatchError when the server is not there."""
    try:
        return psycopg.connect(
            dsn,
            autocommit=autocommit,
            row_factory=dict_row,
            connect_timeout=max(1, int(timeout_s)),
            application_name=application_name,  # (None: not set, the DSN's own if it has one)
        )
    except psycopg.OperationalError as exc:
        msg = (
            f"cannot connect to PostgreSQL at {scrub(dsn)}: {str(exc).strip()}\n"
            "Start the local services with `shrinkwatch infra up`, or set SHRINKWATCH_DATABASE_URL."
        )
        raise DatabaseUnreachable(msg) from None


def ping(conn: Connection) -> None:
    """Ask the server something trivial: raises as any query would when it is gone."""
    conn.execute("SELECT 1")
