"""PostgreSQL sinks for the dataflows: one connection per worker, idempotent writes, and an
outage ridden out.

When PostgreSQL goes away (a restart for an upgrade, a dropped network: no connection, or
one lost, shrinkwatch.outage.dependency_down), the sink does not fail the flow: it holds the
batch and tries again with backoff (shrinkwatch.outage: said once when it goes, once when
it is back) until the write succeeds. Holding the batch holds the worker, so the flow reads
no further and its input waits in Kafka; nothing is dropped and the state in memory is not
lost, so the flow goes on where it was. Only a stop (SIGINT or SIGTERM, see `STOPPING`) ends
the wait: the batch is then given up, and the restart resumes from the last snapshot, which
writes it again (the writes are idempotent). Any other error of the database (a statement
timed out, a row too large) fails the flow at once, for its supervisor to restart and report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import psycopg
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from shrinkwatch.contracts import Incident
from shrinkwatch.outage import Outage, dependency_down
from warehouse.db import Connection, DatabaseUnreachable, connect
from warehouse.incidents import upsert_incidents

log = logging.getLogger(__name__)
X = TypeVar("X")
Writer = Callable[[Connection, list[X]], None]
# Set when the flow is asked to stop (flows.run): a sink waiting for PostgreSQL gives up then.
STOPPING = threading.Event()


class _PostgresPartition(StatelessSinkPartition[X], Generic[X]):
    def __init__(self, dsn: str, write: Writer[X]) -> None:
        self._dsn, self._write = dsn, write
        self._conn: Connection | None = None
        self._outage = Outage("PostgreSQL", log.warning)

    def write_batch(self, items: list[X]) -> None:
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self._dsn)
                self._write(self._conn, items)
                self._outage.back()
                return
            except (psycopg.OperationalError, DatabaseUnreachable) as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if dependency_down(exc) is None or STOPPING.is_set():
                    # Not the server gone (a statement timed out, a row too large): waiting
                    # would not help, so the flow fails and its supervisor says why. A stop
                    # ends the wait too; either way the restart writes this batch again.
                    raise
                self._outage.wait(exc, STOPPING)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresSink(DynamicSink[X], Generic[X]):
    """Hands each batch to `write(conn, items)`, which must be idempotent (Bytewax output is
    at-least-once: after a restart the last snapshot interval is written again)."""

    def __init__(self, dsn: str, write: Writer[X]) -> None:
        self._dsn, self._write = dsn, write

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PostgresPartition[X]:
        return _PostgresPartition(self._dsn, self._write)


class IncidentSink(PostgresSink[tuple[Incident, int]]):
    """Upserts (incident state, weights version) into `incidents`; older versions never
    overwrite newer ones."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, upsert_incidents)
