"""The API's PostgreSQL connections: one pool per process, each request borrowing a connection.

Opening a connection for every request cost a TCP handshake, PostgreSQL's authentication and
a new server process: 4 ms at p50 and 14 ms at p95 of each request on the benchmark's machine
(benchmarks/api_latency.py). The pool (psycopg_pool) keeps up to `api_db_connections` open
and lends one to a request for as long as its route function runs; it is back in the pool
before the response is written. The policy:

- A connection is checked when it is lent (an empty query): one that a PostgreSQL restart or
  an idle timeout left dead is thrown away and another is lent, so a request that meets a dead
  connection of a server that is back is answered, not refused (while the server is down: the
  outage below).
- One given back inside a transaction (a route that raised in one) is rolled back; one that
  broke is closed. Nothing else of a request outlives it: the routes and the query layer set no
  session state (a `SET` would be `SET LOCAL`, inside the transaction).
- Every connection lent and another request comes: it waits, in the event loop and holding no
  thread, up to `WAIT_S` for one, then is a 503 with Retry-After saying the API is busy. Only
  as many requests as there are connections wait inside the pool (each on a thread of
  FastAPI's pool): a burst cannot take every thread, so the requests holding connections
  always have threads to finish on.
- PostgreSQL down: a request waits up to `WAIT_S` for a connection, then is the 503 of a
  database not answering (api.app). The pool keeps trying to connect in the background, an
  attempt backing off (1, 2, 4 s ...) for at most `RECONNECT_S`; the next request then starts
  a fresh attempt, so the API answers within seconds of PostgreSQL's return, whatever the
  outage's length.
- Event streams (GET /v1/events) hold their connection for hours: they open their own
  (`own_connection`), so streams never take the pool's connections from the other routes.
- Opened by the first request that needs it (making the app connects to nothing), closed when
  the app stops (its lifespan: the server's graceful stop, a TestClient's `with` block).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

import anyio
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from shrinkwatch.settings import Settings
from warehouse.db import Connection, DatabaseUnreachable

WAIT_S = 5.0  # longest a request waits for a connection before its 503
RECONNECT_S = 10.0  # longest one background connection attempt backs off before it is dropped
BUSY = "every database connection of the API is in use; try again shortly"  # that 503's detail
APPLICATION_NAME = "shrinkwatch-api"  # what pg_stat_activity shows for the API's connections
STREAM_APPLICATION_NAME = "shrinkwatch-api-stream"  # ... and for an event stream's own
MAX_LIFETIME_S = 3600.0  # a connection is replaced after an hour (a server's memory is given back)
MAX_IDLE_S = 300.0  # idle for this long beyond the first: closed


class PoolBusy(Exception):
    """Every connection was lent for as long as a request may wait (api.app: 503)."""


class ApiPool:
    """The process's pool for one app, opened on first use (thread-safe), closed once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: ConnectionPool[Connection] | None = None
        self._closed = False
        self._lock = threading.Lock()
        # One gate per event loop (uvicorn has one; a TestClient without `with` makes one per
        # request): as many places as connections.
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _opened(self) -> ConnectionPool[Connection]:
        with self._lock:
            if self._closed:
                msg = "the API is stopping"
                raise DatabaseUnreachable(msg)  # (its 503, as for a database not answering)
            if self._pool is None:
                kwargs: dict[str, Any] = {
                    "autocommit": True,  # each statement stands alone unless a function opens a transaction
                    "row_factory": dict_row,
                    "application_name": APPLICATION_NAME,
                    "connect_timeout": 10,
                }
                pool: ConnectionPool[Connection] = ConnectionPool(
                    self._settings.database_dsn,
                    min_size=1,
                    max_size=self._settings.api_db_connections,
                    kwargs=kwargs,
                    check=ConnectionPool.check_connection,
                    timeout=WAIT_S,
                    reconnect_timeout=RECONNECT_S,
                    max_lifetime=MAX_LIFETIME_S,
                    max_idle=MAX_IDLE_S,
                    name="api",
                    open=False,
                )
                pool.open(wait=False)  # an outage at the first request is that request's 503 only
                self._pool = pool
            return self._pool

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self._settings.api_db_connections)
        return gate

    @contextlib.asynccontextmanager
    async def borrow(self) -> AsyncIterator[Connection]:
        """A connection for the length of an `async with` block: a place at the gate first (in
        the event loop, up to WAIT_S: else PoolBusy), then the pool's connection (on a thread,
        up to WAIT_S: else psycopg_pool.PoolTimeout, an OperationalError). Taking and giving
        back are shielded from the request's cancellation (a client that went away): a
        connection taken is always given back."""
        gate = self._gate()
        try:
            async with asyncio.timeout(WAIT_S):
                await gate.acquire()
        except TimeoutError:
            raise PoolBusy(BUSY) from None
        try:
            pool = self._opened()
            with anyio.CancelScope(shield=True):
                conn = await run_in_threadpool(pool.getconn, WAIT_S)
            try:
                yield conn
            finally:
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(pool.putconn, conn)
        finally:
            gate.release()

    def stats(self) -> dict[str, int]:
        """psycopg_pool's counters (pool_size, pool_available, requests_waiting, ...); {} before
        the first request."""
        with self._lock:
            return dict(self._pool.get_stats()) if self._pool is not None else {}

    def close(self) -> None:
        """Close every connection; a request after this is refused (the app is stopping)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=WAIT_S)
