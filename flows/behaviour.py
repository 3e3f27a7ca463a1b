"""Per-track behaviour on one camera, and the incident rules over it.

State is kept per camera (a track's end is only visible at the camera level: a frame that
no longer shows it). Every time is a frame's capture time, so a replay gives exactly the
results of the live run. One incident per (camera, track) visit: it opens when the first
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

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from flows.posture import concealment_cue
from flows.risk import Weights, score
from flows.signals import extra_strengths
from flows.zones import ZoneArea
from shrinkwatch.contracts import DetectedObject, Detection, Incident, IncidentType, Signal, risk_level

INCIDENT_NAMESPACE = uuid.UUID("6f1d3c0e-5b0a-4c52-9a43-2f3f7b9e8a10")
BAG_CLASSES = frozenset({"backpack", "handbag", "suitcase"})
RUN_TO_EXIT_S = 3.0
SPEED_WINDOW_S = 0.6
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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


@dataclass(frozen=True)
class StoreInfo:
    """What the rules need to know about a store."""

    store_id: str
    timezone: str = "UTC"
    hours: tuple[tuple[str, str], ...] = ()  # (day, "HH:MM-HH:MM"); a missing day is closed
    thresholds: Thresholds = Thresholds()
    weights: Weights = Weights()

    def is_open(self, ts: datetime) -> bool:
        """Whether the store is open at this instant (its local time); no hours = always open."""
        if not self.hours:
            return True
        local = ts.astimezone(ZoneInfo(self.timezone))
        span = dict(self.hours).get(DAYS[local.weekday()])
        if span is None:
            return False
        opens, closes = span.split("-")
        now = local.strftime("%H:%M")
        return opens <= now < closes


@dataclass
class Visit:
    """A continuous stay of a track in one zone."""

    zone_id: str
    kind: str
    entered: datetime
    last_inside: datetime

    @property
    def seconds(self) -> float:
        return (self.last_inside - self.entered).total_seconds()


@dataclass
class Emitted:
    """What the last published version of an incident said."""

    version: int = 0
    signature: tuple[object, ...] = ()
    values: tuple[float, ...] = ()
    at: datetime | None = None

    def wants(
        self,
        signature: tuple[object, ...],
        values: tuple[float, ...],
        now: datetime,
        every_s: float,
        closed: bool,
    ) -> bool:
        """Publish a new version? The first, a close, any change of type, status, level or
        signals, and a refresh every `every_s` while values still change."""
        if not self.version or closed or signature != self.signature:
            return True
        due = self.at is None or (now - self.at).total_seconds() >= every_s
        return due and values != self.values

    def record(self, signature: tuple[object, ...], values: tuple[float, ...], now: datetime) -> int:
        """Note a published version; return its number."""
        self.version += 1
        self.signature, self.values, self.at = signature, values, now
        return self.version


@dataclass
class TrackState:
    """What one person has done so far on this camera."""

    first_seen: datetime
    last_seen: datetime
    samples: deque[tuple[datetime, float, float, float]] = field(default_factory=lambda: deque(maxlen=12))
    visits: dict[str, Visit] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    max_dwell_high_value: float = 0.0
    high_value_pending: bool = False  # a high_value zone visited since the last checkout
    skipped_checkout: bool = False
    restricted_s: float = 0.0
    after_hours_since: datetime | None = None
    after_hours_s: float = 0.0
    cue_since: datetime | None = None
    concealment_s: float = 0.0
    running_since: datetime | None = None
    ran_at: datetime | None = None
    running_exit: bool = False
    bag_frames: int = 0
    incident: Emitted = field(default_factory=Emitted)


@dataclass
class CrowdState:
    """People in one high_value zone over time."""

    since: datetime | None = None
    last_full: datetime | None = None
    peak: int = 0
    incident: Emitted = field(default_factory=Emitted)


@dataclass
class CameraState:
    """Every live track and crowd of one camera."""

    store_id: str
    last_ts: datetime | None = None
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


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
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


class BehaviourEngine:
    """Advances one camera's state by one frame; pure apart from the zone/store lookups given."""

    def __init__(self, camera_id: str, zones: list[ZoneArea], store: StoreInfo) -> None:
        self.camera_id, self.zones, self.store = camera_id, zones, store
        self.rules = store.thresholds

    def step(self, state: CameraState | None, frame: Detection) -> tuple[CameraState, list[Incident]]:
        """Apply one frame; return the new state and the incident versions to publish."""
        if state is None:
            state = CameraState(store_id=frame.store_id)
        now = frame.ts
        if state.last_ts is not None and now <= state.last_ts:
            return state, []  # a replayed or repeated frame: already accounted for
        state.last_ts = now
        people = [o for o in frame.objects if o.class_name == "person" and o.track_id is not None]
        bags = [o.box for o in frame.objects if o.class_name in BAG_CLASSES]
        open_now = self.store.is_open(now)
        out: list[Incident] = []
        for person in people:
            assert person.track_id is not None
            track = state.tracks.setdefault(person.track_id, TrackState(first_seen=now, last_seen=now))
            self._observe(track, person, bags, now, open_now)
            incident = self._track_incident(person.track_id, track, now, closed=False)
            if incident:
                out.append(incident)
        out.extend(self._crowds(state, people, now))
        for track_id in [
            t
            for t, tr in state.tracks.items()
            if (now - tr.last_seen).total_seconds() > self.rules.track_timeout_s
        ]:
            closed = self._track_incident(track_id, state.tracks.pop(track_id), now, closed=True)
            if closed:
                out.append(closed)
        return state, out

    # -- one person ----------------------------------------------------------------------

    def _observe(
        self, track: TrackState, person: DetectedObject, bags: list, now: datetime, open_now: bool
    ) -> None:
        rules = self.rules
        gap = (now - track.last_seen).total_seconds()
        track.last_seen = now
        fx, fy = person.foot
        height = max(person.box[3] - person.box[1], 1e-3)
        track.samples.append((now, fx, fy, height))
        inside = [z for z in self.zones if z.contains(fx, fy)]
        for zone in inside:
            visit = track.visits.get(zone.zone_id)
            if visit is None:
                visit = track.visits[zone.zone_id] = Visit(zone.zone_id, zone.kind, now, now)
                if not track.path or track.path[-1] != zone.zone_id:
                    track.path.append(zone.zone_id)
                self._entered(track, zone.kind, now)
            visit.last_inside = now
            if zone.kind == "high_value":
                track.max_dwell_high_value = max(track.max_dwell_high_value, visit.seconds)
            elif zone.kind == "restricted":
                track.restricted_s = max(track.restricted_s, visit.seconds)
        for zone_id, visit in list(track.visits.items()):
            if (now - visit.last_inside).total_seconds() > rules.zone_exit_grace_s:
                del track.visits[zone_id]
        # After hours: continuous presence while the store is closed.
        if open_now:
            track.after_hours_since = None
        else:
            track.after_hours_since = track.after_hours_since or now
            track.after_hours_s = max(track.after_hours_s, (now - track.after_hours_since).total_seconds())
        # Bags carried: a bag box overlapping the person's box.
        carried = [bag for bag in bags if _overlaps(person.box, bag)]
        if carried:
            track.bag_frames += 1
        # Concealment: the pose cue, sustained, inside a high_value zone.
        in_high_value = any(z.kind == "high_value" for z in inside)
        if in_high_value and concealment_cue(person.keypoints, carried):
            if track.cue_since is None or gap > rules.zone_exit_grace_s:
                track.cue_since = now
            track.concealment_s = max(track.concealment_s, (now - track.cue_since).total_seconds())
        else:
            track.cue_since = None
        self._running(track, now, any(z.kind == "exit" for z in inside))

    def _entered(self, track: TrackState, kind: str, now: datetime) -> None:
        if kind == "high_value":
            track.high_value_pending = True
        elif kind == "checkout":
            track.high_value_pending = False
        elif kind == "exit" and track.high_value_pending:
            track.skipped_checkout = True

    def _running(self, track: TrackState, now: datetime, in_exit: bool) -> None:
        rules = self.rules
        # Speed over the last 0.6 s, in body heights per second (scale-free across the image).
        window = [s for s in track.samples if (now - s[0]).total_seconds() <= SPEED_WINDOW_S]
        speed = 0.0
        if len(window) >= 2:
            (t0, x0, y0, _), (t1, x1, y1, _) = window[0], window[-1]
            span = (t1 - t0).total_seconds()
            height = sorted(s[3] for s in window)[len(window) // 2]
            if span > 0:
                speed = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 / height / span
        if speed >= rules.running_speed:
            track.running_since = track.running_since or now
            if (now - track.running_since).total_seconds() >= rules.running_s:
                track.ran_at = now
        else:
            track.running_since = None
        if in_exit and track.ran_at is not None and (now - track.ran_at).total_seconds() <= RUN_TO_EXIT_S:
            track.running_exit = True

    def _track_incident(
        self, track_id: int, track: TrackState, now: datetime, *, closed: bool
    ) -> Incident | None:
        strengths = track_strengths(track, self.rules)
        total, signals = score(strengths, self.store.weights)
        by_name = {s.name: s.contribution for s in signals}
        triggered = [(by_name[sig], pattern) for pattern, sig in PATTERNS.items() if sig in by_name]
        emitted = track.incident
        if not triggered:
            return None
        return self._emit(
            emitted,
            track_incident_id(self.camera_id, track_id, track.first_seen),
            track_id,
            max(triggered)[1],
            total,
            signals,
            tuple(sorted(by_name)),
            track.first_seen,
            track.last_seen,
            list(dict.fromkeys(track.path)),
            now,
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
        closed: bool,
    ) -> Incident | None:
        """The next version of an incident, or None when nothing worth publishing changed."""
        level = risk_level(total)
        status = "closed" if closed else "open"
        signature = (kind, status, level, detail)
        values = tuple(s.value for s in signals)
        if not emitted.wants(signature, values, now, self.rules.incident_update_s, closed):
            return None
        return Incident(
            incident_id=incident_id,
            version=emitted.record(signature, values, now),
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

    def _crowds(self, state: CameraState, people: list[DetectedObject], now: datetime) -> list[Incident]:
        rules = self.rules
        out = []
        for zone in (z for z in self.zones if z.kind == "high_value"):
            count = sum(1 for p in people if zone.contains(*p.foot))
            crowd = state.crowds.setdefault(zone.zone_id, CrowdState())
            if count >= rules.crowd_people:
                if crowd.since is None:
                    crowd.since, crowd.peak, crowd.incident = now, 0, Emitted()
                crowd.last_full = now
                crowd.peak = max(crowd.peak, count)
            if crowd.since is None or crowd.last_full is None:
                continue
            lasted = (crowd.last_full - crowd.since).total_seconds()
            ended = (now - crowd.last_full).total_seconds() > rules.zone_exit_grace_s
            if lasted >= rules.crowd_s:
                incident = self._crowd_incident(zone.zone_id, crowd, now, closed=ended)
                if incident:
                    out.append(incident)
            if ended:
                crowd.since = crowd.last_full = None
        return out

    def _crowd_incident(
        self, zone_id: str, crowd: CrowdState, now: datetime, *, closed: bool
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
            closed,
        )
