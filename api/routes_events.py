"""Live incidents: GET /v1/events, a Server-Sent Events stream of every change to an incident of
the token's stores (a new incident, a new version, a verdict), resumable from the last event id.

Each change is one event, in the order of warehouse.incident_events' log (which never passes a
change over: see its docstring):

    id: <an opaque position in the log>
    event: incident
    data: <the incident as the change left it: the fields of an item of /v1/incidents>

and, while nothing happens, a keep-alive every `Timing.keepalive_s` (15 s): a comment line
`: keep-alive` and the stream's position as an `id:` with no data, which EventSource (and the
format's rules) take as the last event id without dispatching an event. So a client that has
had no event yet, or none for a while, resumes from where its stream had read, not from "now"
(a stream that starts "now" sends it once the changes it skips are behind it).

- Resume: `Last-Event-ID` (what EventSource sends when it reconnects) or `?last_event_id=`
  (the header wins when both are given: it is the newer). The stream sends every change after
  that id, in order, each once. Without one it starts now, with the changes that follow. An
  id this API could not have given is 422 (a JSON problem, before the stream starts). An id
  from before what retention keeps (warehouse.incident_events.RETENTION, 7 days) starts with
  one `event: gap` (its id: where the log now starts; its data: `{"detail": ...}`) saying
  changes were missed, then every change that is kept: re-read /v1/incidents to catch up.
- Scope: the token is asked again (warehouse.api_tokens.authenticate_token, as at every
  request) before each batch of events and before each keep-alive, and the stream reads with
  the stores the token may see at that moment. A token revoked or expired, or its account
  disabled, ends the stream there: at the next change or keep-alive, within about
  `keepalive_s`. (Reconnecting then gets the 401 of every request.)
- Waking: one LISTEN connection per process (`Hub`) wakes every open stream when a change
  commits; each stream also reads every `poll_s` (5 s) without one (a change that must wait
  for an older transaction, a listener that lost its connection), and soon again (0.25 s,
  doubling) while the log says a committed change waits.
- Connections: a stream reads on a connection of its own (api.auth.own_connection, not the
  pool's, held until the stream ends), so one PostgreSQL connection per open stream, plus the
  listener; the token is checked first on a connection of the pool, given back when the
  route returns the stream.
  A process serves at most `MAX_STREAMS` at once, and a token at most `MAX_STREAMS_PER_TOKEN`
  of them (one token cannot take a process's streams, or PostgreSQL's connections); one more
  is 503 with Retry-After. A stream's place is taken in the route, before it answers, so
  requests arriving together cannot all pass the count, and given back when the stream ends
  (or, for one whose body never started, when it is collected).
- Stopping: `end_streams(app)` (api.server calls it on SIGINT/SIGTERM) ends every stream at
  once, so uvicorn's graceful shutdown is not held open by them; a client reconnects with its
  last id. A stream whose database goes away ends too (logged), for the same reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import OwnDb, Reader, bearer, client_of, settings_of
from api.metrics import SIGN_IN_FAILURES, streaming
from api.models import Incident, problem
from api.routes_incidents import incident_of
from api.routes_site import ERRORS
from shrinkwatch.outage import Outage
from warehouse.api_tokens import ApiCaller, authenticate_token
from warehouse.db import Connection, DatabaseUnreachable
from warehouse.incident_events import (
    RETENTION,
    IncidentEvent,
    Position,
    Start,
    listen,
    read_events,
    resume_check,
    start_position,
)
from warehouse.scope import QueryError

log = logging.getLogger(__name__)

MAX_STREAMS = 64  # per process: each holds a PostgreSQL connection
MAX_STREAMS_PER_TOKEN = 8
BATCH = 200  # events read at a time
RETRY_FIRST_S = 0.25  # a committed change waits for an older transaction: read again this soon
KEEPALIVE = b": keep-alive\n\n"
_ID = re.compile(r"([0-9a-f]{1,16})-([0-9a-f]{1,16})")
ID_PROBLEM = "last_event_id: not an event id this stream gave (pass the `id:` of the last event received)"
GAP_DETAIL = (
    "changes before this point were deleted (the log keeps {days} days) and were not sent: "
    "re-read /v1/incidents for the incidents as they are now"
)


@dataclass(frozen=True)
class Timing:
    """How often a stream says it is alive and reads without being woken (seconds); an app's
    own are `app.state.event_timing`."""

    keepalive_s: float = 15.0
    poll_s: float = 5.0


def timing_of(app: FastAPI) -> Timing:
    timing: Timing = getattr(app.state, "event_timing", None) or Timing()
    return timing


# -- ids and frames (pure) --------------------------------------------------------------------------
def encode_id(position: Position) -> str:
    """The opaque text of a position (the `id:` of an event)."""
    return f"{position.xid:x}-{position.seq:x}"


def decode_id(text: str) -> Position:
    """The position an event id names; QueryError when it is not one `encode_id` could make
    (an event's seq is 1 or more; a keep-alive's position has seq 0)."""
    match = _ID.fullmatch(text)
    if match is None:
        raise QueryError(ID_PROBLEM)
    xid, seq = int(match[1], 16), int(match[2], 16)
    if not (xid < 2**63 and seq < 2**63):  # (both are bigints in PostgreSQL)
        raise QueryError(ID_PROBLEM)
    return Position(xid, seq)


def frame(event: str, event_id: str, data: dict[str, Any] | str) -> bytes:
    """One event in the text/event-stream format; `data` is JSON on one line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event}\ndata: {text}\n\n".encode()


def incident_frame(event: IncidentEvent) -> bytes:
    """An `incident` event: the incident as the change left it, as /v1/incidents shows it."""
    incident = Incident.model_validate(incident_of(event.state))
    return frame("incident", encode_id(event.position), incident.model_dump_json())


def keepalive_frame(position: Position | None) -> bytes:
    """A keep-alive; with the stream's position as its id when given (no data: nothing is
    dispatched, but the id becomes the client's last event id)."""
    if position is None:
        return KEEPALIVE
    return f": keep-alive\nid: {encode_id(position)}\n\n".encode()


def gap_frame(purged_through: Position) -> bytes:
    return frame("gap", encode_id(purged_through), {"detail": GAP_DETAIL.format(days=RETENTION.days)})


def next_wait(held_back: bool, previous: float | None, poll_s: float) -> float:
    """How long to wait for a wake-up before reading anyway: while a committed change waits for
    an older transaction, soon, then doubling up to `poll_s` and staying there (`previous`:
    the last wait while it waited, None when nothing was held back before); else `poll_s`."""
    if not held_back:
        return poll_s
    return min(poll_s, RETRY_FIRST_S if previous is None else previous * 2)


# -- the process's listener ---------------------------------------------------------------------------
class Slot:
    """One stream's place in its hub's count, given back once (`release`)."""

    def __init__(self, hub: Hub, token_id: str) -> None:
        self._hub, self._token_id, self._released = hub, token_id, False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._hub._give_back(self._token_id)  # noqa: SLF001 (the hub's own bookkeeping)


class Hub:
    """The open streams of one app and the one LISTEN connection that wakes them. Lives in the
    event loop; `stop` may be called from a signal handler."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._wakers: set[asyncio.Event] = set()
        self._held: dict[str, int] = {}  # open (or opening) streams per token id
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False

    @property
    def streams(self) -> int:
        """Streams open or opening (their places taken)."""
        return sum(self._held.values())

    def reserve(self, token_id: str) -> Slot | None:
        """A place for one more stream of this token, or None when the process or the token has
        all it may (call it with no await between the check and the use: it is not locked)."""
        if self.streams >= MAX_STREAMS or self._held.get(token_id, 0) >= MAX_STREAMS_PER_TOKEN:
            return None
        self._held[token_id] = self._held.get(token_id, 0) + 1
        return Slot(self, token_id)

    def _give_back(self, token_id: str) -> None:
        left = self._held.get(token_id, 0) - 1
        if left > 0:
            self._held[token_id] = left
        else:
            self._held.pop(token_id, None)

    def open(self) -> asyncio.Event:
        """A new stream's wake-up (the listener starts with the first stream)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._listen(), name="incident events listener")
        waker = asyncio.Event()
        self._wakers.add(waker)
        return waker

    def close(self, waker: asyncio.Event) -> None:
        self._wakers.discard(waker)

    def wake_all(self) -> None:
        for waker in self._wakers:
            waker.set()

    def stop(self) -> None:
        """End every stream now (thread-safe)."""
        self.stopping = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.wake_all)

    async def aclose(self) -> None:
        """Stop the listener (the app is shutting down)."""
        self.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        outage = Outage("PostgreSQL (the live incidents' listener)", say=log.warning)
        while not self.stopping:
            try:
                async with await listen(self._dsn) as conn:
                    outage.back()
                    self.wake_all()  # whatever committed while nobody listened
                    async for _notice in conn.notifies():
                        self.wake_all()
            except (psycopg.Error, DatabaseUnreachable) as exc:
                await asyncio.sleep(outage.failed(exc))  # the streams poll meanwhile


def hub_of(request: Request) -> Hub:
    state = request.app.state
    hub: Hub | None = getattr(state, "event_hub", None)
    if hub is None:
        hub = state.event_hub = Hub(settings_of(request).database_dsn)
    return hub


def end_streams(app: object) -> None:
    """End every open stream of the app (an ASGI app; not one of ours: nothing) at once, for a
    server that is stopping."""
    hub = getattr(getattr(app, "state", None), "event_hub", None)
    if isinstance(hub, Hub):
        hub.stop()


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    hub: Hub | None = getattr(app.state, "event_hub", None)
    if hub is not None:
        await hub.aclose()


router = APIRouter(prefix="/v1", tags=["events"], lifespan=_lifespan)


# -- the stream --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stream:
    hub: Hub
    conn: Connection
    token: str
    client: str
    timing: Timing


def _allowed(conn: Connection, token: str, client: str) -> ApiCaller | None:
    """The token's caller now, if it may still read (a token refused now counts as a sign-in
    failure, as it does at any request)."""
    who = authenticate_token(conn, token, client=client)
    if who is None:
        SIGN_IN_FAILURES.labels("api").inc()
    return who if who is not None and who.may("read") else None


async def _events(stream: _Stream, start: Start, gap: Position | None, slot: Slot) -> AsyncIterator[bytes]:
    """The stream's body: changes after the start as they become final, keep-alives between;
    its place in the hub's count given back at the end."""
    waker = stream.hub.open()
    try:
        with streaming():  # shrinkwatch_api_event_streams counts it while it is open
            if gap is not None:
                yield gap_frame(gap)
            async for chunk in _changes(stream, start, waker):
                yield chunk
    except (psycopg.OperationalError, DatabaseUnreachable) as exc:
        log.warning("api: an event stream ended: PostgreSQL: %s", " ".join(str(exc).split())[:200])
    finally:
        stream.hub.close(waker)
        slot.release()


async def _changes(stream: _Stream, start: Start, waker: asyncio.Event) -> AsyncIterator[bytes]:
    """Check the token, read what became final, send it (or a keep-alive when one is due),
    wait to be woken; until the token fails or the hub stops."""
    hub, timing = stream.hub, stream.timing
    loop = asyncio.get_running_loop()
    position, skip = start.position, start.skip
    wait: float | None = None  # the last wait while a change was held back
    written = loop.time()
    while not hub.stopping:
        waker.clear()  # a change committed from here on wakes the wait below
        who = await run_in_threadpool(_allowed, stream.conn, stream.token, stream.client)
        if who is None:
            log.info("api: an event stream ended: its token is no longer valid")
            return
        batch = await run_in_threadpool(
            partial(read_events, stream.conn, who.scope, position, limit=BATCH, skip=skip)
        )
        for event in batch.events:
            try:
                chunk = incident_frame(event)
            except ValidationError as exc:
                # One row the model cannot take (written by a newer flow, say) must not end
                # every stream at it again and again: it is passed over, said once per stream.
                log.error(
                    "api: incident %s version %s passed over in an event stream: %s",
                    event.incident_id,
                    event.version,
                    " ".join(str(exc).split())[:300],
                )
                continue
            yield chunk
        position = batch.position
        if position.xid >= start.skip_below_xid:
            skip = frozenset()  # every change it held is behind the position now
        if batch.events:
            written = loop.time()
        if batch.more:
            continue
        if loop.time() - written >= timing.keepalive_s:
            # While the start's skipped changes are ahead, the position alone would bring them.
            yield keepalive_frame(None if skip else position)
            written = loop.time()
        pause = next_wait(batch.held_back, wait, timing.poll_s)
        wait = pause if batch.held_back else None
        until_keepalive = max(0.0, timing.keepalive_s - (loop.time() - written))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waker.wait(), min(pause, until_keepalive))


def _start(conn: Connection, asked: Position | None) -> tuple[Start, Position | None]:
    """Where the stream starts, and where retention cut the log when that is after it."""
    if asked is None:
        return start_position(conn), None
    check = resume_check(conn, asked)
    if not check.valid:
        raise QueryError(ID_PROBLEM)
    return Start(asked), check.purged_through


_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A text/event-stream: `incident` events (and one `gap` where changes were missed).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    401: ERRORS[401],
    403: ERRORS[403],
    422: problem(
        "An event id this API did not give, or an unknown parameter.",
        ID_PROBLEM,
    ),
    503: problem(
        "Too many open streams (the process's or the token's), or the database is not answering.",
        "too many live streams are open; try again shortly",
    ),
}


@router.get("/events", response_class=StreamingResponse, responses=_ERRORS, summary="Live incidents (SSE)")
async def events(
    request: Request,
    who: Reader,
    conn: OwnDb,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    last_event_id: Annotated[
        str | None, Query(description="Resume after this event id (as `Last-Event-ID`).", max_length=64)
    ] = None,
    last_event_id_header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume after this event id (EventSource sends it when it reconnects).",
            max_length=64,
        ),
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events: each change to an incident of the token's stores (a new incident, a
    new version, a verdict) as an `incident` event whose data is the incident as the list
    shows it; `: keep-alive` comments while nothing happens. Resume with the last event's id
    (`Last-Event-ID` or `last_event_id`): every change after it, in order, each once. Without
    one: the changes from now on."""
    unknown = sorted(set(request.query_params) - {"last_event_id"})
    if unknown:
        named = ", ".join(n if 0 < len(n) <= 40 and n.isprintable() else repr(n[:40]) for n in unknown[:5])
        msg = f"unknown parameter(s): {named} (known: last_event_id)"
        raise QueryError(msg)
    asked = last_event_id_header if last_event_id_header is not None else last_event_id
    start, gap = await run_in_threadpool(_start, conn, decode_id(asked) if asked is not None else None)
    hub = hub_of(request)
    slot = hub.reserve(who.token.token_id)  # (no await from here to the response)
    if slot is None:
        raise HTTPException(503, "too many live streams are open; try again shortly", {"Retry-After": "30"})
    assert credentials is not None  # (the Reader checked them)
    stream = _Stream(hub, conn, credentials.credentials, client_of(request), timing_of(request.app))
    body = _events(stream, start, gap, slot)
    weakref.finalize(body, slot.release)  # a body that never started gives its place back too
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
