"""The API's /metrics (api.metrics): `shrinkwatch api` as a real process counts exactly the
requests a test made, by route template (never the id a caller sent), method and status;
refused tokens are sign-in failures and a missing one is not; /metrics needs no token and
counts no scrape. In process: an error no handler answers is counted as the 500 it becomes,
and an event stream holds the open-streams gauge while it is open."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api.metrics import RequestMetrics, streaming
from shrinkwatch.settings import Settings
from tests.api.conftest import bearer, make_token, seed
from tests.metrics_support import Samples, total, value
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.api_tokens import revoke_token
from warehouse.db import connect

pytestmark = pytest.mark.services


def scrape(url: str) -> Samples | None:
    """The API's /metrics (no token), or None while it does not answer yet."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        response = httpx.get(f"{url}/metrics", timeout=30)
    except httpx.TransportError:
        return None
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_of(samples: Samples, route: str, status: str) -> float | None:
    return value(samples, "shrinkwatch_api_requests_total", route=route, method="GET", status=status)


def test_the_api_process_counts_the_requests_it_answered(settings: Settings, tmp_path: Path) -> None:
    seed(settings)
    leeds = make_token(settings, "leeds", username="mo")
    revoked = make_token(settings, "gone", username="mo")
    with connect(settings.database_dsn) as conn:
        assert revoke_token(conn, "gone", by="tests")
    port = free_port()
    log = tmp_path / "api.log"
    proc: subprocess.Popen[bytes] = spawn_cli(["api", "--port", str(port)], cli_env(settings, tmp_path), log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or scrape(url) is not None, 90, what="shrinkwatch api")
        assert proc.poll() is None, log.read_text()
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/v1/stores", headers=bearer(leeds)).status_code == 200
            assert client.get("/v1/stores", headers=bearer(leeds)).status_code == 200
            assert client.get("/v1/incidents/l-0", headers=bearer(leeds)).status_code == 200
            assert client.get("/v1/incidents/l-1", headers=bearer(leeds)).status_code == 200
            assert client.get("/v1/incidents/b-0", headers=bearer(leeds)).status_code == 404  # Boston's
            assert client.get("/v1/stores", headers=bearer(revoked)).status_code == 401
            assert client.get("/v1/stores", headers=bearer("swt_guessed.guessed")).status_code == 401
            assert client.get("/v1/stores").status_code == 401  # no token: nothing was tried
            assert client.get("/v1/no-such-route/l-0", headers=bearer(leeds)).status_code == 404
            assert client.get("/docs-assets/swagger-ui.css").status_code == 200
            assert client.get("/docs-assets/l-0.js").status_code == 404
        samples = scrape(url)
        again = scrape(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    assert samples is not None and again is not None

    assert requests_of(samples, "/v1/stores", "200") == 2
    assert requests_of(samples, "/v1/stores", "401") == 3
    assert requests_of(samples, "/v1/incidents/{incident_id}", "200") == 2
    assert requests_of(samples, "/v1/incidents/{incident_id}", "404") == 1
    assert requests_of(samples, "unmatched", "404") == 1
    assert requests_of(samples, "/docs-assets/{path}", "200") == 1  # a template, not the file
    assert requests_of(samples, "/docs-assets/{path}", "404") == 1
    assert total(samples, "shrinkwatch_api_requests_total") == 11  # the scrapes are not counted
    assert total(again, "shrinkwatch_api_requests_total") == 11
    assert not any("l-0" in str(labels) or "b-0" in str(labels) for _name, labels in samples)
    seconds = "shrinkwatch_api_request_seconds_count"
    assert value(samples, seconds, route="/v1/stores", method="GET") == 5
    assert value(samples, seconds, route="/v1/incidents/{incident_id}", method="GET") == 3
    assert value(samples, "shrinkwatch_sign_in_failures_total", surface="api") == 2
    assert value(samples, "shrinkwatch_api_event_streams") == 0
    assert value(samples, "shrinkwatch_build_info", role="api", version=_version()) == 1
    assert total(samples, "process_resident_memory_bytes") > 0


def _version() -> str:
    from shrinkwatch import __version__

    return __version__


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_error_no_handler_answers_is_counted_as_its_500() -> None:
    app = FastAPI()

    @app.get("/v1/broken/{thing_id}")
    def broken(thing_id: str) -> None:
        msg = f"a bug about {thing_id}"
        raise RuntimeError(msg)

    app.add_middleware(RequestMetrics)
    labels = {"route": "/v1/broken/{thing_id}", "method": "GET"}
    before = _sample("shrinkwatch_api_requests_total", **labels, status="500")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/v1/broken/x-1").status_code == 500
    assert _sample("shrinkwatch_api_requests_total", **labels, status="500") == before + 1


def test_a_made_up_method_is_one_label_not_a_series_of_its_own() -> None:
    """A server takes any token as a method: each would be a series, sent by anyone."""
    app = FastAPI()

    @app.get("/v1/thing")
    def thing() -> dict[str, str]:
        return {}

    app.add_middleware(RequestMetrics)
    labels = {"route": "/v1/thing", "status": "405"}
    before = _sample("shrinkwatch_api_requests_total", **labels, method="other")
    with TestClient(app) as client:
        for n in range(3):
            assert client.request(f"MADEUP{n}", "/v1/thing").status_code == 405
    assert _sample("shrinkwatch_api_requests_total", **labels, method="other") == before + 3
    made_up = [_sample("shrinkwatch_api_requests_total", **labels, method=f"MADEUP{n}") for n in range(3)]
    assert made_up == [0, 0, 0]


def test_an_event_stream_holds_the_gauge_while_it_is_open() -> None:
    before = _sample("shrinkwatch_api_event_streams")
    with streaming():
        assert _sample("shrinkwatch_api_event_streams") == before + 1
        with pytest.raises(ConnectionResetError), streaming():
            assert _sample("shrinkwatch_api_event_streams") == before + 2
            raise ConnectionResetError  # a client gone mid-stream
        assert _sample("shrinkwatch_api_event_streams") == before + 1
    assert _sample("shrinkwatch_api_event_streams") == before
