"""The dashboard in a real browser while PostgreSQL is cut off (tests/tcp_proxy.py between
the dashboard and the real server): every page and the sign-in page say "The database is
not reachable", show no traceback and no data, sign no one in, and come back by themselves
once it answers again, without a restart of the app."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shrinkwatch.wording import DATABASE_UNREACHABLE
from streamlit_app.browser import browser_page
from streamlit_app.browser import sign_in as browser_sign_in
from tests.streamlit_app.conftest import PASSWORD, sign_in
from tests.streamlit_app.test_dashboard_browser import CHROMIUM, healthy
from tests.support import cli_env, free_port, spawn_cli, wait_for
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install adds it)")
SAID = DATABASE_UNREACHABLE.split(" — ")[0]  # "The database is not reachable"
LEAKS = ("Traceback", "psycopg", "OperationalError", "DatabaseUnreachable", ".py", "/work", "Leeds", "Boston")


@pytest.fixture
def dashboard(two_stores: Any, tmp_path: Path) -> Iterator[tuple[str, TcpProxy]]:
    """The dashboard, its database reached through a proxy the test can cut."""
    with TcpProxy.before(two_stores.database_dsn) as proxy:
        through = two_stores.model_copy(update={"database_url": proxy.dsn(two_stores.database_dsn)})
        sign_in(two_stores, "ana")
        port = free_port()
        proc = spawn_cli(["app", "--port", str(port)], cli_env(through, tmp_path), tmp_path / "app.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: healthy(url), 90, what="the dashboard")
            yield url, proxy
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def shown(page: Any) -> str:
    text: str = page.locator("body").inner_text()
    for leak in LEAKS:
        assert leak not in text, leak
    return text


def test_an_open_tab_says_so_and_comes_back_by_itself(
    dashboard: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, proxy = dashboard
    with browser_page() as page:
        browser_sign_in(page, url, "ana", PASSWORD)
        proxy.cut()
        page.get_by_role("link", name="Analytics and ROI").click()  # a page run, the database away
        expect(page.get_by_text(SAID)).to_be_visible(timeout=60_000)
        page.screenshot(path=str(tmp_path / "open-tab-database-away.png"))
        shown(page)
        proxy.restore()  # ... and nothing is touched in the browser
        expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_text(SAID)).to_have_count(0)


def test_a_reload_and_the_sign_in_page_say_so_and_sign_no_one_in(
    dashboard: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, proxy = dashboard
    with browser_page() as page:
        browser_sign_in(page, url, "ana", PASSWORD)
        proxy.cut()
        response = page.reload()
        assert response is not None and response.status == 503
        expect(page.get_by_text(SAID)).to_be_visible(timeout=30_000)
        page.screenshot(path=str(tmp_path / "reload-database-away.png"))
        shown(page)
        proxy.restore()  # the page reloads itself
        expect(page.get_by_role("heading", name="Incidents")).to_be_visible(timeout=60_000)

    with browser_page() as page:  # a new browser, signing in while the database is away
        page.goto(f"{url}/signin")
        proxy.cut()
        page.get_by_label("Username").fill("ana")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text(SAID)).to_be_visible(timeout=30_000)
        page.screenshot(path=str(tmp_path / "sign-in-database-away.png"))
        shown(page)
        assert page.context.cookies() == []  # no session was started
        proxy.restore()
        page.goto(url)  # still signed out: the sign-in form
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)


def test_the_sign_in_page_says_so_before_anyone_tries(dashboard: tuple[str, TcpProxy]) -> None:
    import urllib.error
    import urllib.request

    url, proxy = dashboard
    ask = urllib.request.Request(f"{url}/signin", headers={"Accept": "text/html"})
    with urllib.request.urlopen(ask, timeout=30) as page:
        assert page.status == 200
        assert SAID not in page.read().decode()
    proxy.cut()
    try:
        with urllib.request.urlopen(ask, timeout=30):
            pytest.fail("the sign-in form was served while the database was away")
    except urllib.error.HTTPError as away:
        assert away.code == 503
        body = away.read().decode()
        assert SAID in body
        assert 'http-equiv="refresh"' in body
        assert "<form" not in body
    proxy.restore()
    with urllib.request.urlopen(ask, timeout=30) as page:
        assert page.status == 200
        assert "<form" in page.read().decode()
