"""Camera health: online / degraded / offline from what a reader and the publisher report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shrinkwatch.contracts import CameraHealth
from shrinkwatch.logs import scrub

OFFLINE_AFTER_S = 5.0  # no new frame from the camera for this long: it is offline
SLOW_RATIO = 0.8  # analysing under this share of the target fps: degraded
WARM_UP_S = 10.0  # the first seconds of a stream (probing, the model's first call) are slow


@dataclass(frozen=True)
class Sample:
    """Counters of one camera reader at one moment (monotonic seconds)."""

    at: float
    frames_read: int
    frames_analysed: int


@dataclass(frozen=True)
class Observation:
    """What the runner knows about one camera when it reports."""

    camera_id: str
    store_id: str
    target_fps: float
    previous: Sample
    current: Sample
    seconds_since_new_frame: float
    source_connected: bool
    live: bool
    uptime_s: float
    last_frame_ts: datetime | None
    error: str | None
    broker_down: bool
    dropped_since_last: int
    capped_since_last: int = 0  # frames published with only the objects that fit in a message


def assess(obs: Observation) -> CameraHealth:
    """The health event for one observation; the error text never carries credentials."""
    span = max(obs.current.at - obs.previous.at, 1e-6)
    fps_in = (obs.current.frames_read - obs.previous.frames_read) / span
    fps_analysed = (obs.current.frames_analysed - obs.previous.frames_analysed) / span
    error = obs.error
    if not obs.source_connected:
        status = "offline"
        error = error or "connecting"
    elif obs.seconds_since_new_frame > OFFLINE_AFTER_S:
        status = "offline"
        error = error or f"no new frame for {obs.seconds_since_new_frame:.0f} s"
    elif obs.broker_down or obs.dropped_since_last > 0:
        status = "degraded"
        error = error or "Kafka unreachable: buffering detections locally"
    elif obs.capped_since_last > 0:
        status = "degraded"
        error = error or (
            f"{obs.capped_since_last} frame(s) had more objects than fit in a Kafka message: "
            "the least confident were left out"
        )
    elif obs.live and obs.uptime_s > WARM_UP_S and fps_analysed < SLOW_RATIO * obs.target_fps:
        status = "degraded"
        error = error or f"analysing {fps_analysed:.1f} of {obs.target_fps:g} fps"
    else:
        status = "online"
    return CameraHealth(
        camera_id=obs.camera_id,
        store_id=obs.store_id,
        ts=datetime.now(UTC),
        status=status,
        fps_in=round(fps_in, 2),
        fps_analysed=round(fps_analysed, 2),
        last_frame_ts=obs.last_frame_ts,
        error=scrub(error) if error else None,
    )
