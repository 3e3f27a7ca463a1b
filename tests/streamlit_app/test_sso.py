"""Single sign-on through a local OpenID Connect provider, driven by the real client
library (Authlib) inside the real dashboard server: the provider proves who someone is,
our accounts decide what they may see."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shrinkwatch.settings import Settings
from tests.streamlit_app.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.streamlit_app.test_dashboard_browser import healthy
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.accounts import add_user
from warehouse.db import connect
from warehouse.sessions import session_user


@pytest.fixture
def sso_dashboard(two_stores: Settings, tmp_path: Path) -> Iterator[tuple[str, Provider, Settings]]:
    with running_provider() as provider:
        settings = two_stores.model_copy(
            update={
                "sso_issuer": provider.url,
                "sso_client_id": CLIENT_ID,
                "sso_client_secret": CLIENT_SECRET,
                "sso_label": "Example ID",
            }
        )
        with connect(settings.database_dsn) as conn:
            add_user(conn, "ana", "analyst", password=None, email="Ana@example.com")
        port = free_port()
        proc = spawn_cli(["app", "--port", str(port)], cli_env(settings, tmp_path), tmp_path / "app.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: healthy(url), 90, what="the dashboard")
            yield url, provider, settings
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def sign_in_with_sso(
    url: str, browser: requests.Session | None = None, next_path: str = "/review"
) -> requests.Response:
    """Follow the whole round trip: us -> provider -> us, as a browser (with its cookies) would."""
    browser = browser or requests.Session()
    return start_sso(url, browser, next_path, allow_redirects=True)


def start_sso(
    url: str,
    browser: requests.Session | None = None,
    next_path: str = "/",
    *,
    allow_redirects: bool = False,
    forwarded_for: str | None = None,
) -> requests.Response:
    """Press "Sign in with ..." on the sign-in page: a POST from that page."""
    browser = browser or requests.Session()
    headers = {"Origin": url} | ({"X-Forwarded-For": forwarded_for} if forwarded_for else {})
    return browser.post(
        f"{url}/signin/sso",
        data={"next": next_path},
        headers=headers,
        timeout=30,
        allow_redirects=allow_redirects,
    )


def test_single_sign_on_signs_in_an_account_by_its_email(
    sso_dashboard: tuple[str, Provider, Settings],
) -> None:
    url, provider, settings = sso_dashboard
    form = requests.get(f"{url}/signin", timeout=30)
    assert "Sign in with Example ID" in form.text

    browser = requests.Session()
    done = sign_in_with_sso(url, browser)
    assert done.url == f"{url}/review" and done.status_code == 200
    token = done.history[-1].cookies["shrinkwatch_session"]
    with connect(settings.database_dsn) as conn:
        user = session_user(conn, token)
    assert user is not None and user.username == "ana"
    # The same answer from the provider cannot be used twice, even by the same browser.
    callback = done.history[-2].headers["location"]
    again = browser.get(callback, timeout=30, allow_redirects=False)
    assert again.status_code == 400 and "Single sign-on did not complete" in again.text


def test_a_return_link_only_works_in_the_browser_that_left(
    sso_dashboard: tuple[str, Provider, Settings],
) -> None:
    """Someone who stops their own sign-in at the provider's answer cannot hand that link to
    somebody else to sign them in as themselves."""
    url, _provider, _settings = sso_dashboard
    attacker = requests.Session()
    to_provider = start_sso(url, attacker)
    answer = attacker.get(to_provider.headers["location"], timeout=30, allow_redirects=False)
    callback = answer.headers["location"]
    victim = requests.Session()
    landed = victim.get(callback, timeout=30, allow_redirects=False)
    assert landed.status_code == 400 and "shrinkwatch_session" not in landed.cookies
    # (and the attacker's own browser can still finish it: the check is the browser, not the link)
    assert attacker.get(callback, timeout=30, allow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"email": "eve@example.com"}, 403, "No Shrinkwatch account for eve@example.com"),
        ({"email_verified": False}, 401, "has not verified ana@example.com"),
        ({"email_verified": None}, 401, "has not verified ana@example.com"),
        ({"wrong_nonce": True}, 401, "ID token did not check out"),
    ],
)
def test_what_the_provider_says_is_checked(
    sso_dashboard: tuple[str, Provider, Settings], change: dict[str, Any], status: int, says: str
) -> None:
    url, provider, _settings = sso_dashboard
    for key, value in change.items():
        setattr(provider, key, value)
    done = sign_in_with_sso(url)
    assert done.status_code == status
    assert says in done.text
    assert not any("shrinkwatch_session" in r.cookies for r in [*done.history, done])


def test_starting_single_sign_on_is_limited_per_address(
    sso_dashboard: tuple[str, Provider, Settings],
) -> None:
    """Each start stores a pending request and sends the browser to the provider: one address
    may start only so many in the throttling window (a forged X-Forwarded-For changes nothing),
    only this site's sign-in page may start one, and a start that signs someone in is taken back."""
    from warehouse.sign_in_throttle import FREE_FAILURES

    url, _provider, settings = sso_dashboard
    # Another site (a form, an <img> or a link) cannot start one, nor use up the limit.
    assert requests.get(f"{url}/signin/sso", timeout=30, allow_redirects=False).headers["location"] == (
        "/signin?next=/"
    )
    cross = requests.post(
        f"{url}/signin/sso", headers={"Origin": "http://evil.example"}, timeout=30, allow_redirects=False
    )
    assert cross.status_code == 403
    # Signing in for real costs nothing (ana has an account at the provider and here).
    assert sign_in_with_sso(url).url.endswith("/review")
    with connect(settings.database_dsn) as conn:
        counted = conn.execute("SELECT count(*) AS n FROM sign_in_failures WHERE key LIKE 'sso:%'").fetchone()
    assert counted == {"n": 0}

    starts = [
        start_sso(url, forwarded_for=f"203.0.113.{i}").status_code for i in range(FREE_FAILURES["sso"] + 1)
    ]
    assert starts == [303] * FREE_FAILURES["sso"] + [429]
    refused = start_sso(url)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "Too many single sign-on attempts from this address" in refused.text
