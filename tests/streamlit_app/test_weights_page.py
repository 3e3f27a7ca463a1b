"""The risk-weights page shows the weights in force per store (AppTest, real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from flows.calibration import calibrate
from shrinkwatch.contracts import Signal
from shrinkwatch.settings import REPO_ROOT, Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML, incident
from tests.streamlit_app.conftest import sign_in
from tests.support import record_review, settings_file
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.site_tables import apply_site_config

APP = str(REPO_ROOT / "streamlit_app" / "app.py")


def weights_page(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AppTest:
    monkeypatch.setenv("SHRINKWATCH_SETTINGS_FILE", str(settings_file(settings, tmp_path / "s.yaml")))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["shrinkwatch_token"] = sign_in(settings)
    at.run()
    at.switch_page("review/weights.py").run()
    assert not at.exception
    return at


def test_defaults_until_calibrated_then_the_version_in_force(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE_YAML))
    at = weights_page(settings, monkeypatch, tmp_path)
    assert at.title[0].value == "Risk weights"
    assert "default weights are in force (version 0)" in at.info[0].value
    table: Any = at.dataframe[0].value
    assert dict(zip(table["signal"], table["weight"], strict=True))["dwell_high_value_s"] == 0.8

    with connect(settings.database_dsn) as conn:
        signals = [Signal(name="dwell_high_value_s", value=40.0, contribution=0.5)]
        for i in range(5):
            upsert_incidents(conn, [incident(1, incident_id=f"inc-{i}", signals=signals)])
            record_review(conn, f"inc-{i}", confirmed=False)
        conn.commit()
        calibrate(conn, 10, lambda _m: None)
    at = weights_page(settings, monkeypatch, tmp_path)
    assert [m.value for m in at.metric][:2] == ["1", "5"]
    table = at.dataframe[0].value
    row = table[table["signal"] == "dwell_high_value_s"].iloc[0]
    assert row["weight"] == pytest.approx((10 * 0.8) / 15, abs=1e-4)
    assert row["rejected"] == 5 and row["confirmed"] == 0
    assert row["change"] < 0
