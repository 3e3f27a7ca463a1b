"""The integration API's latency on the chain seed, against the same query called in-process.

Seeds (or, with --reuse-seed, reuses) the chain seed (benchmarks.common.chain: 90 days x 20
stores x 10 cameras, rollups built), starts `shrinkwatch api` as a process of its own, as users
run it, and makes two tokens as `shrinkwatch tokens add` makes them: an analyst's (every store)
and a store manager's (one store). Then, for each token, a client over HTTP (httpx, one
keep-alive connection) asks each question `--repeat` times, and in the same loop, turn about,
the query layer answers it in-process: the function the route calls, with the same arguments
(the scope the token has, the same filters, the cursor the API gave), on one open connection.
Questions: the incident list's first page, a filtered page, the filtered pages after it
following `next_cursor`, one incident, and two analytics questions about a store over its last
30 days (risk patterns, the dashboard's analytics chart; footfall per zone). Each prints p50
and p95 of both and the ratio API / in-process (p50): what HTTP, JSON, the request's
connection from the API's pool and its token check add (each timed in-process too, beside
what opening a connection costs: what the pool saves). Before timing, each question's API
answer is checked to be the in-process one (the same incidents, the same number of rows); a
mismatch stops the run.

SSE delivery (GET /v1/events; said and skipped by an API without it): an analyst's stream is
open while `--events` new incident rows are written as the flow writes them
(warehouse.incidents.upsert_incidents, one committed transaction per row, one every
`--every` s); each row's latency is from its commit returning to its event read from the
stream, p50 and p95, and how many never came.

Prints the CPU and its flags, and the load average before and after measuring (the figures of a
shared machine are noisy; the ratio is what travels).
Usage: python -m benchmarks.api_latency [--reuse-seed] [--repeat 50] [--events 50] [--days 90 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pandas as pd

from api.app import endpoints
from api.pool import ApiPool
from api.routes_incidents import decode_cursor
from benchmarks.common import chain, chain_options, child_environment, machine
from shrinkwatch.contracts import Incident, Signal
from shrinkwatch.net import free_port
from shrinkwatch.settings import Settings
from warehouse.accounts import add_user
from warehouse.analytics import footfall_by_zone, risk_patterns
from warehouse.api_tokens import add_token, authenticate_token
from warehouse.db import Connection, connect
from warehouse.incidents import incident_detail, incidents_page, upsert_incidents
from warehouse.scope import Cursor, IncidentFilter, Scope

STORE = "seed-001"  # the store manager's, and the store the analytics questions are about
PAGE = 50
FOLLOWED = 4  # pages after the first, following next_cursor
WARM_UP = 3
TOKENS = {"analyst": "analyst", "manager": "store_manager"}


@dataclass(frozen=True)
class Question:
    """One question, asked over HTTP (`path`, `params`) and in-process (`local`, on a
    connection)."""

    name: str
    path: str
    params: dict[str, str]
    local: Callable[[Connection], Any]


@dataclass(frozen=True)
class Figures:
    """A question's timings in ms, over HTTP and in-process."""

    name: str
    api_ms: list[float]
    local_ms: list[float]


def percentiles(times: list[float]) -> tuple[float, float]:
    """p50 and p95 (nearest rank) of the times."""
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def api_rows(answer: dict[str, Any]) -> list[str]:
    """What an API answer holds, to compare with the in-process one: its incidents' ids, or
    one mark per row of a list that has none, or the one incident's id."""
    if "items" in answer:
        return [str(item.get("incident_id", "row")) for item in answer["items"]]
    return [str(answer["incident_id"])]


def local_rows(result: Any) -> list[str]:
    """The same for what the query layer returned (a DataFrame, a page and its cursor, or one
    incident's row)."""
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, pd.DataFrame):
        if "incident_id" in result.columns:
            return [str(i) for i in result["incident_id"]]
        return ["row"] * len(result)
    return [str(result["incident_id"])]


def last_day(conn: Connection) -> date:
    """The seed's last day (a kept seed ends when it was made, not today)."""
    row = conn.execute("SELECT max(started_at) AS last FROM incidents").fetchone()
    if row is None or row["last"] is None:
        msg = "the seed holds no incidents"
        raise SystemExit(msg)
    last: date = row["last"].date()
    return last


def make_tokens(conn: Connection) -> dict[str, str]:
    """A read token of each kind of caller: `analyst` (every store), `manager` (STORE's manager)."""
    tokens = {}
    for name, role in TOKENS.items():
        username = f"bench-{name}"
        add_user(conn, username, role, password=None, stores=[STORE] if role == "store_manager" else [])
        _token, secret = add_token(conn, name=f"bench-{name}", username=username, created_by="benchmark")
        tokens[name] = secret
    return tokens


def cursors(client: httpx.Client, params: dict[str, str], pages: int) -> list[str]:
    """The `next_cursor`s of the first `pages` pages of the list these filters ask for."""
    found: list[str] = []
    asked = dict(params)
    for _ in range(pages):
        page = client.get("/v1/incidents", params=asked).raise_for_status().json()
        if page["next_cursor"] is None:
            break
        found.append(page["next_cursor"])
        asked["cursor"] = page["next_cursor"]
    return found


def page_after(
    scope: Scope, filters: IncidentFilter, after: Cursor, page: int
) -> Callable[[Connection], Any]:
    """The query layer's page after a cursor."""
    return lambda conn: incidents_page(conn, scope, filters, after=after, page_size=page)


def questions(client: httpx.Client, scope: Scope, end: date, page: int = PAGE) -> list[Question]:
    """The questions, each over HTTP and in-process with the same arguments (incident pages of
    `page`); `client` (with the token's header) finds the cursors and the incident to ask about."""
    first = end - timedelta(days=29)
    month = {"first_day": first.isoformat(), "last_day": end.isoformat()}
    filtered = IncidentFilter(levels=("high", "medium"), review=("unreviewed", "confirmed"), first_day=first)
    filtered_params = {"levels": "high,medium", "review": "unreviewed,confirmed"}
    filtered_params["first_day"] = month["first_day"]
    newest = client.get("/v1/incidents", params={"limit": "1"}).raise_for_status().json()["items"]
    if not newest:
        msg = "the token sees no incidents"
        raise SystemExit(msg)
    incident_id = newest[0]["incident_id"]
    asked = [
        Question(
            "incidents, first page",
            "/v1/incidents",
            {"limit": str(page)},
            lambda conn: incidents_page(conn, scope, IncidentFilter(), page_size=page),
        ),
        Question(
            "incidents, a filtered page",
            "/v1/incidents",
            {**filtered_params, "limit": str(page)},
            lambda conn: incidents_page(conn, scope, filtered, page_size=page),
        ),
    ]
    for n, text in enumerate(cursors(client, {**filtered_params, "limit": str(page)}, FOLLOWED), start=2):
        asked.append(
            Question(
                f"  its page {n} (next_cursor)",
                "/v1/incidents",
                {**filtered_params, "limit": str(page), "cursor": text},
                page_after(scope, filtered, decode_cursor(text), page),
            )
        )
    return [
        *asked,
        Question(
            "one incident",
            f"/v1/incidents/{incident_id}",
            {},
            lambda conn: incident_detail(conn, scope, incident_id),
        ),
        Question(
            "risk patterns, a store, 30 days",
            "/v1/analytics/risk-patterns",
            {**month, "stores": STORE},
            lambda conn: risk_patterns(conn, scope, first, end, (STORE,)),
        ),
        Question(
            "footfall, a store, 30 days",
            "/v1/analytics/footfall",
            {**month, "store": STORE},
            lambda conn: footfall_by_zone(conn, scope, STORE, first, end),
        ),
    ]


def ms_of(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(client: httpx.Client, conn: Connection, question: Question, repeat: int) -> Figures:
    """The question asked `repeat` times over HTTP and in-process, turn about (both see the
    same moments of a noisy machine), after a check that both give the same answer."""
    answer = client.get(question.path, params=question.params).raise_for_status().json()
    if api_rows(answer) != local_rows(question.local(conn)):
        msg = f"{question.name}: the API's answer is not the query layer's; not timing different questions"
        raise SystemExit(msg)

    def over_http() -> None:
        client.get(question.path, params=question.params).raise_for_status()

    def in_process() -> None:
        question.local(conn)

    for _ in range(WARM_UP):
        over_http()
        in_process()
    api_ms, local_ms = [], []
    for _ in range(repeat):
        api_ms.append(ms_of(over_http))
        local_ms.append(ms_of(in_process))
    return Figures(question.name, api_ms, local_ms)


def setup_figures(settings: Settings, token: str, repeat: int) -> list[Figures]:
    """What every request does before its query, timed in-process: borrow a connection from a
    pool as the API's (api.pool.ApiPool.borrow: the gate, the check as it is lent, given back),
    and check the token on it (authenticate_token); and, for comparison, what the pool saves:
    opening a connection of its own and closing it (what each request did before the pool)."""
    dsn = settings.database_dsn

    def new_connection() -> None:
        with connect(dsn, autocommit=True):
            pass

    async def lent_ms() -> list[float]:
        pool, times = ApiPool(settings), []
        try:
            for i in range(WARM_UP + repeat):
                start = time.perf_counter()
                async with pool.borrow():
                    pass
                if i >= WARM_UP:
                    times.append((time.perf_counter() - start) * 1000.0)
        finally:
            pool.close()
        return times

    with connect(dsn, autocommit=True) as conn:

        def token_check() -> None:
            authenticate_token(conn, token, client="127.0.0.1")

        figures = [Figures("  of which: a connection lent by the pool", [], asyncio.run(lent_ms()))]
        timed_here = (
            ("  of which: the token check", token_check),
            ("  (a new connection: what the pool saves)", new_connection),
        )
        for name, fn in timed_here:
            for _ in range(WARM_UP):
                fn()
            figures.append(Figures(name, [], [ms_of(fn) for _ in range(repeat)]))
    return figures


def line(caller: str, figures: Figures) -> str:
    """A question's figures: API and in-process p50 / p95, and their ratio (p50s); only the
    in-process ones for what has no API counterpart."""
    l50, l95 = percentiles(figures.local_ms)
    local = f"in-process p50 {l50:6.1f} ms p95 {l95:6.1f} ms"
    if not figures.api_ms:
        return f"{caller:8s} {figures.name:38s} {'':37s}| {local}"
    a50, a95 = percentiles(figures.api_ms)
    return (
        f"{caller:8s} {figures.name:38s} api p50 {a50:6.1f} ms p95 {a95:6.1f} ms | {local} | "
        f"{a50 / l50:5.1f}x"
    )


@contextmanager
def running_api(settings: Settings) -> Iterator[str]:
    """`shrinkwatch api` on a free port, as users run it, with the run's settings (its output
    in HOME/api.log); its address. Stopped with SIGTERM when the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    path = settings.home / "api.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--port", str(port)],
        env=child_environment(settings, "api-settings"),
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                msg = f"shrinkwatch api exited ({proc.returncode}); see {path}"
                raise SystemExit(msg)
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                msg = f"shrinkwatch api did not answer in 90 s; see {path}"
                raise SystemExit(msg)
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- SSE delivery -----------------------------------------------------------------------------------
def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """The (type, data) of each event in a text/event-stream's lines, by the stream format's
    rules: `field: value` lines (one space after the colon dropped), `:` comments, an event
    ended by a blank line, data lines joined by newlines, type `message` when none is named."""
    kind, data = "", []
    for text in lines:
        if not text:
            if data:
                yield kind or "message", "\n".join(data)
            kind, data = "", []
            continue
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)


class EventStream:
    """GET /v1/events, open and read in a thread: when each incident's first `incident` event
    was read (time.perf_counter)."""

    def __init__(self, url: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(30, read=None)
        )
        self._received: dict[str, float] = {}
        self._lock = threading.Lock()
        self._closing = False
        self.error: str | None = None
        self._thread = threading.Thread(target=self._read, name="sse-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/v1/events") as response:
                response.raise_for_status()
                for kind, data in sse_events(response.iter_lines()):
                    if kind == "incident":
                        incident_id = json.loads(data)["incident_id"]
                        with self._lock:
                            self._received.setdefault(incident_id, time.perf_counter())
        except Exception as exc:  # a stream that ends or fails is the run's finding, said once
            if not self._closing:
                self.error = f"{type(exc).__name__}: {exc}"

    def received(self) -> dict[str, float]:
        with self._lock:
            return dict(self._received)

    def close(self) -> None:
        self._closing = True
        self._client.close()
        self._thread.join(timeout=10)


def sse_incident(incident_id: str, camera_id: str) -> Incident:
    """A new incident as the flow writes it when it opens one (version 1, open, now)."""
    now = datetime.now(UTC)
    return Incident(
        incident_id=incident_id,
        version=1,
        store_id=STORE,
        camera_id=camera_id,
        track_id=1,
        incident_type="loitering_high_value",
        risk_score=0.6,
        risk_level="medium",
        status="open",
        started_at=now,
        updated_at=now,
        zone_ids=["z-shelf"],
        signals=[Signal(name="dwell_high_value_s", value=40.0, contribution=0.6)],
    )


def polled(condition: Callable[[], bool], timeout_s: float) -> bool:
    """True once `condition` holds, False if it has not after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def sse_latencies(
    dsn: str, url: str, token: str, count: int, every_s: float, wait_s: float = 30.0
) -> tuple[list[float], int]:
    """Write `count` new incidents of STORE, one committed row every `every_s` (as the flow's
    upsert_incidents writes them), with the token's stream open; each row's ms from its commit
    returning to its event read, and how many never came (`wait_s` after the last row; the
    stream must show it is open within twice that)."""
    prefix = f"bench-sse-{secrets.token_hex(3)}"
    camera_id = f"{STORE}-cam-01"
    stream = EventStream(url, token)
    try:
        with connect(dsn, autocommit=True) as conn:
            # The stream starts "now" once it is open: a probe's event says that it is (one row
            # every half second until one comes, as one written before that moment never will).
            probes: list[str] = []

            def came() -> bool:
                return not set(probes).isdisjoint(stream.received()) or stream.error is not None

            def probed() -> bool:
                probes.append(f"{prefix}-open-{len(probes)}")
                upsert_incidents(conn, [sse_incident(probes[-1], camera_id)])
                return polled(came, 0.5)

            if not polled(probed, 2 * wait_s):
                msg = f"SSE: GET /v1/events sent no event in {2 * wait_s:.0f} s for new incidents of {STORE}"
                raise SystemExit(msg)
            committed: dict[str, float] = {}
            for n in range(count):
                incident = sse_incident(f"{prefix}-{n}", camera_id)
                upsert_incidents(conn, [incident])  # its own transaction, committed when it returns
                committed[incident.incident_id] = time.perf_counter()
                time.sleep(every_s)  # the pace of the writes, not a wait for anything
        polled(lambda: committed.keys() <= stream.received().keys() or stream.error is not None, wait_s)
        received = stream.received()
    finally:
        stream.close()
    if stream.error is not None:
        msg = f"SSE: the stream failed: {stream.error}"
        raise SystemExit(msg)
    latencies = [(received[i] - t) * 1000 for i, t in committed.items() if i in received]
    return latencies, count - len(latencies)


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chain_options(parser)
    parser.add_argument("--repeat", type=int, default=50, help="Times each question is asked each way")
    parser.add_argument("--events", type=int, default=50, help="Incident rows written for the SSE latency")
    parser.add_argument("--every", type=float, default=0.2, help="Seconds between those rows")
    args = parser.parse_args()
    with chain(args) as settings:  # a database and topics of its own, seeded, rollups built
        dsn = settings.database_dsn
        with connect(dsn) as conn:
            tokens = make_tokens(conn)
            end = last_day(conn)
            count = conn.execute("SELECT count(*) AS n FROM incidents").fetchone()
        print(
            f"# api latency: {count['n'] if count else 0} incidents, {args.stores} stores, last day {end}, "
            f"{args.repeat} of each; {machine()}",
            flush=True,
        )
        with running_api(settings) as url, connect(dsn, autocommit=True) as conn:
            print(f"# before measuring: {load()}", flush=True)
            for caller, token in tokens.items():
                found = authenticate_token(conn, token, client="127.0.0.1")
                assert found is not None
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                    for question in questions(client, found.scope, end):
                        print(line(caller, measure(client, conn, question, args.repeat)), flush=True)
                for figures in setup_figures(settings, token, args.repeat):
                    print(line(caller, figures), flush=True)
            if ("/v1/events", "GET") in endpoints():
                latencies, missing = sse_latencies(dsn, url, tokens["analyst"], args.events, args.every)
                e50, e95 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
                print(
                    f"{'analyst':8s} {'SSE: incident row committed -> event':38s} p50 {e50:6.1f} ms "
                    f"p95 {e95:6.1f} ms over {len(latencies)} rows, one every {args.every} s; "
                    f"{missing} never came",
                    flush=True,
                )
            else:
                print("# SSE: this API serves no GET /v1/events yet; not measured", flush=True)
            print(f"# after measuring: {load()}", flush=True)


if __name__ == "__main__":
    main()
