"""The dashboard in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
import shutil
import signal
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from flows.calibration import calibrate
from streamlit_app.browser import browser_page
from streamlit_app.browser import sign_in as browser_sign_in
from tests.factories import incident
from tests.streamlit_app.conftest import PASSWORD, sign_in
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.accounts import disable_user
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.rollups import run_rollups

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install adds it)")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def dashboard(two_stores: Any, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    port = free_port()
    proc = spawn_cli(["app", "--port", str(port)], cli_env(two_stores, tmp_path), tmp_path / "app.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 90, what="the dashboard")
        yield url, two_stores
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def test_sign_in_review_confirm_and_see_it_counted(dashboard: tuple[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, settings = dashboard
    now = datetime.now(UTC).replace(microsecond=0)
    sign_in(settings, "ana")
    with connect(settings.database_dsn) as conn:
        upsert_incidents(
            conn,
            [
                incident(
                    1, "closed", incident_id="low-1", started_at=now - timedelta(minutes=9), risk_level="low"
                ),
                incident(
                    1,
                    "closed",
                    incident_id="high-1",
                    started_at=now - timedelta(minutes=5),
                    risk_level="high",
                    risk_score=0.86,
                ),
            ],
        )
    settings.live_dir().mkdir(parents=True)
    cv2.imwrite(str(settings.live_dir() / "cam-1.jpg"), np.full((90, 160, 3), 90, np.uint8))
    with browser_page() as page:
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        browser_sign_in(page, url, "ana", PASSWORD)
        # Live: a new high-risk incident appears without a reload, with a toast.
        page.get_by_role("link", name="Live").click()
        expect(page.get_by_role("heading", name="Live")).to_be_visible(timeout=30_000)
        # The camera's frame comes from the server's live route (scope checked when served).
        frame = page.get_by_test_id("stImage").locator("img").first
        expect(frame).to_have_attribute("src", re.compile(r"/camera/cam-1/live\.jpg\?v=\d+$"), timeout=30_000)
        wait_for(lambda: frame.evaluate("img => img.naturalWidth") == 160, 30, what="the live frame drawn")
        with connect(settings.database_dsn) as conn:
            upsert_incidents(
                conn,
                [
                    incident(
                        1,
                        "open",
                        incident_id="high-2",
                        started_at=now - timedelta(minutes=1),
                        risk_level="high",
                        risk_score=0.9,
                        incident_type="exit_without_checkout",
                    )
                ],
            )
        expect(
            page.get_by_test_id("stToast").filter(has_text="High risk: exit without checkout")
        ).to_be_visible(timeout=30_000)
        # Review the high-risk one we choose, by its address, and confirm it with the keyboard.
        page.goto(f"{url}/review?id=high-1")
        expect(page.get_by_text("Awaiting a verdict.")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(tmp_path / "review.png"))
        page.get_by_role("heading", name="Loitering high value").click()  # focus off the note
        page.keyboard.press("y")  # Confirm's shortcut
        wait_for(lambda: verdict(settings, "high-1") == (True, "ana"), 30, what="the verdict in PostgreSQL")
        # ... it moved on to the next awaiting a verdict (the newest: high-2).
        expect(page.get_by_role("heading", name="Exit without checkout")).to_be_visible(timeout=30_000)
        # The calibration counts it: the risk weights page shows one confirmation.
        with connect(settings.database_dsn) as conn:
            calibrate(conn, 10, lambda _m: None)
            conn.commit()
        page.get_by_role("link", name="Risk weights").click()
        expect(page.get_by_text("Verdicts used")).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id("stMetric").filter(has_text="Verdicts used")).to_contain_text("1")
        # ... and Analytics counts it once the rollups refresh (every few minutes; now, here).
        run_rollups(settings.database_dsn)
        page.get_by_role("link", name="Analytics and ROI").click()
        confirmed = page.get_by_test_id("stMetric").filter(has_text="Confirmed")
        expect(confirmed.first).to_contain_text("1", timeout=30_000)
        # The Content-Security-Policy let every page do all of this.
        blocked = [m for m in console if "Content Security Policy" in m]
        assert blocked == [], "\n".join(blocked)
        # Nothing came from Streamlit's media store (closed) or from another site.
        media = [u for u in asked if u.startswith(f"{url}/media/")]
        assert media == [] and [u for u in asked if not u.startswith((url, "data:", "blob:"))] == []


def test_a_store_manager_cannot_open_another_stores_incident(dashboard: tuple[str, Any]) -> None:
    from playwright.sync_api import expect

    url, settings = dashboard
    sign_in(settings, "mo", "store_manager", ("store-001",))
    now = datetime.now(UTC).replace(microsecond=0)
    with connect(settings.database_dsn) as conn:
        upsert_incidents(
            conn,
            [
                incident(
                    1,
                    "closed",
                    incident_id="boston-1",
                    store_id="store-002",
                    camera_id="cam-2",
                    started_at=now - timedelta(minutes=3),
                    risk_level="high",
                )
            ],
        )
    with browser_page() as page:
        browser_sign_in(page, url, "mo", PASSWORD)
        expect(page.get_by_text("No incidents match these filters.")).to_be_visible(timeout=30_000)
        page.goto(f"{url}/review?id=boston-1")
        expect(page.get_by_text("No such incident in your stores.")).to_be_visible(timeout=30_000)
        assert verdict(settings, "boston-1") == (None, None)


def verdict(settings: Any, incident_id: str) -> tuple[Any, Any]:
    with connect(settings.database_dsn) as conn:
        row = conn.execute(
            "SELECT user_confirmed, reviewed_by FROM incidents WHERE incident_id = %s", (incident_id,)
        ).fetchone()
    return (row["user_confirmed"], row["reviewed_by"]) if row else (None, None)


def test_a_failing_page_shows_no_traceback_or_path(dashboard: tuple[str, Any], tmp_path: Path) -> None:
    """A page that fails (here: a table it reads has gone) says so, and shows neither the
    exception, its traceback, nor a path on the server."""
    from playwright.sync_api import expect

    url, settings = dashboard
    sign_in(settings, "ana")
    with browser_page() as page:
        browser_sign_in(page, url, "ana", PASSWORD)
        with connect(settings.database_dsn) as conn:
            conn.execute("ALTER TABLE incidents RENAME TO incidents_gone")
        page.reload()
        error = page.get_by_test_id("stException").or_(page.get_by_test_id("stAlertContainer"))
        expect(error.first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(tmp_path / "failing-page.png"))
        shown = page.locator("body").inner_text()
    assert "error" in shown.lower()
    for leak in ("Traceback", "incidents_gone", "psycopg", "UndefinedTable", ".py", "/work", "site-packages"):
        assert leak not in shown, leak


def test_a_tab_whose_session_ends_elsewhere_goes_to_the_sign_in_form(dashboard: tuple[str, Any]) -> None:
    """An admin disables the account while its page is open: the tab does not stay on the old
    data, reconnecting for ever; it says so and lands on the sign-in form."""
    from playwright.sync_api import expect

    url, settings = dashboard
    sign_in(settings, "mo", "store_manager", ("store-001",))
    with browser_page() as page:
        browser_sign_in(page, url, "mo", PASSWORD)
        with connect(settings.database_dsn) as conn:
            disable_user(conn, "mo")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
        assert page.url == f"{url}/signin?signed_out=1"
        expect(page.get_by_text("You are signed out.")).to_be_visible()
        assert [c for c in page.context.cookies() if c["name"] == "shrinkwatch_session"] == []
