"""The dashboard's web server with its sign-in gate, over real HTTP and websockets: signed
out, nothing but the sign-in form answers; the cookie; throttling; sign-out and disabling
take effect at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
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
from warehouse.accounts import disable_user
from warehouse.db import connect
from warehouse.sign_in_throttle import FREE_FAILURES


@contextmanager
def running_dashboard(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`shrinkwatch app` on a free port with these settings; its address."""
    port = free_port()
    proc = spawn_cli(["app", "--port", str(port)], cli_env(settings, tmp_path), tmp_path / "app.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 90, what="the dashboard")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


@pytest.fixture
def server(two_stores: Settings, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(two_stores, tmp_path) as url:
        yield url


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


def post_signout(url: str, token: str, *, origin: str) -> requests.Response:
    """Sign-out as a page of `origin` asks for it (the dashboard's own, or another site)."""
    return requests.post(
        f"{url}/signout",
        cookies={"shrinkwatch_session": token},
        headers={"Origin": origin},
        allow_redirects=False,
        timeout=30,
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
    assert requests.get(f"{server}/media/abc.jpg", allow_redirects=False, timeout=30).status_code == 404
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
    # Sign-out ends the session on the server, or does nothing at all.
    ask = get(f"{server}/signout", cookies={"shrinkwatch_session": token})  # a link, an <img> elsewhere
    assert ask.status_code == 200 and 'method="post"' in ask.text
    cross = post_signout(server, token, origin="http://evil.example")
    assert cross.status_code == 403 and "set-cookie" not in cross.headers
    assert get(f"{server}/", cookies={"shrinkwatch_session": token}).status_code == 200  # still signed in
    assert stream_opens(server, token)

    out = post_signout(server, token, origin=server)
    assert out.headers["location"] == "/signin?signed_out=1"
    assert get(f"{server}/", cookies={"shrinkwatch_session": token}).status_code == 303
    assert not stream_opens(server, token)
    # Afterwards a GET only forgets the dead cookie.
    again = get(f"{server}/signout", cookies={"shrinkwatch_session": token})
    assert again.status_code == 303 and 'shrinkwatch_session=""' in again.headers["set-cookie"]


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


def test_guesses_sent_at_once_and_forged_addresses_are_throttled(server: str, two_stores: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sign_in(two_stores, "ana")
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda i: post_signin(server, "ana", f"guess-{i}").status_code, range(8)))
    assert codes == [401] * FREE_FAILURES["user"] + [429] * (8 - FREE_FAILURES["user"])

    # No trusted proxy is configured: X-Forwarded-For is the client's word, and ignored.
    for i in range(FREE_FAILURES["ip"]):
        post_signin(server, f"nobody{i}", "a-wrong-guess", **{"X-Forwarded-For": f"203.0.113.{i}"})
    with connect(two_stores.database_dsn) as conn:
        keys = {r["key"] for r in conn.execute("SELECT key FROM sign_in_failures WHERE key LIKE 'ip:%'")}
    assert keys == {"ip:127.0.0.1"}
    forged = post_signin(server, "nobody", "a-wrong-guess", **{"X-Forwarded-For": "198.51.100.7"})
    assert forged.status_code == 429 and "for this address" in forged.text


def test_every_response_carries_the_security_headers(server: str, two_stores: Settings) -> None:
    token = sign_in(two_stores, "ana")
    cookies = {"shrinkwatch_session": token}
    answers = {
        "sign-in form": get(f"{server}/signin"),
        "redirect": get(f"{server}/review"),
        "app page": get(f"{server}/review", cookies=cookies),
        "frontend bundle": requests.get(f"{server}/favicon.png", timeout=30),
        "health": requests.get(f"{server}/_stcore/health", timeout=30),
        "not found": get(f"{server}/evidence/nothing/snapshot.jpg", cookies=cookies),
        "closed": get(f"{server}/media/x.jpg", cookies=cookies),
        "export": get(f"{server}/export/incidents.csv", cookies=cookies),
    }
    for what, answer in answers.items():
        policy = answer.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy and "img-src 'self' data: blob:" in policy, what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("referrer-policy") == "same-origin", what


def test_behind_tls_the_cookie_is_secure_and_host_only(two_stores: Settings, tmp_path: Path) -> None:
    sign_in(two_stores, "ana")
    secure = two_stores.model_copy(update={"dashboard_secure_cookie": True})
    with running_dashboard(secure, tmp_path) as url:
        done = post_signin(url, "ana", PASSWORD)
        assert done.status_code == 303
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("__Host-shrinkwatch_session=")
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
        token = cookie.split(";")[0].split("=", 1)[1]
        assert get(f"{url}/", cookies={"__Host-shrinkwatch_session": token}).status_code == 200
        # The unprefixed name (which a subdomain or plain http could set) signs nobody in.
        assert get(f"{url}/", cookies={"shrinkwatch_session": token}).status_code == 303
        # Sign-out's deletion carries Secure too, or a browser would keep the __Host- cookie.
        out = requests.post(
            f"{url}/signout",
            cookies={"__Host-shrinkwatch_session": token},
            headers={"Origin": url},
            allow_redirects=False,
            timeout=30,
        )
        assert out.status_code == 303
        deletion = out.headers["set-cookie"]
        assert deletion.startswith('__Host-shrinkwatch_session="";') and "Secure" in deletion, deletion
