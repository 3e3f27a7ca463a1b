"""The incidents dataflow on the real broker and database: incidents, DLQ, restart."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from shrinkwatch.contracts import DeadLetter, Incident, decode, encode
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML, T0, frame, walk
from tests.support import cli_env, produce, read_all, spawn_cli, stored_incidents, wait_for
from warehouse.db import connect
from warehouse.site_tables import apply_site_config


def incidents(settings: Settings) -> list[dict[str, Any]]:
    with connect(settings.database_dsn) as conn:
        return stored_incidents(conn)


def read_at_least(settings: Settings, topic: str, count: int) -> list[Any] | None:
    """Every message of the topic once it holds at least `count` (else None, to wait on)."""
    messages = read_all(settings, settings.topic(topic))
    return messages if len(messages) >= count else None


def publish_frames(settings: Settings, frames: list[Any]) -> None:
    produce(settings, settings.topic("detections"), [(f.camera_id.encode(), encode(f)) for f in frames])


def loiter(track_id: int, start_s: float, stay_s: float, camera: str = "cam-1") -> list[Any]:
    """A person standing at the razor shelf for stay_s, then empty frames (the track ends)."""
    frames = walk(
        camera, track_id, [(0, (0.2, 0.8)), (stay_s, (0.2, 0.8))], t0=T0 + timedelta(seconds=start_s)
    )
    end = frames[-1].ts
    return frames + [frame(camera, 1000 + i, 0.2 * (i + 1), [], t0=end) for i in range(15)]


def test_incidents_dlq_and_restart(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(
        loiter_threshold_s=3.0, track_timeout_s=1.0, zone_exit_grace_s=0.5, incident_update_s=2.0
    )
    with connect(settings.database_dsn) as conn:
        from warehouse.migrate import migrate

        migrate(conn, progress=lambda _m: None)
        apply_site_config(conn, parse_site_config(SITE_YAML))
    env = cli_env(settings, tmp_path)
    flow = spawn_cli(["flows", "run", "incidents", "--snapshot-s", "0.5"], env, tmp_path / "flow1.log")
    try:
        bad_box = json.loads(encode(frame("cam-1", 1, 0, [])))
        bad_box["objects"] = [
            {"track_id": 1, "class_name": "person", "class_id": 0, "conf": 0.9, "box": [0.5, 0.5, 0.1, 0.1]}
        ]
        produce(
            settings,
            settings.topic("detections"),
            [(b"cam-1", b"{not json"), (b"cam-1", json.dumps(bad_box).encode()), (b"cam-1", b"\xff\xfe")],
        )
        publish_frames(settings, loiter(7, 0, 6.0))

        rows = wait_for(
            lambda: [r for r in incidents(settings) if r["status"] == "closed"], 90, what="a closed incident"
        )
        # The topics are other outputs of the same batches as the rows: wait for them too.
        dlq = wait_for(lambda: read_at_least(settings, "dlq", 3), 120, what="three dead letters")
        assert [m.key() for m in dlq] == [settings.topic("detections").encode()] * 3  # key: the source topic
        letters = [decode(m.value(), DeadLetter) for m in dlq]
        assert letters[0].value == "{not json" and "not valid JSON" in letters[0].error
        assert letters[0].source_topic == settings.topic("detections") and letters[0].offset == 0
        assert "box must be" in letters[1].error
        assert letters[2].value == "//4="  # not UTF-8: base64

        row = rows[0]
        assert row["track_id"] == 7 and row["camera_id"] == "cam-1" and row["zone_ids"] == ["z-razors"]
        assert row["store_id"] == "store-001" and row["incident_type"] == "loitering_high_value"
        assert 5.8 <= row["signals"][0]["value"] <= 6.0
        messages = wait_for(
            lambda: read_at_least(settings, "incidents", row["version"]), 120, what="every incident version"
        )
        published = [decode(m.value(), Incident) for m in messages]
        assert [i.version for i in published] == list(range(1, row["version"] + 1))
        assert [m.key() for m in messages] == [row["incident_id"].encode()] * row["version"]
    finally:
        flow.send_signal(signal.SIGTERM)
        assert flow.wait(timeout=30) == 0
    assert "stopped" in (tmp_path / "flow1.log").read_text()

    # A restart resumes from the recovery store: nothing is processed twice, new frames flow.
    publish_frames(settings, loiter(8, 60, 5.0))
    flow = spawn_cli(["flows", "run", "incidents", "--snapshot-s", "0.5"], env, tmp_path / "flow2.log")
    try:
        after = wait_for(
            lambda: (
                (r := incidents(settings)) and len(r) == 2 and all(x["status"] == "closed" for x in r) and r
            ),
            90,
            what="the second incident",
        )
    finally:
        flow.send_signal(signal.SIGTERM)
        flow.wait(timeout=30)
    assert {r["track_id"] for r in after} == {7, 8}
    first = next(r for r in after if r["track_id"] == 7)
    assert first["version"] == row["version"]
    assert len(read_all(settings, settings.topic("dlq"))) == 3
