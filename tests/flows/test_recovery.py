"""Crash and restart, and parallel workers: the same incidents as one uninterrupted run."""

from __future__ import annotations

import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML, T0, frame, walk
from tests.flows.test_incidents_flow import incidents, publish_frames
from tests.support import cli_env, run_cli, spawn_cli, wait_for, wait_until_stable
from warehouse.db import connect
from warehouse.migrate import migrate
from warehouse.site_tables import apply_site_config

SITE = (
    SITE_YAML
    + """  - id: cam-2
    store_id: store-001
    name: Second aisle
    stream_url: /dev/null
    fps: 5
    zones:
      - id: z-razors
        name: Razor blades
        kind: high_value
        polygon: [[0.0, 0.5], [0.4, 0.5], [0.4, 1.0], [0.0, 1.0]]
"""
)


def scenario() -> tuple[list[Any], list[Any]]:
    """Two cameras, several people; one loiterer's visit spans the two halves."""
    frames = []
    for camera, offset in (("cam-1", 0.0), ("cam-2", 0.1)):
        t0 = T0.replace(microsecond=int(offset * 1e6))
        people = [
            walk(camera, 1, [(0, (0.2, 0.8)), (20, (0.2, 0.8)), (22, (0.9, 0.3))], t0=t0),  # spans the crash
            walk(camera, 2, [(3, (0.3, 0.9)), (3.2, (0.3, 0.9)), (9, (0.3, 0.9)), (10, (0.95, 0.6))], t0=t0),
            walk(camera, 3, [(0, (0.6, 0.2)), (30, (0.6, 0.2))], t0=t0),  # never in a zone
        ]
        length = max(len(p) for p in people) + 15
        for i in range(length):
            objects = [o for p in people if i < len(p) for o in p[i].objects if p[i].objects]
            frames.append(frame(camera, i, i * 0.2, objects, t0=t0))
    frames.sort(key=lambda f: f.ts)
    half = len(frames) // 2
    return frames[:half], frames[half:]


def final_rows(settings: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (
            r["incident_id"],
            r["version"],
            r["status"],
            r["incident_type"],
            r["track_id"],
            r["camera_id"],
            r["started_at"],
            r["ended_at"],
            tuple(r["zone_ids"]),
            str(r["signals"]),
            r["risk_score"],
        )
        for r in incidents(settings)
    )


def prepared(make_settings: Any) -> Any:
    settings = make_settings(
        loiter_threshold_s=4.0, track_timeout_s=1.0, zone_exit_grace_s=0.5, incident_update_s=2.0
    )
    with connect(settings.database_dsn) as conn:
        migrate(conn, progress=lambda _m: None)
        apply_site_config(conn, parse_site_config(SITE))
    return settings


def run_through(settings: Any, tmp_path: Path, name: str, *extra: str) -> list[tuple[Any, ...]]:
    first, second = scenario()
    publish_frames(settings, first + second)
    flow = spawn_cli(
        ["flows", "run", "incidents", *extra], cli_env(settings, tmp_path), tmp_path / f"{name}.log"
    )
    try:
        rows = wait_until_stable(lambda: final_rows(settings), quiet_s=4, timeout_s=120)
    finally:
        flow.send_signal(signal.SIGTERM)
        flow.wait(timeout=30)
    return rows


def test_kill_9_and_restart_gives_the_uninterrupted_result(make_settings: Any, tmp_path: Path) -> None:
    reference = run_through(prepared(make_settings), tmp_path, "reference")
    assert len(reference) >= 4 and all(r[2] == "closed" for r in reference)
    first, _ = scenario()
    assert any(r[4] == 1 and r[6] < first[-1].ts < r[7] for r in reference)  # a visit spans the crash

    settings = prepared(make_settings)
    env = cli_env(settings, tmp_path)
    first, second = scenario()
    publish_frames(settings, first)
    flow = spawn_cli(["flows", "run", "incidents", "--snapshot-s", "0.5"], env, tmp_path / "crash1.log")
    wait_for(lambda: incidents(settings), 60, what="incidents before the crash")
    time.sleep(1.5)  # a snapshot or two
    flow.send_signal(signal.SIGKILL)
    flow.wait(timeout=10)
    publish_frames(settings, second)
    flow = spawn_cli(["flows", "run", "incidents", "--snapshot-s", "0.5"], env, tmp_path / "crash2.log")
    try:
        # The restarted flow reaches the uninterrupted run's rows (on a loaded machine it may take
        # long even to start: rows still as the crash left them are not an answer), and then
        # nothing more changes: no incident is lost, none is written twice.
        try:
            wait_for(lambda: final_rows(settings) == reference, 240, what="the uninterrupted run's rows")
        except pytest.fail.Exception:
            assert final_rows(settings) == reference  # shows what differs
        after = wait_until_stable(lambda: final_rows(settings), quiet_s=4, timeout_s=120)
    finally:
        flow.send_signal(signal.SIGTERM)
        flow.wait(timeout=30)
    assert after == reference


def test_a_recovery_store_of_another_topic_is_refused_by_name(make_settings: Any, tmp_path: Path) -> None:
    settings = prepared(make_settings)
    assert run_through(settings, tmp_path, "first")
    moved = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}moved."})
    store = settings.home / "recovery" / "incidents"
    before = {part.name: part.read_bytes() for part in store.glob("*.sqlite3")}
    refused = run_cli(["flows", "run", "incidents"], env=cli_env(moved, tmp_path), timeout=180)
    assert refused.returncode == 2, refused.stderr
    assert (
        f"the recovery store {store} was written reading {settings.topic('detections')}, "
        f"not {moved.topic('detections')} (was topic_prefix changed?)"
    ) in refused.stderr
    assert "Traceback" not in refused.stderr and "panicked" not in refused.stderr
    assert {part.name: part.read_bytes() for part in store.glob("*.sqlite3")} == before  # left as it was


def test_two_workers_give_the_same_incidents(make_settings: Any, tmp_path: Path) -> None:
    one = run_through(prepared(make_settings), tmp_path, "one")
    two = run_through(prepared(make_settings), tmp_path, "two", "--workers", "2")
    assert one == two and len(one) >= 4


def test_two_processes_give_the_same_incidents(make_settings: Any, tmp_path: Path) -> None:
    one = run_through(prepared(make_settings), tmp_path, "one")
    two = run_through(prepared(make_settings), tmp_path, "procs", "--processes", "2", "--workers", "2")
    assert one == two and len(one) >= 4
    log = (tmp_path / "procs.log").read_text()
    assert "2 processes x 2 worker(s)" in log and "[process 1]" in log


def test_a_second_run_on_the_same_recovery_store_is_refused(make_settings: Any, tmp_path: Path) -> None:
    settings = prepared(make_settings)
    env = cli_env(settings, tmp_path)
    first = spawn_cli(["flows", "run", "incidents"], env, tmp_path / "first.log")
    try:
        wait_for(
            lambda: "running dataflow" in (tmp_path / "first.log").read_text(), 120, what="the first run"
        )
        second = run_cli(["flows", "run", "incidents"], env=env, timeout=120)
        assert second.returncode == 2, second.stderr
        assert "dataflow 'incidents' is already running with the recovery store" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0


@pytest.mark.parametrize(
    ("flow", "old", "new"),
    [
        ("incidents", "read", "detections.read"),  # the input became the `detections` operator
        ("occupancy", "read", "detections.read"),
        ("health", "read", "camera_health.read"),  # ... and `read_topic` for the health flow
        ("people_counter", "read", "read"),  # a data team's flow keeps its steps' names
    ],
)
def test_offsets_recovered_under_an_earlier_step_name_carry_over(
    flow: str, old: str, new: str, tmp_path: Path
) -> None:
    from bytewax.recovery import init_db_dir

    from flows.run import carry_renamed_steps

    init_db_dir(tmp_path, 2)
    part = sorted(tmp_path.glob("*.sqlite3"))[0]
    with closing(sqlite3.connect(part)) as db, db:
        db.execute(
            "INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)",
            (f"{flow}.{old}", "0-sw.topic", 7, b"offset"),
        )
    assert carry_renamed_steps(tmp_path, flow) == (old != new)
    assert carry_renamed_steps(tmp_path, flow) == 0  # once
    with closing(sqlite3.connect(part)) as db:
        rows = db.execute("SELECT step_id, state_key, snap_epoch, ser_change FROM snaps").fetchall()
    assert rows == [(f"{flow}.{new}", "0-sw.topic", 7, b"offset")]
