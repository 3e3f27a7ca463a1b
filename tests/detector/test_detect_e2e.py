"""End to end on real footage: vtest.avi -> YOLOv8 + ByteTrack -> Kafka -> flow -> PostgreSQL."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest

from flows.behaviour.zones import ZoneArea
from shrinkwatch.contracts import Detection, decode, foot, snapshot_name
from shrinkwatch.site_file import parse_site_config
from tests.support import (
    VTEST,
    cli_env,
    consume,
    needs_footage,
    run_cli,
    spawn_cli,
    stored_incidents,
    wait_until_stable,
)
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SHELF = [(0.30, 0.30), (0.66, 0.30), (0.66, 0.56), (0.30, 0.56)]
THRESHOLD_S = 4.0
VIDEO_S = 79.5


def incidents(settings: Any) -> list[dict[str, Any]]:
    with connect(settings.database_dsn) as conn:
        return stored_incidents(conn)


def site() -> str:
    return f"""
stores: [{{id: demo-store, name: Demo, timezone: Europe/London}}]
cameras:
  - id: cam-walkway
    store_id: demo-store
    name: Walkway
    stream_url: {VTEST}
    fps: 5
    zones:
      - {{id: z-electronics, name: Electronics, kind: high_value, polygon: {[list(p) for p in SHELF]}}}
"""


@pytest.mark.slow
@needs_footage
def test_vtest_produces_incidents_that_agree_with_the_footage(settings: Any, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site()))
    settings = settings.model_copy(update={"loiter_threshold_s": THRESHOLD_S})
    env = cli_env(settings, tmp_path)
    flow = spawn_cli(["flows", "run", "incidents"], env, tmp_path / "flow.log")
    try:
        result = run_cli(["detect", "--pace", "fast"], env=env, timeout=900)
        assert result.returncode == 0, result.stderr
        frames = [
            decode(m.value(), Detection)
            for m in consume(settings, settings.topic("detections"), until=398, timeout_s=60)
        ]
        assert len(frames) == 398  # 795 frames at 10 fps, analysed at 5 fps
        start = frames[0].ts
        assert (frames[-1].ts - start).total_seconds() == pytest.approx(79.4, abs=0.01)
        assert sum(len(f.objects) for f in frames) / len(frames) > 3  # about 6 people per frame

        # The flow has caught up when its output stops changing.
        rows = wait_until_stable(lambda: incidents(settings), quiet_s=6, timeout_s=180)
    finally:
        flow.send_signal(signal.SIGTERM)
        flow.wait(timeout=30)

    assert len(rows) >= 3, rows
    # Evidence: each incident names its snapshot from its first version; the detector saved an
    # annotated snapshot and a clip under that name (those it saw before it stopped).
    assert [r["snapshot"] for r in rows] == [snapshot_name(r["camera_id"], r["incident_id"]) for r in rows]
    with_evidence = [r for r in rows if (settings.evidence_dir() / r["snapshot"]).is_file()]
    assert with_evidence, "no incident got its evidence"
    for row in with_evidence:
        snapshot = settings.evidence_dir() / row["snapshot"]
        image = cv2.imread(str(snapshot))
        assert image is not None and image.shape == (576, 768, 3)
        clip = cv2.VideoCapture(str(snapshot.with_suffix(".mp4")))
        assert clip.isOpened() and clip.get(cv2.CAP_PROP_FRAME_COUNT) >= 10
        clip.release()
    assert "evidence saved for" in result.stderr
    assert (settings.live_dir() / "cam-walkway.jpg").is_file()
    zone = ZoneArea("z-electronics", "high_value", tuple(SHELF))
    by_ts = {f.ts: f for f in frames}
    for row in rows:
        assert row["camera_id"] == "cam-walkway" and row["store_id"] == "demo-store"
        assert row["zone_ids"] == ["z-electronics"] and row["incident_type"] == "loitering_high_value"
        assert start <= row["started_at"] < row["updated_at"] <= start + timedelta(seconds=VIDEO_S)
        dwell = next(s["value"] for s in row["signals"] if s["name"] == "dwell_high_value_s")
        assert THRESHOLD_S <= dwell <= VIDEO_S
        end = row["ended_at"] or row["updated_at"]
        assert dwell <= (end - row["started_at"]).total_seconds() + 0.01
        # The footage says so: the track starts at started_at ...
        assert any(o.track_id == row["track_id"] for o in by_ts[row["started_at"]].objects)
        # ... and stands in the zone for at least the threshold's worth of frames.
        inside = [
            f
            for f in frames
            if row["started_at"] <= f.ts <= end
            and any(o.track_id == row["track_id"] and zone.contains(*foot(o.box)) for o in f.objects)
        ]
        assert len(inside) >= THRESHOLD_S * 5 * 0.6
