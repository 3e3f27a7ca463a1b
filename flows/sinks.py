"""The PostgreSQL sink for incidents: idempotent upserts, one connection per worker."""

from __future__ import annotations

import logging

import psycopg
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from shrinkwatch.contracts import Incident
from warehouse.db import Connection, connect
from warehouse.incidents import upsert_incidents

log = logging.getLogger(__name__)


class _IncidentPartition(StatelessSinkPartition[tuple[Incident, int]]):
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Connection | None = None

    def write_batch(self, items: list[tuple[Incident, int]]) -> None:
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self._dsn)
                upsert_incidents(self._conn, items)
                return
            except psycopg.OperationalError:
                # One reconnect; a second failure stops the flow, which resumes from its
                # last snapshot on restart (the upserts are idempotent).
                self._conn = None
                if attempt == 2:
                    raise
                log.warning("lost the PostgreSQL connection; reconnecting")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class IncidentSink(DynamicSink[tuple[Incident, int]]):
    """Upserts (incident state, weights version) into `incidents`; older versions never
    overwrite newer ones."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _IncidentPartition:
        return _IncidentPartition(self._dsn)
