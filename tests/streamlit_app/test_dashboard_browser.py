"""The dashboard in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import incident
from tests.support import cli_env, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.incidents import upsert_incidents

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install adds it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def dashboard(settings: Any, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    port = free_port()
    proc = spawn_cli(["app", "--port", str(port)], cli_env(settings, tmp_path), tmp_path / "app.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 60, what="the dashboard")
        yield url, settings
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def test_incidents_appear_live(dashboard: tuple[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, settings = dashboard
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            expect(page.get_by_role("heading", name="Incidents")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("No incidents yet")).to_be_visible(timeout=30_000)

            with connect(settings.database_dsn) as conn:
                upsert_incidents(conn, [incident(1)])
            # The live panel refreshes itself: no reload.
            metric = page.get_by_test_id("stMetric").filter(has_text="Open now")
            expect(metric).to_contain_text("1", timeout=30_000)
            expect(page.get_by_test_id("stDataFrame")).to_be_visible()
            page.screenshot(path=str(tmp_path / "dashboard.png"))
        finally:
            browser.close()
