"""Dashboard pages under Streamlit's AppTest, signed in as a real account with a real
session in PostgreSQL (the token goes where a browser's cookie would)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from shrinkwatch.settings import REPO_ROOT, Settings
from shrinkwatch.site_file import parse_site_config
from streamlit_app.text import WORD_JOINER
from tests.support import settings_file
from warehouse.accounts import add_user
from warehouse.db import connect
from warehouse.sessions import start_session
from warehouse.site_tables import apply_site_config

APP = str(REPO_ROOT / "streamlit_app" / "app.py")
PASSWORD = "correct-horse-battery"
TWO_STORES = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
cameras:
  - id: cam-1
    store_id: store-001
    name: Aisle
    stream_url: /dev/null
    zones:
      - {id: z-razors, name: Razors, kind: high_value,
         polygon: [[0.0, 0.5], [0.4, 0.5], [0.4, 1.0], [0.0, 1.0]]}
  - {id: cam-2, store_id: store-002, name: Door, stream_url: /dev/null}
"""


def sign_in(
    settings: Settings, username: str = "ana", role: str = "analyst", stores: tuple[str, ...] = ()
) -> str:
    """Create the account if needed and return a new session's token."""
    with connect(settings.database_dsn) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = %s", (username,)).fetchone() is None:
            add_user(conn, username, role, password=PASSWORD, stores=stores)
        return start_session(conn, username, hours=1)


@pytest.fixture
def two_stores(settings: Settings) -> Settings:
    """Settings whose warehouse holds two stores in two time zones, a camera each."""
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(TWO_STORES))
    return settings


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., AppTest]:
    """open_page(settings, page=None, user=..., role=..., stores=..., query={...}) -> AppTest"""

    def run(
        settings: Settings,
        page: str | None = None,
        *,
        user: str = "ana",
        role: str = "analyst",
        stores: tuple[str, ...] = (),
        query: dict[str, str] | None = None,
        token: str | None = None,
    ) -> AppTest:
        monkeypatch.setenv("SHRINKWATCH_SETTINGS_FILE", str(settings_file(settings, tmp_path / "s.yaml")))
        st.cache_resource.clear()
        st.cache_data.clear()
        at = AppTest.from_file(APP, default_timeout=30)
        at.session_state["shrinkwatch_token"] = token or sign_in(settings, user, role, stores)
        at.run()
        if page is not None:
            at.switch_page(page)
            for key, value in (query or {}).items():
                at.query_params[key] = value
            at.run()
        assert not at.exception, at.exception
        return at

    return run


def texts(at: AppTest) -> str:
    """Everything a page wrote, as one string of what a user reads (names and messages are
    escaped Markdown, streamlit_app.text: `shown`)."""
    parts: list[Any] = []
    for kind in ("title", "markdown", "caption", "info", "warning", "error", "success", "subheader"):
        parts += [e.value for e in at.get(kind)]
    return shown("\n".join(str(p) for p in parts))


def shown(markdown: str) -> str:
    """What a reader sees of Markdown written by streamlit_app.text: no backslash escapes,
    no word joiners."""
    return re.sub(r"""\\([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""", r"\1", markdown).replace(WORD_JOINER, "")
