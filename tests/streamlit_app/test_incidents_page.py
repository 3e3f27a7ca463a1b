"""The incidents page lists what the warehouse holds (Streamlit AppTest, real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from shrinkwatch.settings import REPO_ROOT
from tests.support import settings_file
from tests.warehouse.test_incidents import incident
from warehouse.db import connect
from warehouse.incidents import upsert_incidents

APP = str(REPO_ROOT / "streamlit_app" / "app.py")


@pytest.fixture
def app_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    def run(settings: Any) -> AppTest:
        monkeypatch.setenv("SHRINKWATCH_SETTINGS_FILE", str(settings_file(settings, tmp_path / "s.yaml")))
        st.cache_resource.clear()
        st.cache_data.clear()
        at = AppTest.from_file(APP, default_timeout=30)
        at.run()
        assert not at.exception
        return at

    return run


def test_empty_warehouse_says_so(app_for: Any, settings: Any) -> None:
    at = app_for(settings)
    assert at.title[0].value == "Incidents"
    assert "No incidents yet" in at.info[0].value


def test_lists_incidents(app_for: Any, settings: Any) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(2, "closed")])
    at = app_for(settings)
    assert [m.value for m in at.metric] == ["1", "0", "0"]
    table = at.dataframe[0].value
    assert list(table["incident_id"]) == ["inc-1"]
    assert table["dwell_s"].iloc[0] == 12.0
    assert table["zone_ids"].iloc[0] == "z-razors"
