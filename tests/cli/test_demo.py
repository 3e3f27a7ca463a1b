"""`shrinkwatch demo` end to end: a live camera, the model, the flow and the dashboard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shrinkwatch.net import free_port, port_open
from tests.support import cli_env, needs_footage, run_cli, stored_incidents
from warehouse.accounts import authenticate
from warehouse.db import connect
from warehouse.seed import seeded_stores


@pytest.mark.slow
@needs_footage
def test_demo_reaches_an_incident_and_stops_everything(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(camera_sim_port=free_port(), dashboard_port=free_port(), api_port=free_port())
    result = run_cli(["demo", "--until-incidents", "1"], env=cli_env(settings, tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    assert "** first incident after" in out
    assert f"dashboard: http://127.0.0.1:{settings.dashboard_port}" in out
    assert f"API: http://127.0.0.1:{settings.api_port}/docs   token swt_" in out
    # The services of `shrinkwatch run --role all`, supervised, stopped in reverse order.
    stopped = re.findall(r"^  (\S+): stopped$", out, flags=re.MULTILINE)
    assert stopped == [
        "cameras",
        "api",
        "dashboard",
        "alerts",
        "privacy",
        "rollups",
        "calibration",
        "health-flow",
        "occupancy-flow",
        "incidents-flow",
        "camera-sim",
    ]
    assert " died (" not in out  # nothing needed a restart
    assert "== seeding 14 days of synthetic history" in out
    assert "stopping Kafka" not in out  # it did not start the session's services, so it leaves them
    password = re.search(r"sign in as demo / (\S+)", out)
    assert password, out[-2000:]
    with connect(settings.database_dsn) as conn:
        assert authenticate(conn, "demo", password[1], client="test").role == "admin"
        rows = stored_incidents(conn, store_id="demo-store")
        assert seeded_stores(conn) == 2  # history for the analytics, beside the live store
    assert rows and {r["camera_id"] for r in rows} == {"cam-walkway"}
    assert not port_open(settings.camera_sim_port) and not port_open(settings.dashboard_port)


def test_demo_names_the_setting_when_weights_are_missing(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(model=str(tmp_path / "missing.pt"))
    result = run_cli(["demo"], env=cli_env(settings, tmp_path), timeout=60)
    assert result.returncode == 2
    assert "SHRINKWATCH_MODEL" in result.stderr and "Traceback" not in result.stderr
