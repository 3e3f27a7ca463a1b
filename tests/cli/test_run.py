"""`shrinkwatch run` keeps the centre's services running and `shrinkwatch status` shows them."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from infra.process import pid_alive
from shrinkwatch.net import free_port
from shrinkwatch.settings import Settings
from tests.support import cli_env, run_cli, spawn_cli

CENTRAL = [
    "incidents-flow",
    "occupancy-flow",
    "health-flow",
    "calibration",
    "rollups",
    "privacy",
    "alerts",
    "dashboard",
    "api",
]


def _state(settings: Settings) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((settings.home / "run" / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return state


def _wait(condition: Any, what: str, limit_s: float = 180.0) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.3)
    msg = f"never: {what}"
    raise AssertionError(msg)


def test_run_restarts_a_killed_service_and_stops_all_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"dashboard_port": free_port(), "api_port": free_port()})
    env = cli_env(settings, tmp_path)
    log = tmp_path / "run.log"
    proc = spawn_cli(["run", "--role", "central"], env, log)
    try:

        def all_up() -> dict[str, Any] | None:
            state = _state(settings)
            names = state and [s["name"] for s in state["services"]]
            if names == CENTRAL and all(s["state"] == "up" and s["pid"] for s in state["services"]):  # type: ignore[index]
                return state
            return None

        state = _wait(all_up, "every central service up")
        pids = {s["name"]: s["pid"] for s in state["services"]}
        os.kill(pids["incidents-flow"], signal.SIGKILL)

        def restarted() -> dict[str, Any] | None:
            state = _state(settings)
            flow = state and next(s for s in state["services"] if s["name"] == "incidents-flow")
            return flow if flow and flow["restarts"] == 1 and flow["state"] == "up" and flow["pid"] else None

        flow = _wait(restarted, "the killed flow restarted")
        assert flow["pid"] != pids["incidents-flow"]
        assert flow["last_exit"].startswith("killed by SIGKILL")

        status = run_cli(["status"], env=env, timeout=60)
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].startswith(f"supervisor pid {proc.pid}, role central")
        cells = [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]
        assert cells[0] == ["service", "state", "pid", "up for", "restarts", "lag", "last exit / last error"]
        rows = {row[0]: row for row in cells[1:]}
        assert list(rows) == CENTRAL
        assert rows["incidents-flow"][1:3] == ["up", str(flow["pid"])]
        assert rows["incidents-flow"][4] == "1"  # restarts
        assert rows["incidents-flow"][6].startswith("killed by SIGKILL")
        assert rows["alerts"][5] == "0 msg"  # lag: nothing published, nothing behind
        assert rows["dashboard"][4:6] == ["0", "-"]  # reads no topic
        assert rows["api"][4:6] == ["0", "-"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    out = log.read_text()
    assert code == 0, out[-3000:]
    assert "incidents-flow died (killed by SIGKILL)" in out
    assert out.rstrip().endswith("all services stopped")
    children = [pid for name, pid in pids.items() if name != "incidents-flow"] + [flow["pid"]]
    assert not any(pid_alive(pid) for pid in children)
    after = run_cli(["status"], env=env, timeout=60)
    assert after.stdout.splitlines()[0].startswith("supervisor not running")


def test_status_without_a_supervisor(settings: Settings, tmp_path: Path) -> None:
    result = run_cli(["status"], env=cli_env(settings, tmp_path), timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"no `shrinkwatch run` has run with home {settings.home}"
