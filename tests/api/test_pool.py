"""The API's PostgreSQL connections (api.pool) on real PostgreSQL, seen from the server's side
(pg_stat_activity): requests share the pool's few connections and a request without a token
takes none; a connection PostgreSQL dropped is replaced without a refused request; a server
stopped and started again: 503 while it is down, answers again once it is back; with every
connection lent, the next request waits, then is a 503 with Retry-After, and the one holding
it is answered; event streams take none of the pool's connections.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.pool import APPLICATION_NAME, BUSY, STREAM_APPLICATION_NAME
from infra.postgres import PostgresServer
from shrinkwatch.settings import Settings, load_settings
from tests.api.conftest import Api, bearer, make_token, seed
from tests.api.test_events import DEADLINE_S, Stream
from tests.support import TEST_HOME, free_port, wait_for
from warehouse.db import connect

pytestmark = pytest.mark.services


def api_backends(settings: Settings, waiting: bool = False) -> set[int]:
    """The server processes of this test's database that the API's pool opened (waiting: only
    those waiting for a lock)."""
    with connect(settings.database_dsn, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = %s
                 AND (NOT %s OR wait_event_type = 'Lock')""",
            (APPLICATION_NAME, waiting),
        ).fetchall()
    return {int(row["pid"]) for row in rows}


def stores_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [store["id"] for store in response.json()["items"]]


def test_requests_share_a_few_connections(api: Api) -> None:
    assert api.get("/v1/stores").status_code == 401  # no token
    assert api.get("/v1/stores", headers={"Authorization": "Bearer \x7f"}).status_code == 401
    assert api_backends(api.settings) == set()  # neither took a connection
    answers = [stores_of(api.get("/v1/stores", "all")) for _ in range(30)]
    assert answers == [["store-001", "store-002"]] * 30
    opened = api_backends(api.settings)
    # One request at a time needs one connection (the pool may have opened a second while the
    # first was connecting); a connection per request would have been 30.
    assert 1 <= len(opened) <= 2
    stats = api.client.app.state.pool.stats()  # type: ignore[attr-defined]
    assert stats["requests_num"] >= 30 and stats["connections_num"] == len(opened)


def test_a_connection_postgresql_dropped_is_replaced_and_no_request_is_refused(api: Api) -> None:
    stores_of(api.get("/v1/stores", "leeds"))
    dropped = api_backends(api.settings)
    assert dropped
    with connect(api.settings.database_dsn, autocommit=True) as conn:  # as a restart would
        conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (sorted(dropped),))
    wait_for(lambda: not api_backends(api.settings) & dropped, DEADLINE_S, what="the connections gone")
    # Each dead connection is found when it is lent (an empty query) and another is lent.
    assert [stores_of(api.get("/v1/stores", "leeds")) for _ in range(3)] == [["store-001"]] * 3
    now = api_backends(api.settings)
    assert now and not now & dropped


def test_a_server_stopped_and_started_again_is_answered_once_it_is_back() -> None:
    from warehouse.migrate import migrate

    # A server of this test's own, stopped here: under the suite's home (the `postgres` user
    # that runs it must reach its folder).
    home, port = TEST_HOME / f"pool-{uuid.uuid4().hex[:8]}", free_port()
    url = f"postgresql://shrinkwatch@127.0.0.1:{port}/shrinkwatch"
    settings = load_settings(None, home=home, postgres_port=port, database_url=url, metrics_port=0)
    server = PostgresServer(settings)
    server.start(progress=lambda _m: None)
    try:
        with connect(settings.database_dsn) as conn:
            migrate(conn, progress=lambda _m: None)
        seed(settings)
        token = make_token(settings, "all", username="ana")
        with TestClient(create_app(settings)) as client:
            assert stores_of(client.get("/v1/stores", headers=bearer(token))) == ["store-001", "store-002"]
            server.stop(progress=lambda _m: None)
            down = client.get("/v1/stores", headers=bearer(token))
            assert down.status_code == 503 and down.headers["Retry-After"] == "5"
            assert down.json() == {"detail": "the database is not answering; try again shortly"}
            server.start(progress=lambda _m: None)
            # The pool's connection died with the server: found when lent, another one made.
            wait_for(
                lambda: client.get("/v1/stores", headers=bearer(token)).status_code == 200,
                DEADLINE_S,
                what="the API answering again after PostgreSQL came back",
            )
            assert stores_of(client.get("/v1/stores", headers=bearer(token))) == ["store-001", "store-002"]
    finally:
        server.stop(progress=lambda _m: None)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def one_connection(make_settings: Any) -> Iterator[Api]:
    """The seeded warehouse (tests.api.conftest.seed) served with a pool of one connection."""
    from warehouse.migrate import migrate

    settings = make_settings(api_db_connections=1)
    with connect(settings.database_dsn) as conn:
        migrate(conn, progress=lambda _m: None)
    seed(settings)
    tokens = {"all": make_token(settings, "all", username="ana")}
    with TestClient(create_app(settings)) as client:
        yield Api(settings, client, tokens)


def test_with_every_connection_lent_a_request_waits_then_is_a_503(one_connection: Api) -> None:
    api = one_connection
    stores_of(api.get("/v1/stores", "all"))  # the pool's one connection is open
    blocker = connect(api.settings.database_dsn)
    first: list[httpx.Response] = []
    try:
        blocker.execute("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")  # every token check waits
        holder = threading.Thread(target=lambda: first.append(api.get("/v1/stores", "all")))
        holder.start()
        wait_for(lambda: api_backends(api.settings, waiting=True), DEADLINE_S, what="a request holding it")
        refused = api.get("/v1/stores", "all")  # nothing to lend: it waits (5 s), then 503
        assert refused.status_code == 503
        assert refused.json() == {"detail": BUSY}  # "every database connection of the API is in use ..."
        assert refused.headers["Retry-After"] == "5"
        assert not first  # the request holding the connection is still waiting for the lock
    finally:
        blocker.rollback()
        blocker.close()
    holder.join(DEADLINE_S)
    assert [stores_of(response) for response in first] == [["store-001", "store-002"]]
    assert stores_of(api.get("/v1/stores", "all")) == ["store-001", "store-002"]  # and on it goes


def test_event_streams_take_none_of_the_pools_connections(one_connection: Api) -> None:
    api = one_connection
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(api.settings), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, DEADLINE_S, what="uvicorn")
    streams = [Stream(port, api.tokens["all"]).open() for _ in range(3)]
    try:
        assert [stream.status for stream in streams] == [200, 200, 200]
        # Three streams open, each on a connection of its own: the pool's one is free.
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/stores", headers=bearer(api.tokens["all"]), timeout=60
        )
        assert stores_of(response) == ["store-001", "store-002"]
        assert len(api_backends(api.settings)) == 1
        with connect(api.settings.database_dsn, autocommit=True) as conn:
            own = conn.execute(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = %s",
                (STREAM_APPLICATION_NAME,),
            ).fetchone()
        assert own is not None and own["n"] == 3  # one for each stream, of its own
    finally:
        for stream in streams:
            stream.close()
        server.should_exit = True
        thread.join(DEADLINE_S)
    assert not thread.is_alive()
