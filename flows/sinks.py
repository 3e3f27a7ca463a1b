"""PostgreSQL sinks for the dataflows: one connection per worker, reconnect once, idempotent writes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import psycopg
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from shrinkwatch.contracts import Incident
from warehouse.db import Connection, connect
from warehouse.incidents import upsert_incidents

log = logging.getLogger(__name__)
X = TypeVar("X")
Writer = Callable[[Connection, list[X]], None]


class _PostgresPartition(StatelessSinkPartition[X], Generic[X]):
    def __init__(self, dsn: str, write: Writer[X]) -> None:
        self._dsn, self._write = dsn, write
        self._conn: Connection | None = None

    def write_batch(self, items: list[X]) -> None:
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self._dsn)
                self._write(self._conn, items)
                return
            except psycopg.OperationalError:
                # One reconnect; a second failure stops the flow, which resumes from its
                # last snapshot on restart (the writes are idempotent).
                self._conn = None
                if attempt == 2:
                    raise
                log.warning("lost the PostgreSQL connection; reconnecting")

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
