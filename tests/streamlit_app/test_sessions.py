"""The web server's watch over open websockets (streamlit_app.sessions), on the real
PostgreSQL server: every socket of an ended session is closed, and a client that has
stopped reading holds up no other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shrinkwatch.settings import Settings
from streamlit_app import sessions
from tests.streamlit_app.conftest import sign_in
from warehouse.db import connect
from warehouse.sessions import end_session


def test_a_client_that_stops_reading_holds_up_no_other_close(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions.DB, "_settings", settings)  # the real database of this test
    monkeypatch.setattr(sessions, "RECHECK_S", 0.05)
    monkeypatch.setattr(sessions, "GRACE_S", 0.0)
    monkeypatch.setattr(sessions, "CLOSE_WAIT_S", 0.5)
    stalled, reading, staying = (sign_in(settings, name) for name in ("stalled", "reading", "staying"))
    told: dict[str, Any] = {}
    sent: dict[str, list[Any]] = {"stalled": [], "reading": [], "staying": []}

    async def never() -> Any:
        await asyncio.Event().wait()

    def app(name: str) -> Any:
        async def run(receive: Any, send: Any) -> None:
            await send({"type": "websocket.send", "text": "page data"})
            told[name] = await receive()  # what the app hears when the session ends

        return run

    def sender(name: str) -> Any:
        async def send(message: Any) -> None:
            if name == "stalled" and message["type"] == "websocket.close":
                await never()  # a client that stopped reading: this send never completes
            sent[name].append(message)

        return send

    async def main() -> None:
        streams = sessions.OpenStreams()
        served = [
            asyncio.create_task(streams.serve(token, app(name), never, sender(name)))
            for name, token in (("stalled", stalled), ("reading", reading))
        ]
        staying_task = asyncio.create_task(streams.serve(staying, app("staying"), never, sender("staying")))
        await asyncio.sleep(0.2)  # all three are open and watched
        with connect(settings.database_dsn) as conn:
            end_session(conn, stalled)
            end_session(conn, reading)
        await asyncio.wait_for(asyncio.gather(*served), 60)
        for _ in range(600):  # the reading client's close goes out although the stalled one hangs
            if any(m["type"] == "websocket.close" for m in sent["reading"]):
                break
            await asyncio.sleep(0.05)
        assert not staying_task.done() and streams.count() == 1
        staying_task.cancel()

    asyncio.run(main())
    assert told == {
        "stalled": {"type": "websocket.disconnect", "code": sessions.ENDED},
        "reading": {"type": "websocket.disconnect", "code": sessions.ENDED},
    }
    assert sent["reading"] == [
        {"type": "websocket.send", "text": "page data"},
        {"type": "websocket.close", "code": sessions.ENDED, "reason": "session ended"},
    ]
    assert sent["staying"] == [{"type": "websocket.send", "text": "page data"}]
