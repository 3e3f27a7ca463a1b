"""Footfall and occupancy per camera zone and minute: values, idempotence, late frames."""

from __future__ import annotations

import pickle
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import run_main

from flows.behaviour.frames import Frame
from flows.behaviour.zones import ZoneArea, ZoneIndex
from flows.occupancy import CameraMinutes, build_flow, cell_of, close, observe
from shrinkwatch.contracts import encode
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML, T0, frame, person
from tests.support import cli_env, produce, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.occupancy import HeatRow, LateFrame
from warehouse.site_tables import apply_site_config

SHELF = ZoneArea("z-razors", "high_value", ((0.0, 0.5), (0.4, 0.5), (0.4, 1.0), (0.0, 1.0)))


def scene(seconds: float, people: list[tuple[int, float]], frame_id: int = 0) -> Any:
    """A frame at T0 + seconds with people standing at x (feet at y = 0.8)."""
    return frame("cam-1", frame_id, seconds, [person(t, (x, 0.8)) for t, x in people])


def test_minutes_close_by_frame_time_and_late_frames_are_flagged() -> None:
    state = CameraMinutes()
    out: list[Any] = []
    # Minute 10:00: track 1 at the shelf throughout, track 2 passes by outside it.
    for i in range(300):  # 60 s at 5 fps
        people = [(1, 0.2)] + ([(2, 0.7)] if i < 50 else [])
        out += observe(state, Frame.from_detection(scene(i / 5, people, i)), ZoneIndex([SHELF]), 10_000_000)
    assert out == []  # 10:00 stays open until a frame 10 s past its end
    for i in range(60):  # 10:01:00 .. 10:01:11.8, track 3 at the shelf too
        out += observe(
            state,
            Frame.from_detection(scene(60 + i / 5, [(1, 0.2), (3, 0.3)], 300 + i)),
            ZoneIndex([SHELF]),
            10_000_000,
        )
    rows = {r.zone_id: r for r in out}
    assert set(rows) == {"*", "z-razors"}
    whole, shelf = rows["*"], rows["z-razors"]
    assert whole.minute == T0 and whole.frames == 300 and whole.visitors == 2 and whole.people_peak == 2
    assert whole.people_avg == round((300 + 50) / 300, 3)
    assert shelf.visitors == 1 and shelf.people_avg == 1.0 and shelf.people_peak == 1
    # A frame for 10:00 now is late; one for the open minute is not.
    late = observe(state, Frame.from_detection(scene(30, [(1, 0.2)], 9999)), ZoneIndex([SHELF]), 10_000_000)
    assert late == [LateFrame("cam-1", T0 + timedelta(seconds=30), 9999, T0)]
    assert observe(state, Frame.from_detection(scene(65, [], 9998)), ZoneIndex([SHELF]), 10_000_000) == []


def test_heatmap_hours_count_where_people_stand_and_dwell() -> None:
    state = CameraMinutes()
    out: list[Any] = []
    shelf = ZoneIndex([SHELF])
    # One frame a second for an hour: track 1 stands at x = 0.2, track 2 keeps walking
    # between x = 0.3, 0.5 and 0.7 (1 to 2 body heights a second).
    for i in range(3600):
        out += observe(
            state, Frame.from_detection(scene(i, [(1, 0.2), (2, 0.3 + 0.2 * (i % 3))], i)), shelf, 10_000_000
        )
    assert not [r for r in out if isinstance(r, HeatRow)]  # 10:00 is open until 11:00:10
    out += observe(state, Frame.from_detection(scene(3610, [], 3610)), shelf, 10_000_000)
    heat = [r for r in out if isinstance(r, HeatRow)]
    assert len(heat) == 1
    row = heat[0]
    assert (row.camera_id, row.hour, row.grid_w, row.grid_h, row.frames) == ("cam-1", T0, 64, 36, 3600)
    spent = dict(zip(row.cells, row.person_s, strict=True))
    still = dict(zip(row.cells, row.dwell_s, strict=True))
    standing = cell_of(0.2, 0.8)
    walking = [cell_of(x, 0.8) for x in (0.3, 0.5, 0.7)]
    assert sorted(row.cells) == row.cells == sorted([standing, *walking])
    assert spent[standing] == 3599.0 and still[standing] == 3599.0  # every second but the first
    assert sum(spent[c] for c in walking) == 3599.0 and [still[c] for c in walking] == [0.0, 0.0, 0.0]
    # The next hour closes with its minutes when the camera goes quiet.
    assert [r.hour for r in close(state, "cam-1", 2**62) if isinstance(r, HeatRow)] == [
        T0 + timedelta(hours=1)
    ]


def test_an_hour_written_when_the_camera_went_quiet_is_completed_later() -> None:
    state = CameraMinutes()
    shelf = ZoneIndex([SHELF])
    for i in range(0, 1200, 2):  # 10:00 to 10:20, a frame every 2 s
        observe(state, Frame.from_detection(scene(i, [(1, 0.2)], i)), shelf, 10_000_000)
    quiet = [r for r in close(state, "cam-1", 2**62, quiet=True) if isinstance(r, HeatRow)]
    assert [(r.hour, r.frames, sum(r.person_s)) for r in quiet] == [(T0, 600, 599 * 2.0)]
    assert close(state, "cam-1", 2**62, quiet=True) == []  # nothing new: nothing written again
    out: list[Any] = []
    for i in range(1500, 3610, 2):  # 10:25 to 11:00:08: the same hour goes on
        out += observe(state, Frame.from_detection(scene(i, [(1, 0.2)], i)), shelf, 10_000_000)
    out += observe(state, Frame.from_detection(scene(3612, [], 3612)), shelf, 10_000_000)  # 11:00:12
    final = [r for r in out if isinstance(r, HeatRow)]
    assert [(r.hour, r.frames) for r in final] == [(T0, 600 + 1050)]  # the whole hour, both parts
    # The 5-minute gap itself counts 5 s at most (MAX_STEP_US): a camera that stops is not watching.
    assert sum(final[0].person_s) == pytest.approx(599 * 2.0 + 5.0 + 1049 * 2.0)


def test_snapshots_from_before_the_heatmap_resume() -> None:
    old = CameraMinutes.__new__(CameraMinutes)
    old.__dict__.update({"open": {}, "closed_before_us": 5, "max_us": 7})
    state = pickle.loads(pickle.dumps(old))
    assert (state.heat, state.last_frame_us, state.last_seen, state.max_us) == ({}, None, {}, 7)
    observe(state, Frame.from_detection(scene(0, [(1, 0.2)], 0)), ZoneIndex([SHELF]), 10_000_000)
    assert len(state.heat) == 1


def rows(settings: Settings) -> list[dict[str, Any]]:
    with connect(settings.database_dsn) as conn:
        return conn.execute(
            "SELECT camera_id, zone_id, minute, frames, visitors, people_avg, people_peak, late_frames "
            "FROM occupancy_minutes ORDER BY minute, zone_id"
        ).fetchall()


def heat_rows(settings: Settings) -> list[dict[str, Any]]:
    with connect(settings.database_dsn) as conn:
        return conn.execute(
            "SELECT camera_id, hour, frames, cells, person_s, dwell_s FROM heatmap_hours ORDER BY hour"
        ).fetchall()


def test_flow_writes_minutes_idempotently_and_counts_late_frames(settings: Settings, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE_YAML))
    frames = [scene(i / 5, [(1, 0.2), (2, 0.9)] if i % 2 else [(1, 0.2)], i) for i in range(5 * 150)]
    frames.insert(700, scene(10, [(1, 0.2)], 10_000))  # at 2:20, a frame of 10:00:10 arrives: late
    produce(settings, settings.topic("detections"), [(f.camera_id.encode(), encode(f)) for f in frames])

    run_main(build_flow(settings, tail=False))
    first = rows(settings)
    minutes = sorted({r["minute"] for r in first})
    assert minutes == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]  # the last closed at EOF
    by_key = {(r["zone_id"], r["minute"]): r for r in first}
    assert by_key[("z-razors", T0)]["visitors"] == 1 and by_key[("*", T0)]["visitors"] == 2
    assert by_key[("*", T0)]["people_peak"] == 2 and by_key[("*", T0)]["people_avg"] == 1.5
    assert by_key[("z-exit", T0)]["visitors"] == 1
    assert [r["late_frames"] for r in first if r["minute"] == T0] == [1, 1, 1]
    assert all(r["late_frames"] == 0 for r in first if r["minute"] != T0)

    heat = heat_rows(settings)
    assert [(h["hour"], h["frames"]) for h in heat] == [(T0, 750)]  # the late frame is not in it
    # 0.2 s a frame after the first: track 1 in all 750 frames, track 2 in the 375 odd ones.
    assert sum(heat[0]["person_s"]) == pytest.approx(749 * 0.2 + 375 * 0.2, abs=0.01)

    # A replay (at-least-once output) writes the same rows again, and the late frame once.
    run_main(build_flow(settings, tail=False))
    assert rows(settings) == first
    assert heat_rows(settings) == heat
    with connect(settings.database_dsn) as conn:
        late = conn.execute("SELECT frame_id, minute FROM occupancy_late").fetchall()
    assert late == [{"frame_id": 10_000, "minute": T0}]


@pytest.mark.parametrize("name", ["occupancy", "incidents"])
def test_ctrl_c_stops_a_flow_with_one_line(name: str, settings: Settings, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE_YAML))
    log = tmp_path / f"{name}.log"
    flow = spawn_cli(["flows", "run", name], cli_env(settings, tmp_path), log)
    try:
        wait_for(lambda: "running dataflow" in log.read_text(), 120, what="the flow to start")
        produce(settings, settings.topic("detections"), [(b"cam-1", encode(scene(0, [(1, 0.2)])))])
        wait_for(lambda: "frames 1 " in log.read_text(), 120, what="the flow to read a frame")
        flow.send_signal(signal.SIGINT)
        assert flow.wait(timeout=60) == 0
    finally:
        if flow.poll() is None:
            flow.kill()
    text = log.read_text()
    assert f"dataflow {name!r} stopped" in text
    assert "panicked" not in text and "Traceback" not in text and "backtrace" not in text
