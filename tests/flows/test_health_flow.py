"""The health flow: each camera's newest report in `camera_health`, since when its status
holds, replays harmless, and a malformed report dead-lettered (real Kafka and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bytewax.testing import run_main

from flows.health import build_flow
from shrinkwatch.contracts import CameraHealth, ContractError, DeadLetter, decode, encode
from shrinkwatch.settings import Settings
from tests.support import produce, read_all
from warehouse.db import connect

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BROKEN = b'{"schema": "shrinkwatch.camera-health/1", "camera_id": "cam-3"}'


def report(camera: str, seconds: float, status: str, fps: float = 5.0) -> tuple[bytes, bytes]:
    health = CameraHealth(
        camera_id=camera,
        store_id="store-001",
        ts=T0 + timedelta(seconds=seconds),
        status=status,
        fps_in=10.0,
        fps_analysed=fps,
        last_frame_ts=T0 + timedelta(seconds=seconds) if status != "offline" else None,
        error="connection refused" if status == "offline" else None,
    )
    return camera.encode(), encode(health)


def stored(settings: Settings) -> dict[str, dict[str, Any]]:
    with connect(settings.database_dsn) as conn:
        rows = conn.execute(
            "SELECT camera_id, status, status_since, reported_at, fps_analysed, error FROM camera_health"
        ).fetchall()
    return {r.pop("camera_id"): r for r in rows}


def test_latest_state_per_camera_and_since_when(settings: Settings) -> None:
    produce(
        settings,
        settings.topic("camera-health"),
        [
            report("cam-1", 0, "online"),
            report("cam-1", 5, "online"),
            report("cam-1", 10, "offline", fps=0.0),
            report("cam-1", 15, "offline", fps=0.0),
            report("cam-2", 0, "degraded", fps=2.5),
            (b"cam-3", BROKEN),
        ],
    )
    run_main(build_flow(settings, tail=False))
    expected = {
        "cam-1": {
            "status": "offline",
            "status_since": T0 + timedelta(seconds=10),
            "reported_at": T0 + timedelta(seconds=15),
            "fps_analysed": 0.0,
            "error": "connection refused",
        },
        "cam-2": {
            "status": "degraded",
            "status_since": T0,
            "reported_at": T0,
            "fps_analysed": 2.5,
            "error": None,
        },
    }
    assert stored(settings) == expected
    dead = [decode(m.value(), DeadLetter) for m in read_all(settings, settings.topic("dlq"))]
    with pytest.raises(ContractError) as broken:
        decode(BROKEN, CameraHealth)
    assert [(d.source_topic, d.offset, d.error, d.value) for d in dead] == [
        (settings.topic("camera-health"), 5, str(broken.value), BROKEN.decode())
    ]

    # A replay (a restart without recovery reads everything again) changes nothing.
    run_main(build_flow(settings, tail=False))
    assert stored(settings) == expected
