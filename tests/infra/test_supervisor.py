"""The supervisor behind `shrinkwatch run`: restarts what dies (and says why), waits for its
dependencies, keeps bounded logs, stops everything, and refuses a second supervisor."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.process import pid_alive
from infra.supervisor import (
    CENTRAL,
    STORE,
    RotatingLog,
    Service,
    Supervisor,
    exit_reason,
    read_status,
    services_of,
)
from shrinkwatch.errors import ShrinkwatchError

# The children are small Python programs standing in for `python -m cli <args>`.
PYTHON = (sys.executable, "-c")
FAILS = Service(
    "fails", ("import sys; print('starting'); print('error: the widget is broken'); sys.exit(3)",)
)
LIVES = Service("lives", ("import time; print('up', flush=True); time.sleep(600)",))


def make(tmp_path: Path, services: list[Service], said: list[str], **kw: object) -> Supervisor:
    return Supervisor(
        services,
        home=tmp_path / "home",
        logs=tmp_path / "home" / "logs",
        env=lambda: {"PATH": "/usr/bin:/bin"},
        role="test",
        say=said.append,
        command=PYTHON,
        **kw,  # type: ignore[arg-type]
    )


def poll_until(sup: Supervisor, done: Callable[[], bool], limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not done():
        assert time.monotonic() < deadline, "condition never held"
        sup.poll()
        time.sleep(0.05)


def test_a_dying_service_is_restarted_with_backoff_and_its_error_kept(tmp_path: Path) -> None:
    said: list[str] = []
    sup = make(tmp_path, [FAILS, LIVES], said)
    sup.start()
    try:
        fails, lives = sup.services
        poll_until(sup, lambda: fails.restarts >= 3)
        assert lives.restarts == 0
        assert lives.state == "up"
        assert fails.last_exit is not None
        assert fails.last_exit.startswith("exit code 3")
        assert fails.last_error == "error: the widget is broken"
        deaths = [line for line in said if line.startswith("fails died")]
        assert deaths[:3] == [
            "fails died (exit code 3): error: the widget is broken; restarting in 1 s",
            "fails died (exit code 3): error: the widget is broken; restarting in 2 s",
            "fails died (exit code 3): error: the widget is broken; restarting in 4 s",
        ]
        sup.write_status()
        state = read_status(tmp_path / "home")
        assert state is not None
        by_name = {s["name"]: s for s in state["services"]}
        assert by_name["fails"]["restarts"] >= 3
        assert by_name["fails"]["last_error"] == "error: the widget is broken"
        assert by_name["lives"]["state"] == "up"
        assert by_name["lives"]["pid"] == lives.proc.pid  # type: ignore[union-attr]
        # Its output went to its log, each run after a banner.
        log = (tmp_path / "home" / "logs" / "fails.log").read_text()
        assert log.count("error: the widget is broken") >= 3
        assert log.count("(started by the supervisor)") >= 3
    finally:
        sup.stop()


def test_stop_ends_every_service_and_says_so(tmp_path: Path) -> None:
    said: list[str] = []
    sup = make(tmp_path, [LIVES, Service("lives-too", LIVES.args)], said)
    sup.start()
    pids = [run.proc.pid for run in sup.services if run.proc is not None]
    assert len(pids) == 2
    sup.stop()
    assert not any(pid_alive(pid) for pid in pids)
    assert said[-2:] == ["lives-too: stopped", "lives: stopped"]  # reverse start order
    state = read_status(tmp_path / "home")
    assert state is not None
    assert [s["state"] for s in state["services"]] == ["stopped", "stopped"]
    assert state["stopping"] is True


def test_a_service_that_ignores_sigterm_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.supervisor

    monkeypatch.setattr(infra.supervisor, "STOP_TIMEOUT_S", 1.0)
    stubborn = Service(
        "stubborn",
        (
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
            "time.sleep(600)",
        ),
    )
    said: list[str] = []
    sup = make(tmp_path, [stubborn], said)
    sup.start()
    run = sup.services[0]
    poll_until(sup, lambda: "up" in run.output)  # its SIGTERM handler is in place
    pid = run.proc.pid  # type: ignore[union-attr]
    sup.stop()
    assert not pid_alive(pid)
    assert said[-1] == "stubborn: did not stop within 1 s; killed"


def test_nothing_starts_while_a_dependency_is_down_and_it_is_said_once(tmp_path: Path) -> None:
    said: list[str] = []
    down = {"now": True}
    sup = make(
        tmp_path, [LIVES], said, ready=lambda: "PostgreSQL: connection refused" if down["now"] else None
    )
    sup.start()
    try:
        for _ in range(5):
            sup.poll()
        run = sup.services[0]
        assert run.proc is None
        assert run.state == "waiting for its dependencies"
        assert said == [
            "the services' dependencies is not reachable (PostgreSQL: connection refused); "
            "retrying until it is back"
        ]
        down["now"] = False
        sup.poll()
        assert run.proc is not None
        assert run.state == "up"
        assert said[1].startswith("the services' dependencies is back after")
        assert said[2] == f"lives: started (pid {run.proc.pid})"
    finally:
        sup.stop()


def test_one_supervisor_per_home(tmp_path: Path) -> None:
    first = make(tmp_path, [], [])
    first.start()
    try:
        with pytest.raises(ShrinkwatchError, match="still holds"):
            make(tmp_path, [], []).start(wait_s=0)
    finally:
        first.stop()
    second = make(tmp_path, [], [])  # the lock went with the first
    second.start()
    second.stop()


def test_logs_rotate_and_keep_three(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "svc.log", max_bytes=100, keep=3)
    for n in range(50):
        log.write(f"line {n:03d} {'x' * 20}\n".encode())
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["svc.log", "svc.log.1", "svc.log.2", "svc.log.3"]
    assert all(p.stat().st_size <= 100 + 30 for p in tmp_path.iterdir())
    assert "line 049" in (tmp_path / "svc.log").read_text() + (tmp_path / "svc.log.1").read_text()


def test_roles_and_exit_reasons() -> None:
    assert services_of("store") == STORE
    assert services_of("central") == CENTRAL
    assert services_of("all") == CENTRAL + STORE
    assert [s.name for s in services_of("all")][-1] == "cameras"  # started last, stopped first
    with pytest.raises(ShrinkwatchError, match="unknown role 'shop'"):
        services_of("shop")
    assert exit_reason(-9) == "killed by SIGKILL"
    assert exit_reason(1) == "exit code 1"
    assert json.dumps(exit_reason(-15)) == '"killed by SIGTERM"'


def test_a_service_stopped_for_good_is_not_restarted(tmp_path: Path) -> None:
    said: list[str] = []
    sup = make(tmp_path, [LIVES, Service("lives-too", LIVES.args)], said)
    sup.start()
    try:
        lives = sup.services[0]
        pid = lives.proc.pid  # type: ignore[union-attr]
        sup.stop_service("lives")
        for _ in range(5):
            sup.poll()
        assert not pid_alive(pid)
        assert lives.proc is None
        assert lives.state == "stopped"
        assert lives.restarts == 0
        assert sup.services[1].state == "up"
        assert "lives: stopped" in said
        assert not [line for line in said if "died" in line]
    finally:
        sup.stop()


def test_background_services_run_niced_and_the_others_at_the_supervisors_priority(tmp_path: Path) -> None:
    import os

    said: list[str] = []
    shows = "import os, time; print('nice', os.nice(0), flush=True); time.sleep(600)"
    sup = make(tmp_path, [Service("urgent", (shows,)), Service("later", (shows,), nice=7)], said)
    sup.start()
    try:
        poll_until(sup, lambda: all(any(line.startswith("nice") for line in r.output) for r in sup.services))
        ours = os.nice(0)
        assert [[line for line in r.output if line.startswith("nice")] for r in sup.services] == [
            [f"nice {ours}"],
            [f"nice {min(ours + 7, 19)}"],
        ]
    finally:
        sup.stop()
    # What a store box runs: work that can wait is niced, the cameras, the flows and the alerts not.
    assert {s.name for s in services_of("all") if s.nice} == {
        "calibration",
        "rollups",
        "privacy",
        "dashboard",
        "api",
    }
