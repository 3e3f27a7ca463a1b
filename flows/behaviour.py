"""Per-track behaviour on one camera, and the incident rules over it.

State is kept per camera (a track's end is only visible at the camera level: a frame that
no longer shows it). Every time is a frame's capture time, so a replay gives exactly the
results of the live run; inside the state, times are integer microseconds since the epoch
(`*_us`), durations are seconds. One incident per (camera, track) visit: it opens when the first
pattern triggers, is updated while the track lives (its type is the pattern contributing
most to its risk) and is closed when the track ends. Crowding is about a zone, not one
person: its incidents have no track.

Patterns (thresholds per store, `Thresholds`):
- loitering_high_value: continuous dwell in a `high_value` zone >= loiter_s
- exit_without_checkout: reached an `exit` zone after a `high_value` zone without a
  `checkout` zone in between
- restricted_zone: continuous presence in a `restricted` zone >= restricted_s
- after_hours: tracked for >= after_hours_s while the store is closed (its hours, its zone)
- concealment_suspected: the pose cue (flows.posture) sustained >= concealment_s in a
  `high_value` zone
- running_exit: moving faster than running_speed body-heights per second for running_s,
  then in an `exit` zone within 3 s
- crowding: >= crowd_people people at once in one `high_value` zone for crowd_s
"""

from __future__ import annotations

import functools
import math
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from flows.frames import Box, Frame, Person, from_us
from flows.posture import concealment_cue
from flows.risk import Weights, score
from flows.signals import extra_strengths
from flows.zones import ZoneArea
from shrinkwatch.contracts import Detection, Incident, IncidentType, Signal, risk_level
from shrinkwatch.sites import open_at

INCIDENT_NAMESPACE = uuid.UUID("6f1d3c0e-5b0a-4c52-9a43-2f3f7b9e8a10")
RUN_TO_EXIT_S = 3.0
SPEED_WINDOW_US = 600_000
MINUTE_US = 60_000_000


def seconds(later_us: int, earlier_us: int) -> float:
    """The time between two instants, in seconds."""
    return (later_us - earlier_us) / 1_000_000


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds of one store (seconds of frame time unless named otherwise)."""

    loiter_s: float = 30.0
    restricted_s: float = 2.0
    after_hours_s: float = 5.0
    concealment_s: float = 2.0
    crowd_people: int = 4
    crowd_s: float = 20.0
    running_speed: float = 1.5  # body heights per second
    running_s: float = 0.6
    zone_exit_grace_s: float = 2.0
    track_timeout_s: float = 3.0
    incident_update_s: float = 10.0


@functools.lru_cache(maxsize=8192)
def _open_in_minute(timezone: str, hours: tuple[tuple[str, str], ...], minute: int) -> bool:
    local = from_us(minute * MINUTE_US).astimezone(ZoneInfo(timezone))
    return open_at(dict(hours), local.weekday(), local.strftime("%H:%M"))


@dataclass(frozen=True)
class StoreInfo:
    """What the rules need to know about a store."""

    store_id: str
    timezone: str = "UTC"
    # (day, "HH:MM-HH:MM") pairs; a missing day is closed, () is closed every day, and
    # None means the hours are unknown: never after hours.
    hours: tuple[tuple[str, str], ...] | None = None
    thresholds: Thresholds = Thresholds()
    weights: Weights = Weights()

    def is_open_us(self, us: int) -> bool:
        """Whether the store is open at this instant (microseconds since the epoch), in its
        local time; unknown hours count as open. Hours have minute resolution."""
        if self.hours is None:
            return True
        return _open_in_minute(self.timezone, self.hours, us // MINUTE_US)


@dataclass(slots=True)
class Visit:
    """A continuous stay of a track in one zone."""

    zone_id: str
    kind: str
    entered_us: int
    last_inside_us: int

    @property
    def seconds(self) -> float:
        return seconds(self.last_inside_us, self.entered_us)


@dataclass
class Emitted:
    """What the last published version of an incident said."""

    version: int = 0
    signature: tuple[object, ...] = ()
    values: tuple[float, ...] = ()
    at_us: int | None = None

    def wants(
        self,
        signature: tuple[object, ...],
        values: tuple[float, ...],
        now_us: int,
        every_s: float,
        closed: bool,
    ) -> bool:
        """Publish a new version? The first, a close, any change of type, status, level or
        signals, and a refresh every `every_s` while values still change."""
        if not self.version or closed or signature != self.signature:
            return True
        due = self.at_us is None or seconds(now_us, self.at_us) >= every_s
        return due and values != self.values

    def record(self, signature: tuple[object, ...], values: tuple[float, ...], now_us: int) -> int:
        """Note a published version; return its number."""
        self.version += 1
        self.signature, self.values, self.at_us = signature, values, now_us
        return self.version


@dataclass
class TrackState:
    """What one person has done so far on this camera."""

    first_seen: datetime
    last_seen: datetime
    last_us: int
    # (time, foot x, foot y, box height) of the last frames
    samples: deque[tuple[int, float, float, float]] = field(default_factory=lambda: deque(maxlen=12))
    visits: dict[str, Visit] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)  # zone ids in the order entered
    max_dwell_high_value: float = 0.0  # seconds
    high_value_pending: bool = False  # a high_value zone visited since the last checkout
    skipped_checkout: bool = False
    restricted_s: float = 0.0
    after_hours_since_us: int | None = None
    after_hours_s: float = 0.0
    cue_since_us: int | None = None
    concealment_s: float = 0.0
    running_since_us: int | None = None
    ran_at_us: int | None = None
    running_exit: bool = False
    bag_frames: int = 0
    incident: Emitted = field(default_factory=Emitted)


@dataclass
class CrowdState:
    """People in one high_value zone over time."""

    since: datetime | None = None
    since_us: int = 0
    last_full: datetime | None = None
    last_full_us: int = 0
    peak: int = 0
    incident: Emitted = field(default_factory=Emitted)


@dataclass
class CameraState:
    """Every live track and crowd of one camera."""

    store_id: str
    last_us: int | None = None
    tracks: dict[int, TrackState] = field(default_factory=dict)
    crowds: dict[str, CrowdState] = field(default_factory=dict)


def track_incident_id(camera_id: str, track_id: int, first_seen: datetime) -> str:
    """Deterministic id of a track visit's incident."""
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"track/{camera_id}/{track_id}/{first_seen.isoformat()}"))


def crowd_incident_id(camera_id: str, zone_id: str, since: datetime) -> str:
    """Deterministic id of a crowding episode."""
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"crowd/{camera_id}/{zone_id}/{since.isoformat()}"))


def ramp(value: float, threshold: float) -> float:
    """Strength of a measured duration: 0 below the threshold, 0.5 at it, 1 from twice it."""
    if threshold <= 0 or value < threshold:
        return 0.0
    return min(1.0, value / (2 * threshold))


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# Which signal makes which incident type (the type is the triggered one contributing most).
PATTERNS: dict[IncidentType, str] = {
    "loitering_high_value": "dwell_high_value_s",
    "exit_without_checkout": "skipped_checkout",
    "restricted_zone": "restricted_zone_s",
    "after_hours": "after_hours_s",
    "concealment_suspected": "concealment_cue_s",
    "running_exit": "running_exit",
}


def track_strengths(track: TrackState, rules: Thresholds) -> dict[str, tuple[float, float]]:
    """{signal: (value, strength)} for one track."""
    return {
        "dwell_high_value_s": (track.max_dwell_high_value, ramp(track.max_dwell_high_value, rules.loiter_s)),
        "skipped_checkout": (float(track.skipped_checkout), float(track.skipped_checkout)),
        "restricted_zone_s": (track.restricted_s, ramp(track.restricted_s, rules.restricted_s)),
        "after_hours_s": (track.after_hours_s, ramp(track.after_hours_s, rules.after_hours_s)),
        "concealment_cue_s": (track.concealment_s, ramp(track.concealment_s, rules.concealment_s)),
        "running_exit": (float(track.running_exit), float(track.running_exit)),
        "bag_present": (float(track.bag_frames), 1.0 if track.bag_frames >= 3 else 0.0),
        **extra_strengths(track, rules),
    }


def triggered(track: TrackState, rules: Thresholds) -> bool:
    """Whether any incident pattern has fired for this track (a pattern signal of
    `track_strengths` above 0: `ramp(v, t) > 0` is `v >= t > 0`); cheap, so that most
    sightings skip scoring."""
    return (
        track.skipped_checkout
        or track.running_exit
        or track.max_dwell_high_value >= rules.loiter_s > 0
        or track.restricted_s >= rules.restricted_s > 0
        or track.after_hours_s >= rules.after_hours_s > 0
        or track.concealment_s >= rules.concealment_s > 0
    )


class BehaviourEngine:
    """Advances one camera's state by one frame; pure apart from the zone/store lookups given."""

    def __init__(self, camera_id: str, zones: list[ZoneArea], store: StoreInfo) -> None:
        self.camera_id, self.zones, self.store = camera_id, zones, store
        self.rules = store.thresholds
        self.high_value = [z for z in zones if z.kind == "high_value"]
        # (bounding box, zone): most points fall outside most boxes, so test those first.
        self.boxes = [(*z.bbox, z.rect, z) for z in zones]
        self.timeout_us = round(self.rules.track_timeout_s * 1_000_000)
        self.grace_us = round(self.rules.zone_exit_grace_s * 1_000_000)

    def step(self, state: CameraState | None, frame: Frame | Detection) -> tuple[CameraState, list[Incident]]:
        """Apply one frame; return the new state and the incident versions to publish."""
        if isinstance(frame, Detection):
            frame = Frame.from_detection(frame)
        if state is None:
            state = CameraState(store_id=frame.store_id)
        now_us = frame.us
        if state.last_us is not None and now_us <= state.last_us:
            return state, []  # a replayed or repeated frame: already accounted for
        state.last_us = now_us
        open_now = self.store.is_open_us(now_us)
        rules = self.rules
        out: list[Incident] = []
        crowded: dict[str, int] = {}
        tracks = state.tracks
        for person in frame.people:
            track = tracks.get(person.track_id)
            if track is None:
                track = tracks[person.track_id] = TrackState(frame.ts, frame.ts, now_us)
            for zone_id in self._observe(track, person, frame, open_now):
                crowded[zone_id] = crowded.get(zone_id, 0) + 1
            if triggered(track, rules):
                incident = self._track_incident(person.track_id, track, frame.ts, now_us, closed=False)
                if incident:
                    out.append(incident)
        if self.high_value:
            out.extend(self._crowds(state, crowded, frame.ts, now_us))
        # Tracks not in this frame that have been gone too long end (a tracker gives each
        # person of a frame a distinct id: when every track was just seen, none can end).
        ended: list[int] = []
        if len(tracks) > len(frame.people):
            oldest = now_us - self.timeout_us
            ended = [t for t, tr in tracks.items() if tr.last_us < oldest]
        for track_id in ended:
            track = tracks.pop(track_id)
            if triggered(track, rules):
                closed = self._track_incident(track_id, track, frame.ts, now_us, closed=True)
                if closed:
                    out.append(closed)
        return state, out

    # -- one person ----------------------------------------------------------------------

    def _observe(self, track: TrackState, person: Person, frame: Frame, open_now: bool) -> list[str]:
        """Update a track with one sighting; return the high_value zones the person is in."""
        now_us = frame.us
        previous_us, track.last_seen, track.last_us = track.last_us, frame.ts, now_us
        box = person.box
        fx, fy = (box[0] + box[2]) / 2.0, box[3]
        height = box[3] - box[1]
        track.samples.append((now_us, fx, fy, height if height > 1e-3 else 1e-3))
        in_high_value: list[str] = []
        in_exit = False
        for x0, y0, x1, y1, rect, zone in self.boxes:
            if not (x0 <= fx <= x1 and y0 <= fy <= y1 and (rect or zone.contains(fx, fy))):
                continue
            visit = track.visits.get(zone.zone_id)
            if visit is None:
                visit = track.visits[zone.zone_id] = Visit(zone.zone_id, zone.kind, now_us, now_us)
                if not track.path or track.path[-1] != zone.zone_id:
                    track.path.append(zone.zone_id)
                self._entered(track, zone.kind)
            visit.last_inside_us = now_us
            if zone.kind == "high_value":
                in_high_value.append(zone.zone_id)
                track.max_dwell_high_value = max(track.max_dwell_high_value, visit.seconds)
            elif zone.kind == "restricted":
                track.restricted_s = max(track.restricted_s, visit.seconds)
            elif zone.kind == "exit":
                in_exit = True
        if track.visits:
            left = now_us - self.grace_us
            for zone_id, visit in list(track.visits.items()):
                if visit.last_inside_us < left:
                    del track.visits[zone_id]
        # After hours: continuous presence while the store is closed.
        if open_now:
            track.after_hours_since_us = None
        else:
            if track.after_hours_since_us is None:
                track.after_hours_since_us = now_us
            track.after_hours_s = max(track.after_hours_s, seconds(now_us, track.after_hours_since_us))
        # Bags carried: a bag box overlapping the person's box.
        carried = [bag for bag in frame.bags if _overlaps(box, bag)] if frame.bags else []
        if carried:
            track.bag_frames += 1
        # Concealment: the pose cue, sustained, inside a high_value zone.
        if in_high_value and concealment_cue(person.keypoints, carried):
            if track.cue_since_us is None or now_us - previous_us > self.grace_us:
                track.cue_since_us = now_us
            track.concealment_s = max(track.concealment_s, seconds(now_us, track.cue_since_us))
        else:
            track.cue_since_us = None
        self._running(track, now_us, in_exit)
        return in_high_value

    def _entered(self, track: TrackState, kind: str) -> None:
        if kind == "high_value":
            track.high_value_pending = True
        elif kind == "checkout":
            track.high_value_pending = False
        elif kind == "exit" and track.high_value_pending:
            track.skipped_checkout = True

    def _running(self, track: TrackState, now_us: int, in_exit: bool) -> None:
        rules = self.rules
        # Speed over the last 0.6 s, in body heights per second (scale-free across the image):
        # from the oldest sample inside the window to this one, over their median height.
        samples = track.samples
        cutoff = now_us - SPEED_WINDOW_US
        window = []  # newest first
        for sample in reversed(samples):
            if sample[0] < cutoff:
                break
            window.append(sample)
        speed = 0.0
        if len(window) > 1:
            t1, x1, y1, _ = window[0]
            t0, x0, y0, _ = window[-1]
            height = sorted([s[3] for s in window])[len(window) // 2]
            if t1 > t0:
                speed = math.hypot(x1 - x0, y1 - y0) / height / seconds(t1, t0)
        if speed >= rules.running_speed:
            if track.running_since_us is None:
                track.running_since_us = now_us
            if seconds(now_us, track.running_since_us) >= rules.running_s:
                track.ran_at_us = now_us
        else:
            track.running_since_us = None
        if in_exit and track.ran_at_us is not None and seconds(now_us, track.ran_at_us) <= RUN_TO_EXIT_S:
            track.running_exit = True

    def _track_incident(
        self, track_id: int, track: TrackState, now: datetime, now_us: int, *, closed: bool
    ) -> Incident | None:
        strengths = track_strengths(track, self.rules)
        total, signals = score(strengths, self.store.weights)
        by_name = {s.name: s.contribution for s in signals}
        fired = [(by_name[sig], pattern) for pattern, sig in PATTERNS.items() if sig in by_name]
        if not fired:
            return None
        return self._emit(
            track.incident,
            track_incident_id(self.camera_id, track_id, track.first_seen),
            track_id,
            max(fired)[1],
            total,
            signals,
            tuple(sorted(by_name)),
            track.first_seen,
            track.last_seen,
            list(dict.fromkeys(track.path)),
            now,
            now_us,
            closed,
        )

    def _emit(
        self,
        emitted: Emitted,
        incident_id: str,
        track_id: int | None,
        kind: IncidentType,
        total: float,
        signals: list[Signal],
        detail: tuple[object, ...],
        started: datetime,
        last: datetime,
        zone_ids: list[str],
        now: datetime,
        now_us: int,
        closed: bool,
    ) -> Incident | None:
        """The next version of an incident, or None when nothing worth publishing changed."""
        level = risk_level(total)
        status = "closed" if closed else "open"
        signature = (kind, status, level, detail)
        values = tuple(s.value for s in signals)
        if not emitted.wants(signature, values, now_us, self.rules.incident_update_s, closed):
            return None
        return Incident(
            incident_id=incident_id,
            version=emitted.record(signature, values, now_us),
            store_id=self.store.store_id,
            camera_id=self.camera_id,
            track_id=track_id,
            incident_type=kind,
            risk_score=total,
            risk_level=level,
            status=status,
            started_at=started,
            updated_at=last if closed else now,
            ended_at=last if closed else None,
            zone_ids=zone_ids,
            signals=signals,
        )

    # -- zones -----------------------------------------------------------------------------

    def _crowds(
        self, state: CameraState, counts: dict[str, int], now: datetime, now_us: int
    ) -> list[Incident]:
        rules = self.rules
        out = []
        for zone in self.high_value:
            count = counts.get(zone.zone_id, 0)
            crowd = state.crowds.get(zone.zone_id)
            if crowd is None:
                crowd = state.crowds[zone.zone_id] = CrowdState()
            if count >= rules.crowd_people:
                if crowd.since is None:
                    crowd.since, crowd.since_us, crowd.peak, crowd.incident = now, now_us, 0, Emitted()
                crowd.last_full, crowd.last_full_us = now, now_us
                crowd.peak = max(crowd.peak, count)
            if crowd.since is None:
                continue
            lasted = seconds(crowd.last_full_us, crowd.since_us)
            ended = seconds(now_us, crowd.last_full_us) > rules.zone_exit_grace_s
            if lasted >= rules.crowd_s:
                incident = self._crowd_incident(zone.zone_id, crowd, now, now_us, closed=ended)
                if incident:
                    out.append(incident)
            if ended:
                crowd.since = crowd.last_full = None
        return out

    def _crowd_incident(
        self, zone_id: str, crowd: CrowdState, now: datetime, now_us: int, *, closed: bool
    ) -> Incident | None:
        assert crowd.since is not None and crowd.last_full is not None
        strength = min(1.0, crowd.peak / (2 * self.rules.crowd_people))
        total, signals = score({"crowd_size": (float(crowd.peak), strength)}, self.store.weights)
        return self._emit(
            crowd.incident,
            crowd_incident_id(self.camera_id, zone_id, crowd.since),
            None,
            "crowding",
            total,
            signals,
            (crowd.peak,),
            crowd.since,
            crowd.last_full,
            [zone_id],
            now,
            now_us,
            closed,
        )
