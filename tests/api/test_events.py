"""Live incidents (GET /v1/events) through a real uvicorn server on real PostgreSQL, read as a
client reads them (a socket and the text/event-stream format): incidents written as the flow
writes them (warehouse.incidents.upsert_incidents) and verdicts posted through the API arrive,
in order, within the token's stores only (as they are at each change: an account's stores
narrowed mid-stream narrow it); a stream resumed after a disconnect gets exactly what changed
meanwhile; a malformed id is 422 before any stream; a revoked token's stream ends at the next
keep-alive or change; two transactions committing out of order lose nothing; a resume from
before retention's cut is told so, and the scheduled retention makes that cut; and
`shrinkwatch api` stops on SIGINT with a stream open.

Every wait is for a condition, with a generous deadline: nothing here depends on how fast the
machine is. A negative ("Boston's never arrive") is read off an order: the stream sends changes
in log order, so once a change written after Boston's has arrived, Boston's would have come
before it.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY

from api import routes_events
from api.app import create_app
from api.routes_events import Timing, decode_id, encode_id, end_streams, next_wait
from shrinkwatch.settings import Settings
from tests.api.conftest import NOW, answers, bearer, make_token, seed
from tests.factories import incident
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.accounts import add_user, update_user
from warehouse.api_tokens import revoke_token
from warehouse.db import Connection, connect
from warehouse.incident_events import Position, purge_events, read_events, start_position
from warehouse.incidents import upsert_incidents
from warehouse.jobs import prune_and_say
from warehouse.scope import QueryError, Scope

pytestmark = pytest.mark.services

DEADLINE_S = 90.0
LEEDS, BOSTON = ("store-001", "cam-1"), ("store-002", "cam-2")


# -- a client of the stream -----------------------------------------------------------------------
@dataclass
class Event:
    event: str
    id: str
    data: dict[str, Any]


@dataclass
class Stream:
    """GET /v1/events on a socket, read by a thread of its own into `events` and `comments`."""

    port: int
    token: str
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""
    status: int = 0
    body: bytes = b""
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    last_id: str | None = None  # as EventSource keeps it: the last `id:` read, with data or not
    ended: threading.Event = field(default_factory=threading.Event)
    clean_end: bool = False

    def open(self) -> Stream:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        self.conn.request("GET", f"/v1/events{self.query}", headers=bearer(self.token) | self.headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        if self.status != 200:
            self.body = self.response.read()
            self.ended.set()
            return self
        assert self.response.getheader("content-type", "").startswith("text/event-stream")
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        block: dict[str, str] = {}
        try:
            while True:
                line = self.response.readline()
                if not line:
                    self.clean_end = True
                    return
                text = line.decode("utf-8").rstrip("\r\n")
                if text.startswith(":"):
                    self.comments.append(text)
                elif text:
                    name, _, value = text.partition(":")
                    block[name] = value.removeprefix(" ")
                elif block:
                    self.last_id = block.get("id", self.last_id)
                    if "data" in block:  # (a block without data dispatches no event)
                        self.events.append(Event(block["event"], block["id"], json.loads(block["data"])))
                    block = {}
        except (OSError, http.client.HTTPException):
            return  # the connection was cut (by close(), or a server that did not end the stream)
        finally:
            self.ended.set()

    def incidents(self) -> list[tuple[str, int, str]]:
        """The incident events so far: (incident id, version, review)."""
        return [
            (e.data["incident_id"], e.data["version"], e.data["review"])
            for e in self.events
            if e.event == "incident"
        ]

    def wait_for_count(self, n: int) -> None:
        wait_for(lambda: len(self.events) >= n, DEADLINE_S, what=f"{n} event(s), have {self.incidents()}")

    def close(self) -> None:
        """Disconnect as a client whose network went away."""
        if self.status == 200 and not self.ended.is_set():
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # the reader's recv returns: it ends
        assert self.ended.wait(DEADLINE_S)
        self.conn.close()


# -- a server ---------------------------------------------------------------------------------------
@dataclass
class Live:
    settings: Settings
    port: int
    tokens: dict[str, str]

    def stream(self, token: str, **options: Any) -> Stream:
        return Stream(self.port, self.tokens[token], **options).open()

    def write(self, *made: Any) -> None:
        """Incident states, written as the flow writes them."""
        with connect(self.settings.database_dsn) as conn:
            upsert_incidents(conn, made)

    def verdict(self, token: str, incident_id: str, verdict: str = "confirmed") -> None:
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/v1/incidents/{incident_id}/verdict",
            headers=bearer(self.tokens[token]),
            json={"verdict": verdict, "note": "seen on camera"},
            timeout=60,
        )
        assert response.status_code == 200, response.text

    def listed(self, token: str, incident_id: str) -> dict[str, Any]:
        """The incident as /v1/incidents lists it."""
        response = httpx.get(
            f"http://127.0.0.1:{self.port}/v1/incidents", headers=bearer(self.tokens[token]), timeout=60
        )
        assert response.status_code == 200, response.text
        (item,) = [i for i in response.json()["items"] if i["incident_id"] == incident_id]
        return dict(item)


def made(incident_id: str, where: tuple[str, str], version: int = 1, minutes: int = 0) -> Any:
    """An incident state of the store and camera `where`."""
    store_id, camera_id = where
    return incident(
        version,
        "open" if version == 1 else "closed",
        incident_id=incident_id,
        store_id=store_id,
        camera_id=camera_id,
        started_at=NOW + timedelta(minutes=minutes),
        updated_at=NOW + timedelta(minutes=minutes, seconds=version),
        risk_score=0.5 + 0.1 * version,
        risk_level="medium" if version == 1 else "high",
    )


@pytest.fixture
def serve(settings: Settings) -> Iterator[Callable[..., Live]]:
    """Factory: the seeded warehouse (tests.api.conftest.seed) served by uvicorn on a free port
    in this process, with these stream timings; tokens `leeds` (mo's: Leeds), `all` (ana's:
    both stores) and `soc` (a service token of Leeds)."""
    seed(settings)
    tokens = {
        "leeds": make_token(settings, "leeds", username="mo", permissions=("read", "review")),
        "all": make_token(settings, "all", username="ana", permissions=("read", "review")),
        "soc": make_token(settings, "soc", service=True, stores=["store-001"]),
    }
    running: list[tuple[Any, uvicorn.Server, threading.Thread]] = []

    def start(timing: Timing | None = None) -> Live:
        app = create_app(settings)
        app.state.event_timing = timing or Timing()
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((app, server, thread))
        wait_for(lambda: server.started, DEADLINE_S, what="uvicorn")
        return Live(settings, port, tokens)

    yield start
    for app, server, thread in running:
        end_streams(app)
        server.should_exit = True
        thread.join(DEADLINE_S)
        assert not thread.is_alive()


# -- the tests --------------------------------------------------------------------------------------
def test_changes_arrive_in_order_and_only_those_of_the_tokens_stores(serve: Callable[..., Live]) -> None:
    live = serve()
    leeds, soc, everyone = live.stream("leeds"), live.stream("soc"), live.stream("all")
    live.write(made("l-new", LEEDS))
    live.write(made("b-new", BOSTON))  # before Leeds's last changes: it would come before them
    live.write(made("l-new", LEEDS, version=2), made("l-other", LEEDS, minutes=1))
    live.verdict("leeds", "l-new")
    expected = [("l-new", 1, "unreviewed"), ("l-new", 2, "unreviewed"), ("l-other", 1, "unreviewed")]
    expected.append(("l-new", 2, "confirmed"))
    for stream in (leeds, soc):
        stream.wait_for_count(4)
        assert stream.incidents() == expected  # nothing of the seed (written before the stream)
    everyone.wait_for_count(5)
    assert ("b-new", 1, "unreviewed") in everyone.incidents()  # Boston's was written and sent
    assert everyone.incidents()[1] == ("b-new", 1, "unreviewed")
    assert {e.data["store_id"] for e in leeds.events} == {"store-001"}

    verdict = leeds.events[-1].data
    assert verdict == live.listed("leeds", "l-new")  # the fields of an item of /v1/incidents
    assert verdict["reviewed_by"] == "mo" and verdict["review_note"] == "seen on camera"
    assert verdict["started_at"].endswith("Z")
    assert all(e.event == "incident" for e in leeds.events)
    assert len({e.id for e in everyone.events}) == 5
    for stream in (leeds, soc, everyone):
        stream.close()


def test_a_stream_resumed_after_a_disconnect_gets_exactly_the_changes_made_meanwhile(
    serve: Callable[..., Live],
) -> None:
    live = serve()
    first = live.stream("leeds")
    live.write(made("c-1", LEEDS))
    live.write(made("c-2", LEEDS, minutes=1))
    first.wait_for_count(2)
    first.close()
    last_id = first.events[-1].id

    live.write(made("c-3", LEEDS, minutes=2), made("b-9", BOSTON))  # while nobody listens
    live.write(made("c-1", LEEDS, version=2))
    live.verdict("leeds", "c-2", "rejected")
    meanwhile = [("c-3", 1, "unreviewed"), ("c-1", 2, "unreviewed"), ("c-2", 1, "rejected")]

    resumed = live.stream("leeds", headers={"Last-Event-ID": last_id})  # as EventSource does
    by_query = live.stream("leeds", query=f"?last_event_id={last_id}")
    header_wins = live.stream("leeds", headers={"Last-Event-ID": last_id}, query="?last_event_id=1-1")
    from_first = live.stream("leeds", headers={"Last-Event-ID": first.events[0].id})
    for stream in (resumed, by_query, header_wins):
        stream.wait_for_count(3)
    from_first.wait_for_count(4)
    live.write(made("c-4", LEEDS, minutes=3))  # after it, nothing of before can still come
    for stream in (resumed, by_query, header_wins):
        stream.wait_for_count(4)
        assert stream.incidents() == [*meanwhile, ("c-4", 1, "unreviewed")]
    from_first.wait_for_count(5)
    assert from_first.incidents() == [("c-2", 1, "unreviewed"), *meanwhile, ("c-4", 1, "unreviewed")]
    assert (
        [e.id for e in resumed.events]
        == [e.id for e in by_query.events]
        == [e.id for e in from_first.events[1:]]
    )
    for stream in (resumed, by_query, header_wins, from_first):
        stream.close()


def test_a_change_the_model_cannot_take_is_passed_over_and_the_stream_goes_on(
    serve: Callable[..., Live],
) -> None:
    """An incident type a newer flow wrote before the API was upgraded: that change is left out
    (logged), the stream neither ends at it nor sends it again and again."""
    live = serve()
    stream = live.stream("leeds")
    live.write(made("odd", LEEDS))
    with connect(live.settings.database_dsn) as conn:
        conn.execute(
            "UPDATE incidents SET incident_type = 'a_kind_from_a_newer_flow', version = 2 "
            "WHERE incident_id = 'odd'"
        )
        conn.commit()
    live.write(made("after", LEEDS, minutes=1))
    stream.wait_for_count(2)
    assert stream.incidents() == [("odd", 1, "unreviewed"), ("after", 1, "unreviewed")]
    assert not stream.ended.is_set()
    stream.close()


def test_a_token_has_a_few_streams_and_a_closed_one_gives_its_place_back(
    serve: Callable[..., Live], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One token cannot take a process's streams (and PostgreSQL's connections): past its
    share it gets 503 with Retry-After, while another token still gets a stream."""
    monkeypatch.setattr(routes_events, "MAX_STREAMS_PER_TOKEN", 2)
    live = serve()
    first, second = live.stream("leeds"), live.stream("leeds")
    third = live.stream("leeds")
    assert (first.status, second.status, third.status) == (200, 200, 503)
    assert json.loads(third.body) == {"detail": "too many live streams are open; try again shortly"}
    other = live.stream("soc")
    assert other.status == 200
    second.close()
    wait_for(lambda: _reopens(live, "leeds"), DEADLINE_S, what="the closed stream's place given back")
    for stream in (first, other):
        stream.close()


def _reopens(live: Live, token: str) -> bool:
    stream = live.stream(token)
    stream.close()
    return stream.status == 200


def test_a_client_that_had_no_event_resumes_from_its_keep_alives_id(serve: Callable[..., Live]) -> None:
    """A keep-alive carries the stream's position as an id with no data: a quiet client's last
    event id, so the changes made while it was away are not lost to a start at "now"."""
    live = serve(Timing(keepalive_s=0.2, poll_s=0.2))
    quiet = live.stream("leeds")
    wait_for(lambda: quiet.last_id is not None, DEADLINE_S, what="a keep-alive with an id")
    quiet.close()
    assert quiet.events == [] and quiet.last_id is not None
    live.write(made("away-1", LEEDS), made("away-b", BOSTON))  # while nobody listens
    resumed = live.stream("leeds", headers={"Last-Event-ID": quiet.last_id})
    fresh = live.stream("leeds")  # without an id: from now, so none of those
    live.write(made("after", LEEDS, minutes=1))
    resumed.wait_for_count(2)
    fresh.wait_for_count(1)
    assert resumed.incidents() == [("away-1", 1, "unreviewed"), ("after", 1, "unreviewed")]
    assert fresh.incidents() == [("after", 1, "unreviewed")]
    for stream in (resumed, fresh):
        stream.close()


@pytest.mark.parametrize(
    ("where", "value", "starts"),
    [
        ("query", "garbage", "last_event_id: not an event id this stream gave"),
        ("query", "", "last_event_id: not an event id"),
        ("query", "12-", "last_event_id: not an event id"),
        ("query", "12-zz", "last_event_id: not an event id"),
        ("query", "ffffffffffffffff-1", "last_event_id: not an event id"),  # past any xid8 we give
        ("query", "7ffffffffffffff0-1", "last_event_id: not an event id"),  # no transaction had it yet
        ("query", "1" * 65, "last_event_id: "),
        ("header", "garbage", "last_event_id: not an event id"),
        ("header", "7ffffffffffffff0-1", "last_event_id: not an event id"),
        ("header", "x" * 65, "Last-Event-ID: "),
        ("unknown", "", "unknown parameter(s): since"),
    ],
)
def test_a_malformed_event_id_is_422_before_any_stream(
    serve: Callable[..., Live], where: str, value: str, starts: str
) -> None:
    live = serve()
    options: dict[str, Any] = {
        "query": {"query": f"?last_event_id={value}", "header": "", "unknown": "?since=1"}[where],
        "headers": {"Last-Event-ID": value} if where == "header" else {},
    }
    stream = live.stream("leeds", **options)
    assert stream.status == 422
    body = json.loads(stream.body)
    assert set(body) == {"detail"} and body["detail"].startswith(starts), body
    stream.close()


def test_no_token_or_a_bad_one_is_the_401_of_every_route(serve: Callable[..., Live]) -> None:
    live = serve()
    for headers in ({}, {"Authorization": "Bearer swt_nothing"}):
        response = httpx.get(f"http://127.0.0.1:{live.port}/v1/events", headers=headers, timeout=60)
        assert response.status_code == 401 and response.json() == {
            "detail": "missing, invalid, revoked or expired token"
        }


def test_a_revoked_tokens_stream_ends_at_the_next_keep_alive(serve: Callable[..., Live]) -> None:
    live = serve(Timing(keepalive_s=0.2, poll_s=0.2))
    stream, other = live.stream("leeds"), live.stream("soc")
    wait_for(lambda: len(stream.comments) >= 2, DEADLINE_S, what="keep-alives")
    assert set(stream.comments) == {": keep-alive"} and stream.events == []
    refused = REGISTRY.get_sample_value("shrinkwatch_sign_in_failures_total", {"surface": "api"}) or 0.0
    with connect(live.settings.database_dsn) as conn:
        assert revoke_token(conn, "leeds", by="tests")
    assert stream.ended.wait(DEADLINE_S), "the stream of a revoked token went on"
    assert stream.clean_end and stream.events == []
    # (the server is in this process: its metrics are this registry's)
    assert REGISTRY.get_sample_value("shrinkwatch_sign_in_failures_total", {"surface": "api"}) == refused + 1
    assert not other.ended.is_set()  # (another token's goes on)
    live.write(made("after", LEEDS))
    other.wait_for_count(1)
    assert other.incidents() == [("after", 1, "unreviewed")]
    again = live.stream("leeds", headers={"Last-Event-ID": other.events[0].id})
    assert again.status == 401
    for s in (stream, other, again):
        s.close()


def test_a_revoked_tokens_stream_ends_at_the_next_change_and_sends_it_not(
    serve: Callable[..., Live],
) -> None:
    live = serve(Timing(keepalive_s=3600, poll_s=3600))  # woken by the change alone (NOTIFY)
    stream, other = live.stream("leeds"), live.stream("soc")
    live.write(made("before", LEEDS))
    stream.wait_for_count(1)
    with connect(live.settings.database_dsn) as conn:
        assert revoke_token(conn, "leeds", by="tests")
    live.write(made("after", LEEDS))
    assert stream.ended.wait(DEADLINE_S), "the stream of a revoked token went on"
    other.wait_for_count(2)
    assert other.incidents() == [("before", 1, "unreviewed"), ("after", 1, "unreviewed")]
    assert stream.incidents() == [("before", 1, "unreviewed")]
    for s in (stream, other):
        s.close()


def _open_transaction_writing(conn: Connection, *states: Any) -> None:
    """Write incident states in a transaction left open (until conn.commit())."""
    conn.execute("SELECT 1")  # a transaction begins; upsert_incidents' block is a savepoint in it
    upsert_incidents(conn, states)


def test_two_transactions_committing_out_of_order_lose_nothing(serve: Callable[..., Live]) -> None:
    live = serve()
    stream = live.stream("leeds")
    dsn = live.settings.database_dsn
    leeds = Scope.of("store-001")
    with connect(dsn) as early, connect(dsn) as late, connect(dsn, autocommit=True) as reader:
        start = start_position(reader)
        _open_transaction_writing(early, made("x-early", LEEDS))  # its row is numbered first ...
        _open_transaction_writing(late, made("y-late", LEEDS, minutes=1))
        late.commit()  # ... but commits second
        numbered = reader.execute(
            "SELECT incident_id FROM incident_events WHERE incident_id IN ('x-early', 'y-late') ORDER BY seq"
        ).fetchall()
        assert [r["incident_id"] for r in numbered] == ["y-late"]  # x-early's not committed yet
        while_open = read_events(reader, leeds, start.position, skip=start.skip)
        assert while_open.events == [] and while_open.held_back  # y-late waits for x-early
        early.commit()
        numbered = reader.execute(
            "SELECT incident_id FROM incident_events WHERE incident_id IN ('x-early', 'y-late') ORDER BY seq"
        ).fetchall()
        assert [r["incident_id"] for r in numbered] == ["x-early", "y-late"]  # a seq cursor had lost it

        def both() -> list[str]:
            batch = read_events(reader, leeds, start.position, skip=start.skip)
            return [e.incident_id for e in batch.events]

        assert wait_for(lambda: both() == ["x-early", "y-late"] and both(), DEADLINE_S, what="both final")
    stream.wait_for_count(2)
    live.write(made("z-after", LEEDS, minutes=2))
    stream.wait_for_count(3)
    assert stream.incidents() == [
        ("x-early", 1, "unreviewed"),
        ("y-late", 1, "unreviewed"),
        ("z-after", 1, "unreviewed"),
    ]
    stream.close()


def test_a_stream_resumed_from_before_retentions_cut_is_told_with_a_gap_event(
    serve: Callable[..., Live],
) -> None:
    live = serve()
    first = live.stream("leeds")
    live.write(made("old-1", LEEDS))
    live.write(made("old-2", LEEDS, minutes=1))
    first.wait_for_count(2)
    first.close()
    with connect(live.settings.database_dsn) as conn:
        assert purge_events(conn, keep=timedelta(0)) >= 2  # everything final goes
        assert purge_events(conn, keep=timedelta(0)) == 0
    live.write(made("new-1", LEEDS, minutes=2))

    resumed = live.stream("leeds", headers={"Last-Event-ID": first.events[0].id})
    resumed.wait_for_count(2)
    gap = resumed.events[0]
    assert gap.event == "gap" and "re-read /v1/incidents" in gap.data["detail"]
    assert [e.event for e in resumed.events] == ["gap", "incident"]
    assert resumed.incidents() == [("new-1", 1, "unreviewed")]
    from_gap = live.stream("leeds", headers={"Last-Event-ID": gap.id})  # the gap's id: no gap again
    from_gap.wait_for_count(1)
    assert [e.event for e in from_gap.events] == ["incident"]
    assert from_gap.incidents() == [("new-1", 1, "unreviewed")]
    for s in (resumed, from_gap):
        s.close()


def test_the_api_command_stops_on_sigint_with_a_stream_open(settings: Settings, tmp_path: Path) -> None:
    seed(settings)
    token = make_token(settings, "leeds", username="mo")
    port = free_port()
    log = tmp_path / "api.log"
    proc = spawn_cli(["api", "--port", str(port)], cli_env(settings, tmp_path), log)
    live = Live(settings, port, {"leeds": token})

    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}", proc), DEADLINE_S, what="shrinkwatch api")
        stream = live.stream("leeds")
        live.write(made("live-1", LEEDS))
        stream.wait_for_count(1)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=DEADLINE_S)  # (it waited for the stream's client for ever)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert code == 0, output
    assert stream.ended.wait(DEADLINE_S)
    assert stream.clean_end, output  # ended by the server, not cut
    assert stream.incidents() == [("live-1", 1, "unreviewed")]
    assert token not in output
    stream.close()


def test_the_retention_job_deletes_the_log_past_its_7_days(settings: Settings) -> None:
    seed(settings)  # 7 incidents written now: 7 changes in the log
    with connect(settings.database_dsn) as conn:
        conn.execute(
            "UPDATE incident_events SET created_at = now() - interval '8 days' WHERE incident_id LIKE 'l-%'"
        )
        conn.commit()
    said: list[str] = []
    wait_for(lambda: prune_and_say(settings, said.append) or said, DEADLINE_S, what="the old changes final")
    assert said == ["retention: deleted 5 incident change(s) over 7 days old (GET /v1/events)"]
    with connect(settings.database_dsn) as conn:
        left = conn.execute("SELECT incident_id FROM incident_events ORDER BY incident_id").fetchall()
    assert [r["incident_id"] for r in left] == ["b-0", "b-1"]


def test_a_stream_follows_its_accounts_stores_as_they_change(serve: Callable[..., Live]) -> None:
    live = serve()
    with connect(live.settings.database_dsn) as conn:
        add_user(conn, "zed", "store_manager", password=None, stores=["store-001", "store-002"])
        conn.commit()
    live.tokens["zed"] = make_token(live.settings, "zed", username="zed")
    stream = live.stream("zed")
    live.write(made("b-while-both", BOSTON))
    stream.wait_for_count(1)
    with connect(live.settings.database_dsn) as conn:
        update_user(conn, "zed", stores=["store-001"])
    live.write(made("b-after", BOSTON))  # before Leeds's: it would come first
    live.write(made("l-after", LEEDS))
    stream.wait_for_count(2)
    assert stream.incidents() == [("b-while-both", 1, "unreviewed"), ("l-after", 1, "unreviewed")]
    stream.close()


@pytest.mark.parametrize(
    ("position", "text"),
    [
        (Position(1, 1), "1-1"),
        (Position(0x2F1A, 0x3C), "2f1a-3c"),
        (Position(0x2F1A, 0), "2f1a-0"),  # a keep-alive's: the horizon its stream read up to
        (Position(2**63 - 1, 2**63 - 1), "7" + "f" * 15 + "-7" + "f" * 15),
    ],
)
def test_an_event_id_names_its_position(position: Position, text: str) -> None:
    assert encode_id(position) == text
    assert decode_id(text) == position


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "-1",
        "1-",
        "1_1",
        "G-1",
        "1-1 ",
        " 1-1",
        "1-1-1",
        "8" + "0" * 15 + "-1",
        "1" * 17 + "-1",
        "1-8" + "0" * 15,
        "1-1\n",
    ],
)
def test_anything_else_is_no_event_id(text: str) -> None:
    with pytest.raises(QueryError, match="^last_event_id: not an event id this stream gave"):
        decode_id(text)


@pytest.mark.parametrize(
    ("held_back", "previous", "expected"),
    [
        (False, 0.25, 5.0),
        (False, None, 5.0),
        (True, None, 0.25),  # held back first: soon
        (True, 0.25, 0.5),
        (True, 2.0, 4.0),
        (True, 4.0, 5.0),
        (True, 5.0, 5.0),  # still held back: it stays at poll_s (it went back to 0.25)
    ],
)
def test_a_stream_reads_again_soon_while_a_committed_change_waits(
    held_back: bool, previous: float | None, expected: float
) -> None:
    assert next_wait(held_back, previous, poll_s=5.0) == expected
