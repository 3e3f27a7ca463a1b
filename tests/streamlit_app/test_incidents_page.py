"""The incidents page lists what the warehouse holds (Streamlit AppTest, real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from shrinkwatch.settings import REPO_ROOT
from tests.factories import incident
from tests.support import settings_file
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


def test_shows_evidence_of_an_incident(app_for: Any, settings: Any) -> None:
    import cv2
    import numpy as np

    reference = "cam-1/inc-1.jpg"
    path = settings.evidence_dir() / reference
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), np.full((48, 64, 3), 120, np.uint8))
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1).model_copy(update={"snapshot": reference})])
    at = app_for(settings)
    assert at.subheader[0].value == "Evidence"
    assert at.selectbox[0].options and "loitering_high_value" in at.selectbox[0].options[0]
    assert len(at.get("image")) == 1


def test_evidence_outside_the_folder_is_refused(app_for: Any, settings: Any) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [incident(1).model_copy(update={"snapshot": "../../etc/passwd"})])
    at = app_for(settings)
    assert "not in the evidence folder" in at.warning[0].value


def test_live_view(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Any) -> None:
    import cv2
    import numpy as np

    settings.live_dir().mkdir(parents=True)
    cv2.imwrite(str(settings.live_dir() / "cam-1.jpg"), np.zeros((48, 64, 3), np.uint8))
    monkeypatch.setenv("SHRINKWATCH_SETTINGS_FILE", str(settings_file(settings, tmp_path / "s.yaml")))
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app" / "monitor" / "live.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Live view"
    assert len(at.get("image")) == 1
