"""Camera health from what a reader observes: offline, degraded, online (no clock involved)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detector.health import OFFLINE_AFTER_S, WARM_UP_S, Observation, Sample, assess

# 2 s between reports, 10 frames read and 10 analysed: 5 fps, as the camera asks.
STEADY = Observation(
    camera_id="cam-1",
    store_id="store-001",
    target_fps=5,
    previous=Sample(100.0, 0, 0),
    current=Sample(102.0, 10, 10),
    seconds_since_new_frame=0.2,
    source_connected=True,
    live=True,
    uptime_s=60.0,
    last_frame_ts=None,
    error=None,
    broker_down=False,
    dropped_since_last=0,
)


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({}, "online", None),
        ({"source_connected": False}, "offline", "connecting"),
        ({"source_connected": False, "error": "cannot open rtsp://***@h/x"}, "offline", "cannot open"),
        ({"seconds_since_new_frame": OFFLINE_AFTER_S + 0.1}, "offline", "no new frame for 5 s"),
        ({"seconds_since_new_frame": OFFLINE_AFTER_S}, "online", None),
        ({"broker_down": True}, "degraded", "Kafka unreachable"),
        ({"dropped_since_last": 3}, "degraded", "Kafka unreachable"),
        ({"current": Sample(102.0, 10, 7)}, "degraded", "analysing 3.5 of 5 fps"),
        ({"current": Sample(102.0, 10, 8)}, "online", None),  # 4 of 5 fps: within 80 %
        ({"current": Sample(102.0, 10, 2), "uptime_s": WARM_UP_S}, "online", None),  # warming up
        ({"current": Sample(102.0, 10, 2), "live": False}, "online", None),  # a file as fast as it goes
        # Offline wins over everything else; Kafka trouble over slowness.
        ({"seconds_since_new_frame": 30.0, "broker_down": True}, "offline", "no new frame for 30 s"),
        ({"broker_down": True, "current": Sample(102.0, 10, 2)}, "degraded", "Kafka unreachable"),
    ],
)
def test_assess(changes: dict[str, object], status: str, error: str | None) -> None:
    health = assess(replace(STEADY, **changes))  # type: ignore[arg-type]
    assert health.status == status
    if error is None:
        assert health.error is None
    else:
        assert health.error is not None and error in health.error
