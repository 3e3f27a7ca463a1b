"""The Evidence log page (admins only) under AppTest, its CSV export over real HTTP, and the
page in a real browser (Chromium): what was logged is listed, filtered and downloaded."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import streamlit as st
from streamlit.testing.v1 import AppTest

from shrinkwatch.settings import REPO_ROOT, Settings
from streamlit_app.browser import browser_page, wait_rendered
from streamlit_app.browser import sign_in as browser_sign_in
from tests.streamlit_app.conftest import PASSWORD, sign_in, texts
from tests.streamlit_app.test_incidents_page import recent, write
from tests.streamlit_app.test_signin_server import running_dashboard
from tests.support import settings_file
from warehouse import evidence_log
from warehouse.db import connect

Open = Callable[..., AppTest]
PAGE = "compliance/evidence_log.py"


@pytest.fixture
def log(two_stores: Settings) -> Settings:
    """An incident in each store, their accesses logged, and a legal hold placed and released."""
    write(two_stores, recent(1, store_id="store-001", camera_id="cam-1"))
    write(two_stores, recent(2, store_id="store-002", camera_id="cam-2"))
    with connect(two_stores.database_dsn) as conn:
        evidence_log.record(
            conn,
            username="ana",
            action="view",
            incident_id="inc-001",
            client="10.0.0.7",
            detail={"file": "clip"},
        )
        evidence_log.reveal(
            conn, "inc-002", by="bob", reason="=HYPERLINK(evil)", minutes=30, client="10.0.0.8"
        )
        evidence_log.record(conn, username="ana", action="view", camera_id="cam-2", detail={"file": "live"})
        evidence_log.hold(conn, "inc-001", by="bob", reason="police case 77")
        evidence_log.hold(conn, "inc-002", by="bob", reason="insurer")
        evidence_log.release(conn, "inc-002", by="bob", reason="claim dropped")
    return two_stores


def table(at: AppTest, n: int = 0) -> Any:
    return at.dataframe[n].value


def test_only_admins_see_the_evidence_log(
    log: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The page run on its own (navigation lists it for admins only) as an analyst."""
    monkeypatch.setenv("SHRINKWATCH_SETTINGS_FILE", str(settings_file(log, tmp_path / "s.yaml")))
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app" / PAGE), default_timeout=30)
    at.session_state["shrinkwatch_token"] = sign_in(log, "ana", "analyst")
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Evidence log"]
    assert "Only admins see the evidence log." in texts(at)
    assert not at.dataframe and not at.get("link_button")


def test_the_log_lists_filters_and_links_what_was_logged_and_the_holds(
    open_page: Open, log: Settings
) -> None:
    at = open_page(log, PAGE, role="admin", user="root")
    rows = table(at)
    assert list(
        zip(rows["user"], rows["action"], rows["store"], rows["incident"], rows["from"], strict=True)
    ) == [
        ("bob", "legal hold released", "Boston", "inc-002", ""),
        ("bob", "legal hold placed", "Boston", "inc-002", ""),
        ("bob", "legal hold placed", "Leeds", "inc-001", ""),
        ("ana", "viewed", "Boston", "", ""),
        ("bob", "revealed faces", "Boston", "inc-002", "10.0.0.8"),
        ("ana", "viewed", "Leeds", "inc-001", "10.0.0.7"),
    ]
    assert list(rows["review"])[-1] == "/review?id=inc-001"
    assert list(rows["review"])[3] == ""  # the live view has no incident: no link, nor "None"
    assert list(rows["detail"])[-1] == "file clip"

    at.multiselect[1].select("reveal").run()  # Actions
    assert list(table(at)["reason"]) == ["=HYPERLINK(evil)"]  # a cell, shown as typed
    at.multiselect[1].unselect("reveal").run()
    at.multiselect[0].select("ana").run()  # Users
    at.text_input[0].input("inc-001").run()  # Incident id
    assert list(table(at)["action"]) == ["viewed"]
    csv_link = next(b.proto.url for b in at.get("link_button") if b.proto.label == "Download CSV")
    assert csv_link.split("?")[0].endswith("/export/evidence-log.csv")
    assert "users=ana" in csv_link and "incident=inc-001" in csv_link and "since=" in csv_link
    at.text_input[0].input("inc\x00").run()
    assert "incident" in texts(at) and "NUL" in texts(at)

    at.text_input[0].input("").run()
    holds = table(at, 1)
    assert list(zip(holds["incident"], holds["held by"], holds["reason"], strict=True)) == [
        ("inc-001", "bob", "police case 77")
    ]
    at.toggle[0].set_value(True).run()
    holds = table(at, 1)
    assert list(zip(holds["incident"], holds["why released"], strict=True)) == [
        ("inc-002", "claim dropped"),
        ("inc-001", ""),
    ]


@pytest.fixture
def server(log: Settings, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(log, tmp_path) as url:
        yield url


def download(url: str, token: str) -> requests.Response:
    return requests.get(url, cookies={"shrinkwatch_session": token}, allow_redirects=False, timeout=60)


def test_the_csv_holds_what_is_filtered_for_admins_only(server: str, log: Settings) -> None:
    root, ana = sign_in(log, "root", "admin"), sign_in(log, "ana")
    everything = download(f"{server}/export/evidence-log.csv", root)
    assert everything.status_code == 200
    assert everything.headers["content-disposition"].startswith('attachment; filename="evidence-log-')
    rows = list(csv.DictReader(io.StringIO(everything.text)))
    assert [(r["username"], r["action"], r["incident_id"]) for r in rows][-2:] == [
        ("bob", "reveal", "inc-002"),
        ("ana", "view", "inc-001"),
    ]
    reveal = next(r for r in rows if r["action"] == "reveal")
    assert reveal["reason"] == "'=HYPERLINK(evil)"  # never a formula in a spreadsheet
    assert reveal["store_time"].endswith(" EST") and reveal["detail"] == '{"minutes": 30}'

    only = download(f"{server}/export/evidence-log.csv?actions=view&stores=store-002", root)
    assert [(r["username"], r["camera_id"]) for r in csv.DictReader(io.StringIO(only.text))] == [
        ("ana", "cam-2")
    ]
    assert download(f"{server}/export/evidence-log.csv", ana).status_code == 404  # not an admin
    bad = download(f"{server}/export/evidence-log.csv?actions=peek", root)
    assert bad.status_code == 400 and bad.text.startswith("bad export: actions")
    assert download(f"{server}/export/evidence-log.csv?since=yesterday", root).status_code == 400


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install adds it)")
def test_the_evidence_log_in_a_browser_lists_a_row_and_downloads_it(
    server: str, log: Settings, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    sign_in(log, "root", "admin")
    with browser_page() as page:
        browser_sign_in(page, server, "root", PASSWORD)
        page.goto(f"{server}/evidence-log")
        wait_rendered(page, "Evidence log")
        grid = page.get_by_test_id("stDataFrame").first
        expect(grid).to_be_visible(timeout=30_000)
        page.screenshot(path=str(tmp_path / "evidence-log.png"), full_page=True)
        with page.expect_download(timeout=30_000) as started:
            page.get_by_role("link", name="Download CSV").click()
        saved = tmp_path / "log.csv"
        started.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert ("ana", "view", "inc-001", "10.0.0.7") in [
        (r["username"], r["action"], r["incident_id"], r["client"]) for r in rows
    ]
