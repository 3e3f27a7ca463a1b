"""`shrinkwatch api` as a real process on a free port, called over HTTP with httpx: it serves
the token's stores, refuses a token revoked by another process from the next request, and
stops cleanly (exit status 0) on SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from shrinkwatch.settings import Settings
from tests.api.conftest import answers, bearer, make_token, seed
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.api_tokens import revoke_token
from warehouse.db import Connection, connect

pytestmark = pytest.mark.services


def last_used_from(conn: Connection, name: str) -> str | None:
    row = conn.execute("SELECT last_used_from FROM api_tokens WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return row["last_used_from"]


def test_the_api_command_serves_and_stops_cleanly_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    seed(settings)
    token = make_token(settings, "leeds", username="mo")
    port = free_port()
    log = tmp_path / "api.log"
    proc = spawn_cli(["api", "--port", str(port)], cli_env(settings, tmp_path), log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url, proc), 90, what="shrinkwatch api")
        forged = bearer(token) | {"X-Forwarded-For": "203.0.113.9"}
        response = httpx.get(f"{url}/v1/incidents", headers=forged, timeout=30)
        assert response.status_code == 200, response.text
        assert {row["store_id"] for row in response.json()["items"]} == {"store-001"}
        with connect(settings.database_dsn) as conn:
            assert last_used_from(conn, "leeds") == "127.0.0.1"  # no proxy is trusted by default
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


def test_behind_a_trusted_proxy_the_address_is_the_forwarded_one(settings: Settings, tmp_path: Path) -> None:
    """api_trusted_proxies: the loopback peer is the proxy; X-Forwarded-For's last address is
    the client's (uvicorn's proxy headers, trusted from that address only)."""
    seed(settings)
    proxied = settings.model_copy(update={"api_trusted_proxies": ["127.0.0.0/8"]})
    token = make_token(settings, "leeds", username="mo")
    port = free_port()
    proc = spawn_cli(["api", "--port", str(port)], cli_env(proxied, tmp_path), tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url, proc), 90, what="shrinkwatch api")
        headers = bearer(token) | {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        assert httpx.get(f"{url}/v1/stores", headers=headers, timeout=30).status_code == 200
        with connect(settings.database_dsn) as conn:
            assert last_used_from(conn, "leeds") == "203.0.113.9"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
