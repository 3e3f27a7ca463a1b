"""Per-camera track state and the loitering rule, as pure functions over dataclasses.

State is kept per camera (not per track) because a track's end is only visible at the
camera level: a frame that no longer shows it. Times are the frames' capture times, so
replays and restarts give the same results as the live run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from flows.zones import ZoneArea
from shrinkwatch.contracts import Detection, Incident, Signal, risk_level

INCIDENT_NAMESPACE = uuid.UUID("6f1d3c0e-5b0a-4c52-9a43-2f3f7b9e8a10")


@dataclass(frozen=True)
class DwellRules:
    """Thresholds of the loitering rule (all in seconds of frame time)."""

    loiter_threshold_s: float = 30.0
    zone_exit_grace_s: float = 2.0
    track_timeout_s: float = 3.0
    incident_update_s: float = 10.0


@dataclass
class ZoneVisit:
    """One continuous stay of a track in one zone."""

    zone_id: str
    entered: datetime
    last_inside: datetime
    incident_version: int = 0
    reported_dwell_s: float = 0.0

    @property
    def dwell_s(self) -> float:
        return (self.last_inside - self.entered).total_seconds()


@dataclass
class TrackState:
    """What one track has done so far on this camera."""

    last_seen: datetime
    visits: dict[str, ZoneVisit] = field(default_factory=dict)


@dataclass
class CameraState:
    """Every live track of one camera."""

    store_id: str
    last_ts: datetime | None = None
    tracks: dict[int, TrackState] = field(default_factory=dict)


def incident_id(kind: str, camera_id: str, track_id: int | None, zone_id: str, started: datetime) -> str:
    """Deterministic id: the same visit always maps to the same incident."""
    key = f"{kind}/{camera_id}/{track_id}/{zone_id}/{started.isoformat()}"
    return str(uuid.uuid5(INCIDENT_NAMESPACE, key))


def loitering_score(dwell_s: float, threshold_s: float) -> float:
    """0.4 at the threshold, 0.7 at twice it, 1.0 from three times it (linear between)."""
    return round(min(1.0, 0.4 + 0.3 * (dwell_s / threshold_s - 1.0)), 4)


def _incident(
    camera_id: str,
    store_id: str,
    track_id: int,
    visit: ZoneVisit,
    rules: DwellRules,
    now: datetime,
    *,
    closed: bool,
) -> Incident:
    dwell = round(visit.dwell_s, 3)
    score = loitering_score(dwell, rules.loiter_threshold_s)
    return Incident(
        incident_id=incident_id("loitering_high_value", camera_id, track_id, visit.zone_id, visit.entered),
        version=visit.incident_version,
        store_id=store_id,
        camera_id=camera_id,
        track_id=track_id,
        incident_type="loitering_high_value",
        risk_score=score,
        risk_level=risk_level(score),
        status="closed" if closed else "open",
        started_at=visit.entered,
        updated_at=visit.last_inside if closed else now,
        ended_at=visit.last_inside if closed else None,
        zone_ids=[visit.zone_id],
        signals=[Signal(name="dwell_high_value_s", value=dwell, contribution=score)],
    )


def _close(
    camera_id: str, state: CameraState, track_id: int, visit: ZoneVisit, rules: DwellRules, now: datetime
) -> Incident | None:
    if visit.incident_version == 0:
        return None
    visit.incident_version += 1
    return _incident(camera_id, state.store_id, track_id, visit, rules, now, closed=True)


def step(
    state: CameraState | None, frame: Detection, zones: list[ZoneArea], rules: DwellRules
) -> tuple[CameraState, list[Incident]]:
    """Advance one camera's state by one frame; return the incident states to publish."""
    if state is None:
        state = CameraState(store_id=frame.store_id)
    now = frame.ts
    if state.last_ts is not None and now < state.last_ts:
        return state, []  # an older frame (a replayed duplicate): already accounted for
    state.last_ts = now
    out: list[Incident] = []
    high_value = [z for z in zones if z.kind == "high_value"]
    seen: set[int] = set()
    for obj in frame.objects:
        if obj.track_id is None or obj.class_name != "person":
            continue
        seen.add(obj.track_id)
        track = state.tracks.setdefault(obj.track_id, TrackState(last_seen=now))
        track.last_seen = now
        fx, fy = obj.foot
        for zone in high_value:
            if not zone.contains(fx, fy):
                continue
            visit = track.visits.get(zone.zone_id)
            if visit is None:
                visit = track.visits[zone.zone_id] = ZoneVisit(zone.zone_id, now, now)
            visit.last_inside = now
            dwell = visit.dwell_s
            if dwell < rules.loiter_threshold_s:
                continue
            if visit.incident_version == 0 or dwell - visit.reported_dwell_s >= rules.incident_update_s:
                visit.incident_version += 1
                visit.reported_dwell_s = dwell
                out.append(
                    _incident(frame.camera_id, state.store_id, obj.track_id, visit, rules, now, closed=False)
                )
    # Visits whose track has left the zone for longer than the grace period end here.
    for track_id, track in state.tracks.items():
        for zone_id, visit in list(track.visits.items()):
            if (now - visit.last_inside).total_seconds() > rules.zone_exit_grace_s:
                closed = _close(frame.camera_id, state, track_id, visit, rules, now)
                if closed:
                    out.append(closed)
                del track.visits[zone_id]
    # Tracks not seen for track_timeout_s have ended (empty frames count as 'not seen').
    for track_id in [
        t
        for t, tr in state.tracks.items()
        if t not in seen and (now - tr.last_seen).total_seconds() > rules.track_timeout_s
    ]:
        for visit in state.tracks[track_id].visits.values():
            closed = _close(frame.camera_id, state, track_id, visit, rules, now)
            if closed:
                out.append(closed)
        del state.tracks[track_id]
    return state, out
