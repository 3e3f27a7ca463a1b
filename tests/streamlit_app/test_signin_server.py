"""The dashboard's web server with its sign-in gate, over real HTTP and websockets: signed
out, nothing but the sign-in form answers; the cookie; throttling; sign-out and disabling
take effect at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket

from shrinkwatch.settings import Settings
from tests.streamlit_app.conftest import PASSWORD, sign_in
from tests.streamlit_app.test_dashboard_browser import healthy
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.users import FREE_FAILURES, disable_user


@pytest.fixture
def server(two_stores: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = spawn_cli(["app", "--port", str(port)], cli_env(two_stores, tmp_path), tmp_path / "app.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 90, what="the dashboard")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, allow_redirects=False, timeout=30, headers={"Accept": "text/html"}, **kwargs)


def post_signin(
    url: str, username: str, password: str, next_path: str = "/", **headers: str
) -> requests.Response:
    return requests.post(
        f"{url}/signin",
        data={"username": username, "password": password, "next": next_path},
        allow_redirects=False,
        timeout=30,
        headers=headers,
    )


def stream_opens(url: str, cookie: str | None) -> bool:
    headers = {"Cookie": f"shrinkwatch_session={cookie}"} if cookie else {}
    try:
        with websocket(
            url.replace("http://", "ws://") + "/_stcore/stream", additional_headers=headers, open_timeout=30
        ):
            return True
    except InvalidStatus:
        return False


def test_signed_out_only_the_sign_in_form_answers(server: str, two_stores: Settings) -> None:
    page = get(f"{server}/review?id=inc-1")
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=/review%3Fid%3Dinc-1"
    form = get(f"{server}/signin")
    assert form.status_code == 200 and 'name="password"' in form.text
    assert requests.get(f"{server}/media/abc.jpg", allow_redirects=False, timeout=30).status_code == 401
    assert requests.get(f"{server}/_stcore/health", timeout=30).status_code == 200
    assert not stream_opens(server, None)
    assert not stream_opens(server, "made-up-token")


def test_sign_in_cookie_and_sign_out(server: str, two_stores: Settings) -> None:
    sign_in(two_stores, "ana")  # creates the account
    wrong = post_signin(server, "ana", "not-the-password")
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.text
    assert "shrinkwatch_session" not in wrong.headers.get("set-cookie", "")

    done = post_signin(server, "ana", PASSWORD, next_path="/review")
    assert done.status_code == 303 and done.headers["location"] == "/review"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    token = done.cookies["shrinkwatch_session"]
    assert get(f"{server}/", cookies={"shrinkwatch_session": token}).status_code == 200
    assert stream_opens(server, token)

    # Another site cannot sign anyone in or out, nor send people elsewhere afterwards.
    assert post_signin(server, "ana", PASSWORD, Origin="http://evil.example").status_code == 403
    assert post_signin(server, "ana", PASSWORD, next_path="//evil.example/x").headers["location"] == "/"
    assert post_signin(server, "ana", PASSWORD, next_path="https://evil.example").headers["location"] == "/"
    cross = requests.post(
        f"{server}/signout",
        cookies={"shrinkwatch_session": token},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
        timeout=30,
    )
    assert cross.status_code == 303
    assert get(f"{server}/", cookies={"shrinkwatch_session": token}).status_code == 200  # still signed in

    out = requests.post(
        f"{server}/signout", cookies={"shrinkwatch_session": token}, allow_redirects=False, timeout=30
    )
    assert out.headers["location"] == "/signin?signed_out=1"
    assert get(f"{server}/", cookies={"shrinkwatch_session": token}).status_code == 303
    assert not stream_opens(server, token)


def test_disabling_an_account_ends_its_sessions_at_once_and_guessing_is_throttled(
    server: str, two_stores: Settings
) -> None:
    sign_in(two_stores, "mo", "store_manager", ("store-001",))
    token = post_signin(server, "mo", PASSWORD).cookies["shrinkwatch_session"]
    assert get(f"{server}/", cookies={"shrinkwatch_session": token}).status_code == 200
    with connect(two_stores.database_dsn) as conn:
        disable_user(conn, "mo")
    assert get(f"{server}/", cookies={"shrinkwatch_session": token}).status_code == 303
    assert not stream_opens(server, token)

    sign_in(two_stores, "ana")
    for _ in range(FREE_FAILURES["user"]):
        assert post_signin(server, "ana", "a-wrong-guess").status_code == 401
    throttled = post_signin(server, "ana", PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins for this account" in throttled.text
    assert int(throttled.headers["retry-after"]) > 0
