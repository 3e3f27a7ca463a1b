"""benchmarks.api_latency at a small size, on the session's test services: `shrinkwatch api`
runs as a process; an analyst's and a store manager's tokens are made; every question is
asked over HTTP and in-process with the same arguments and timed both ways (the manager's
answers are their store's only); a question whose two answers differ is refused, not timed;
every incident row written reaches the store manager's event stream and is timed; and the
event-stream lines are read by the format's rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
import pytest

from benchmarks import api_latency
from benchmarks.api_latency import Question
from shrinkwatch.settings import Settings
from warehouse.api_tokens import authenticate_token
from warehouse.db import connect
from warehouse.incidents import incidents_page
from warehouse.rollups import run_rollups
from warehouse.scope import IncidentFilter, Scope
from warehouse.seed import seed_history

pytestmark = pytest.mark.services
PAGE = 1  # small pages, so that the seed's incidents make several to follow
UNTIL = datetime(2026, 11, 30, 12, tzinfo=UTC)  # the same history every run (seed_history's own rng)


@dataclass
class Run:
    settings: Settings
    url: str
    tokens: dict[str, str]
    end: date

    def client(self, caller: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[caller]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def scope(self, caller: str) -> Scope:
        with connect(self.settings.database_dsn) as conn:
            found = authenticate_token(conn, self.tokens[caller], client="tests")
        assert found is not None
        return found.scope


@pytest.fixture
def run(settings: Settings) -> Iterator[Run]:
    """A week of two stores' history (one camera each), rollups built, the tokens, the API."""
    with connect(settings.database_dsn) as conn:
        seed_history(conn, days=7, stores=2, cameras=1, until=UNTIL, progress=lambda _m: None)
        tokens = api_latency.make_tokens(conn)
        end = api_latency.last_day(conn)
    run_rollups(settings.database_dsn, progress=lambda _m: None)
    with api_latency.running_api(settings) as url:
        yield Run(settings, url, tokens, end)


def test_every_question_is_timed_over_http_and_in_process(run: Run) -> None:
    assert run.scope("manager") == Scope.of(api_latency.STORE)
    assert len(run.scope("analyst").store_ids) == 2
    with connect(run.settings.database_dsn, autocommit=True) as conn:
        for caller in ("analyst", "manager"):
            with run.client(caller) as client:
                asked = api_latency.questions(client, run.scope(caller), run.end, page=PAGE)
                names = [q.name for q in asked]
                assert {"incidents, first page", "incidents, a filtered page", "one incident"} <= set(names)
                assert {"risk patterns, a store, 30 days", "footfall, a store, 30 days"} <= set(names)
                assert "  its page 2 (next_cursor)" in names, names
                for question in asked:
                    figures = api_latency.measure(client, conn, question, repeat=2)
                    assert len(figures.api_ms) == len(figures.local_ms) == 2
                    assert min(figures.api_ms + figures.local_ms) > 0
                listed = client.get("/v1/incidents", params={"limit": "500"}).raise_for_status().json()
                stores = {item["store_id"] for item in listed["items"]}
                assert stores == ({api_latency.STORE} if caller == "manager" else {"seed-001", "seed-002"})


def test_what_every_request_pays_first_is_timed_beside_what_the_pool_saves(run: Run) -> None:
    figures = api_latency.setup_figures(run.settings, run.tokens["manager"], repeat=3)
    assert [f.name for f in figures] == [
        "  of which: a connection lent by the pool",
        "  of which: the token check",
        "  (a new connection: what the pool saves)",
    ]
    assert all(len(f.local_ms) == 3 and min(f.local_ms) > 0 and not f.api_ms for f in figures)


def test_a_question_whose_two_answers_differ_is_not_timed(run: Run) -> None:
    scope = run.scope("analyst")
    different = Question(
        "first page, but one incident more in-process",
        "/v1/incidents",
        {"limit": str(PAGE)},
        lambda conn: incidents_page(conn, scope, IncidentFilter(), page_size=PAGE + 1),
    )
    refused = pytest.raises(SystemExit, match="not the query layer's")
    with (
        connect(run.settings.database_dsn, autocommit=True) as conn,
        run.client("analyst") as client,
        refused,
    ):
        api_latency.measure(client, conn, different, repeat=2)


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        (["event: incident", "id: 7", 'data: {"a": 1}', ""], [("incident", '{"a": 1}')]),
        (["data:x", ""], [("message", "x")]),  # no type named; no space after the colon
        (["data: one", "data: two", ""], [("message", "one\ntwo")]),
        (
            [": keep-alive", "", "event: incident", "data: 1", "", "data: 2", ""],
            [("incident", "1"), ("message", "2")],
        ),
        (["event: incident", "id: 8", ""], []),  # no data: no event
        (["event: incident", "data: never ended"], []),  # the stream closed mid-event
    ],
)
def test_event_stream_lines_are_read_by_the_formats_rules(
    lines: list[str], events: list[tuple[str, str]]
) -> None:
    assert list(api_latency.sse_events(lines)) == events


def test_every_row_written_is_timed_to_its_event_on_the_stream(run: Run) -> None:
    # Generous: the log holds a change back while any older transaction on the shared server runs.
    latencies, missing = api_latency.sse_latencies(
        run.settings.database_dsn, run.url, run.tokens["manager"], count=3, every_s=0.0, wait_s=120.0
    )
    assert missing == 0 and len(latencies) == 3
