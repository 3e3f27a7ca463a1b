"""`shrinkwatch api` as a real process on a free port, called over HTTP with httpx: it serves
the token's stores, refuses a token revoked by another process from the next request, and
stops cleanly (exit status 0) on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from shrinkwatch.settings import Settings
from tests.api.conftest import bearer, make_token, seed
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.api_tokens import revoke_token
from warehouse.db import connect

pytestmark = pytest.mark.services


def answers(url: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "shrinkwatch api exited"
    try:
        return httpx.get(f"{url}/openapi.json", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_the_api_command_serves_and_stops_cleanly_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    seed(settings)
    token = make_token(settings, "leeds", username="mo")
    port = free_port()
    log = tmp_path / "api.log"
    proc = spawn_cli(["api", "--port", str(port)], cli_env(settings, tmp_path), log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url, proc), 90, what="shrinkwatch api")
        response = httpx.get(f"{url}/v1/incidents", headers=bearer(token), timeout=30)
        assert response.status_code == 200, response.text
        assert {row["store_id"] for row in response.json()["items"]} == {"store-001"}
        with connect(settings.database_dsn) as conn:
            assert revoke_token(conn, "leeds", by="tests")
        refused = httpx.get(f"{url}/v1/incidents", headers=bearer(token), timeout=30)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    output = log.read_text()
    assert code == 0, output
    assert "api stopped" in output
    assert token not in output  # the token never reaches a log line
