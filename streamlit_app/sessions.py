"""The web server's view of sessions: who a request's cookie signs in, asked in PostgreSQL
when the request is served, and the open websockets, closed when their session ends.

Everything the dashboard serves goes through one of two doors. Each HTTP request (pages,
evidence, live frames, exports) is checked by the gate when it arrives, which hands the
account on to the route that serves it (`hand_on`, `signed_in_user`). The
websocket that carries the pages' data stays open for as long as a tab does; `STREAMS`
keeps each one beside its session's token and asks PostgreSQL about all of them together
every RECHECK_S seconds (and at once after a sign-out here). When a session has ended
(sign-out anywhere, a password change, new stores or role, a disabled account, expiry),
each of its tabs is made to run its page once more, which finds the session gone, shows
"Signed out" and takes the browser to the sign-in form (streamlit_app.auth); GRACE_S
later its websockets are closed and nothing more is sent on them, whatever the browser
does. A socket whose client has stopped reading cannot hold the others up: each close is
sent on its own, and given up after CLOSE_WAIT_S. The pages check the session on every run
besides, so no page data outlives the session it was computed for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from shrinkwatch.outage import Outage
from shrinkwatch.settings import Settings, load_settings
from streamlit_app.gate_rules import cookie_name, session_cookie
from warehouse.db import Connection, connect
from warehouse.scope import User
from warehouse.sessions import open_sessions

log = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RECHECK_S = 1.0
GRACE_S = 3.0  # for the tab's last run, which only says "Signed out"
CLOSE_WAIT_S = 5.0
ENDED = 4401  # the websocket close code for "the session ended: sign in again"
_USER = "shrinkwatch_user"


class _Database:
    """One connection for the gate and the sign-in routes, used by one thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            path = os.environ.get("SHRINKWATCH_SETTINGS_FILE")
            self._settings = load_settings(Path(path) if path else None)
        return self._settings

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self.settings.database_dsn, autocommit=True)
            try:
                return fn(self._conn, *args, **kwargs)
            except Exception:
                self._conn.rollback()
                raise


DB = _Database()


def on_own_connection(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Slow work (an argon2 check, a large export) on a connection of its own, so it never
    holds up the gate's session checks on the shared one."""
    with connect(DB.settings.database_dsn) as conn:
        return fn(conn, *args, **kwargs)


def cookie() -> str:
    """The session cookie's name here (`__Host-` prefixed when it is Secure)."""
    return cookie_name(DB.settings.dashboard_secure_cookie)


def token_of(headers: Any) -> str | None:
    """The session token a request (raw ASGI headers) carries, if any."""
    return session_cookie(headers, cookie())


def hand_on(scope: MutableMapping[str, Any], user: User) -> None:
    """The gate's answer for this request, for the route that serves it (`signed_in_user`):
    one session check per request, made when it arrives."""
    scope.setdefault("state", {})[_USER] = user


def signed_in_user(scope: MutableMapping[str, Any]) -> User | None:
    """The account the gate found this request signed in as (None: it let it through open)."""
    user = scope.get("state", {}).get(_USER)
    return user if isinstance(user, User) else None


class _Stream:
    """One open websocket: its receive and send, cut off when its session ends."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive, self._send = receive, send
        self.ended = asyncio.Event()

    async def receive(self) -> Message:
        if not self.ended.is_set():
            message = asyncio.ensure_future(self._receive())
            ended = asyncio.ensure_future(self.ended.wait())
            await asyncio.wait({message, ended}, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if message.done():
                return message.result()
            message.cancel()
        return {"type": "websocket.disconnect", "code": ENDED}

    async def send(self, message: Message) -> None:
        if self.ended.is_set():
            return  # the session ended: nothing more goes out on this socket
        await self._send(message)

    async def end(self) -> None:
        """Send nothing more, tell the app the client left, and close the socket (given up
        after CLOSE_WAIT_S: a client that stopped reading never lets a send finish)."""
        if self.ended.is_set():
            return
        self.ended.set()
        close = {"type": "websocket.close", "code": ENDED, "reason": "session ended"}
        with contextlib.suppress(Exception):  # the browser may have gone already
            await asyncio.wait_for(self._send(close), CLOSE_WAIT_S)


class OpenStreams:
    """The dashboard's open websockets by session token, closed when the session ends."""

    def __init__(self) -> None:
        self._streams: dict[str, set[_Stream]] = {}
        self._tabs: dict[str, set[str]] = {}  # token -> Streamlit session ids that ran a page
        self._tabs_lock = threading.Lock()
        self._ending: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._database = Outage("PostgreSQL (the dashboard's session checks)", log.warning)

    def note_tab(self, token: str, app_session_id: str) -> None:
        """A page ran for this session in this Streamlit session (called by the pages, from
        the script's thread): told to run again when the session ends."""
        with self._tabs_lock:
            self._tabs.setdefault(token, set()).add(app_session_id)

    def count(self) -> int:
        return sum(len(s) for s in self._streams.values())

    async def serve(
        self, token: str, app: Callable[[Receive, Send], Awaitable[None]], receive: Receive, send: Send
    ) -> None:
        """Run the websocket app on a stream that is closed when `token`'s session ends."""
        stream = _Stream(receive, send)
        self._streams.setdefault(token, set()).add(stream)
        self._ensure_watcher()
        try:
            await app(stream.receive, stream.send)
        finally:
            streams = self._streams.get(token, set())
            streams.discard(stream)
            if not streams:
                self._streams.pop(token, None)
                with self._tabs_lock:
                    self._tabs.pop(token, None)

    def recheck(self) -> None:
        """Ask about every open session now (after a sign-out in this process)."""
        if self._wake is not None:
            self._wake.set()

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._wake = asyncio.Event()
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RECHECK_S)
            self._wake.clear()
            tokens = [t for t in self._streams if t not in self._ending]
            if not tokens:
                continue
            try:
                still_open = await run_in_threadpool(DB.call, open_sessions, tokens)
            except Exception as exc:  # the database is away: keep asking, say so once
                self._database.failed(exc)
                continue
            self._database.back()
            for token in tokens:
                if token not in still_open:
                    self._ending.add(token)
                    task = asyncio.get_running_loop().create_task(self._end(token))
                    self._closing.add(task)  # (a reference, until it is done)
                    task.add_done_callback(self._closing.discard)

    async def _end(self, token: str) -> None:
        """A session ended: its tabs run their page once more (it says "Signed out" and goes
        to the sign-in form), then, GRACE_S later, every websocket of it is closed."""
        with self._tabs_lock:
            tabs = self._tabs.pop(token, set())
        for app_session_id in tabs:
            _rerun(app_session_id)
        try:
            await asyncio.sleep(GRACE_S)
            streams = list(self._streams.get(token, ()))
            await asyncio.gather(*(stream.end() for stream in streams), return_exceptions=True)
        finally:
            self._ending.discard(token)


def _rerun(app_session_id: str) -> None:
    """Ask Streamlit to run a tab's page again, as if its browser had asked."""
    try:
        from streamlit.runtime import Runtime

        info = Runtime.instance()._session_mgr.get_active_session_info(app_session_id)
        if info is not None:
            info.session.request_rerun(None)
    except Exception as exc:  # the close that follows still ends the tab
        log.warning("could not tell a dashboard tab that its session ended: %s", exc)


STREAMS = OpenStreams()
