"""Test data: detection messages and site files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shrinkwatch.contracts import DetectedObject, Detection, Incident, Signal

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)


def person(
    track_id: int, foot: tuple[float, float], height: float = 0.2, conf: float = 0.9
) -> DetectedObject:
    """A person whose feet stand at `foot` (normalised)."""
    x, y = foot
    return DetectedObject(
        track_id=track_id,
        class_name="person",
        class_id=0,
        conf=conf,
        box=(max(x - 0.03, 0.0), max(y - height, 0.0), min(x + 0.03, 1.0), y),
    )


def frame(
    camera_id: str,
    frame_id: int,
    seconds: float,
    objects: list[DetectedObject],
    store_id: str = "store-001",
    t0: datetime = T0,
) -> Detection:
    """One analysed frame at t0 + seconds."""
    return Detection(
        camera_id=camera_id,
        store_id=store_id,
        frame_id=frame_id,
        ts=t0 + timedelta(seconds=seconds),
        frame_w=768,
        frame_h=576,
        objects=objects,
    )


def walk(
    camera_id: str,
    track_id: int,
    path: list[tuple[float, tuple[float, float]]],
    fps: float = 5.0,
    store_id: str = "store-001",
    t0: datetime = T0,
) -> list[Detection]:
    """Frames at `fps` of one person following (time, foot) waypoints, linearly between them."""
    frames = []
    end = path[-1][0]
    n = int(end * fps) + 1
    for i in range(n):
        t = i / fps
        for (ta, pa), (tb, pb) in zip(path, path[1:], strict=False):
            if ta <= t <= tb:
                r = 0.0 if tb == ta else (t - ta) / (tb - ta)
                foot = (pa[0] + r * (pb[0] - pa[0]), pa[1] + r * (pb[1] - pa[1]))
                break
        else:
            foot = path[-1][1]
        frames.append(frame(camera_id, i, t, [person(track_id, foot)], store_id, t0))
    return frames


def incident(version: int, status: str = "open", **changes: Any) -> Incident:
    """A loitering incident state; `changes` override any field."""
    values: dict[str, Any] = dict(
        incident_id="inc-1",
        version=version,
        store_id="store-001",
        camera_id="cam-1",
        track_id=7,
        incident_type="loitering_high_value",
        risk_score=0.5,
        risk_level="medium",
        status=status,
        started_at=T0,
        updated_at=T0 + timedelta(seconds=version),
        ended_at=None,
        zone_ids=["z-razors"],
        signals=[Signal(name="dwell_high_value_s", value=10.0 + version, contribution=0.5)],
    )
    values.update(changes)
    return Incident(**values)


SITE_YAML = """\
stores:
  - id: store-001
    name: Downtown
    city: Leeds
    timezone: Europe/London
    hours: {mon: "08:00-21:00", sat: "09:00-18:00"}
cameras:
  - id: cam-1
    store_id: store-001
    name: Aisle
    location: Razor blades
    stream_url: rtsp://user:secret@10.0.0.5/stream1
    fps: 5
    zones:
      - id: z-razors
        name: Razor blades
        kind: high_value
        polygon: [[0.0, 0.5], [0.4, 0.5], [0.4, 1.0], [0.0, 1.0]]
      - id: z-exit
        name: Exit
        kind: exit
        polygon: [[0.8, 0.0], [1.0, 0.0], [1.0, 1.0], [0.8, 1.0]]
"""
