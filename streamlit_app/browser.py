"""Driving the dashboard in a real browser (Debian's Chromium through Playwright): shared by
the screenshot script, the page-timing benchmark and the browser tests.

Playwright never downloads a browser here: `chromium()` finds the system's, and says what
to install when there is none.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shrinkwatch.errors import ShrinkwatchError

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


@dataclass(frozen=True)
class DashboardPage:
    """A page as people reach it: its address and the heading that says it is there."""

    path: str
    heading: str
    slug: str  # a file name for its screenshot


PAGES = (
    DashboardPage("/", "Incidents", "incidents"),
    DashboardPage("/review", "", "review"),  # its heading is the incident's type
    DashboardPage("/weights", "Risk weights", "risk-weights"),
    DashboardPage("/analytics", "Analytics", "analytics"),
    DashboardPage("/heatmaps", "Heatmaps", "heatmaps"),
    DashboardPage("/live", "Live", "live"),
    DashboardPage("/cameras", "Cameras and zones", "cameras"),
)
ADMIN_PAGES = (  # admins only (Case files: analysts too)
    DashboardPage("/alerts", "Alert settings", "alert-settings"),
    DashboardPage("/cases", "Case files", "case-files"),
    DashboardPage("/access-requests", "Access requests", "access-requests"),
    DashboardPage("/evidence-log", "Evidence log", "evidence-log"),
)


def chromium() -> str:
    """The system's Chromium (Debian's `chromium` package)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        msg = "needs Debian's chromium (`apt-get install chromium`; `make install` adds it)"
        raise ShrinkwatchError(msg)
    return found


@contextmanager
def browser_page(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A fresh page of a headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    """Sign in through the form, and wait for the first page."""
    from playwright.sync_api import expect

    page.goto(f"{url}/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible(timeout=60_000)


def wait_rendered(page: Any, heading: str, timeout_s: float = 60) -> None:
    """Until the page's heading is shown and Streamlit has finished running its script
    (its status widget gone), and every chart on it is drawn."""
    from playwright.sync_api import expect

    if heading:
        expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=timeout_s * 1000)
    else:
        expect(page.locator("h1").first).to_be_visible(timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = page.get_by_test_id("stStatusWidget").count()
        charts = page.locator(".stPlotlyChart").count()
        drawn = page.locator(".stPlotlyChart .main-svg").count()
        if not running and drawn >= charts:
            return
        page.wait_for_timeout(50)
    msg = f"the page with heading {heading!r} did not finish within {timeout_s:.0f} s"
    raise ShrinkwatchError(msg)


def first_render_s(page: Any, url: str, target: DashboardPage) -> float:
    """Seconds from asking for the page to its first complete render, as the browser sees it."""
    start = time.perf_counter()
    page.goto(f"{url}{target.path}")
    wait_rendered(page, target.heading)
    return time.perf_counter() - start
