"""The behaviour engine: one camera's frames in, incident versions out.

State is kept per camera (a track's end is only visible at the camera level: a frame that
no longer shows it). Every time is a frame's capture time, so a replay gives exactly the
results of the live run; inside the state, times are integer microseconds since the epoch
(`*_us`), durations are seconds. One incident per (camera, track) visit: it opens when the first
pattern triggers, is updated while the track lives (its type is the pattern contributing
most to its risk) and is closed when the track ends. Crowding is about a zone, not one
person: its incidents have no track.

The state is flows.behaviour.tracks, the signals and patterns flows.behaviour.signals, the
score flows.behaviour.risk.

Patterns (thresholds per store, `Thresholds`):
- loitering_high_value: continuous dwell in a `high_value` zone >= loiter_s
- exit_without_checkout: reached an `exit` zone after a `high_value` zone without a
  `checkout` zone in between
- restricted_zone: continuous presence in a `restricted` zone >= restricted_s
- after_hours: tracked for >= after_hours_s while the store is closed (its hours, its zone)
- concealment_suspected: the pose cue (flows.behaviour.posture) sustained >= concealment_s in a
  `high_value` zone
- running_exit: moving faster than running_speed body-heights per second for running_s,
  then in an `exit` zone within 3 s
- crowding: >= crowd_people people at once in one `high_value` zone for crowd_s
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime

from flows.behaviour.frames import Box, Frame, Person
from flows.behaviour.posture import concealment_cue
from flows.behaviour.risk import score
from flows.behaviour.signals import PATTERNS, crowd_strength, track_strengths, triggered
from flows.behaviour.stores import StoreInfo
from flows.behaviour.tracks import (
    CameraState,
    CrowdState,
    Emitted,
    TrackState,
    Visit,
    seconds,
)
from flows.behaviour.zones import ZoneArea, ZoneIndex
from shrinkwatch.contracts import Detection, Incident, IncidentType, Signal, foot, risk_level, snapshot_name

INCIDENT_NAMESPACE = uuid.UUID("6f1d3c0e-5b0a-4c52-9a43-2f3f7b9e8a10")
RUN_TO_EXIT_S = 3.0
SPEED_WINDOW_US = 600_000


def track_incident_id(camera_id: str, track_id: int, first_seen: datetime) -> str:
    """Deterministic id of a track visit's incident."""
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"track/{camera_id}/{track_id}/{first_seen.isoformat()}"))


def crowd_incident_id(camera_id: str, zone_id: str, since: datetime) -> str:
    """Deterministic id of a crowding episode."""
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"crowd/{camera_id}/{zone_id}/{since.isoformat()}"))


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class Draft:
    """What an incident version would say, before `Emitted` decides whether to publish it."""

    incident_id: str
    track_id: int | None
    kind: IncidentType
    total: float
    signals: list[Signal]
    detail: tuple[object, ...]  # what, besides type/status/level, makes a version new
    started: datetime
    last: datetime
    zone_ids: list[str]


class BehaviourEngine:
    """Advances one camera's state by one frame; pure apart from the zone/store lookups given."""

    def __init__(self, camera_id: str, zones: ZoneIndex | list[ZoneArea], store: StoreInfo) -> None:
        self.camera_id, self.store = camera_id, store
        self.zones = zones if isinstance(zones, ZoneIndex) else ZoneIndex(zones)
        self._containing = self.zones.containing
        self.rules = store.thresholds
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
        if self.zones.high_value:
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
        fx, fy = foot(box)
        height = box[3] - box[1]
        track.samples.append((now_us, fx, fy, height if height > 1e-3 else 1e-3))
        in_high_value: list[str] = []
        in_exit = False
        for zone in self._containing(fx, fy):
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
        # After hours: continuous presence while the store is closed. (Each Sustained value is
        # updated only while its condition holds or held at the last sighting: the common
        # case, nothing going on, costs no call on this hot path.)
        after_hours = track.after_hours
        if not open_now or after_hours.since_us is not None:
            after_hours.update(not open_now, now_us)
        # Bags carried: a bag box overlapping the person's box.
        carried = [bag for bag in frame.bags if _overlaps(box, bag)] if frame.bags else []
        if carried:
            track.bag_frames += 1
        # Concealment: the pose cue, sustained, inside a high_value zone (a track unseen for
        # longer than the exit grace starts a new run).
        concealing = bool(in_high_value) and concealment_cue(person.keypoints, carried)
        if concealing or track.concealment.since_us is not None:
            track.concealment.update(concealing, now_us, restart=now_us - previous_us > self.grace_us)
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
        heights = []  # gathered here: a comprehension would cost a call of its own on Python 3.11
        for sample in reversed(samples):
            if sample[0] < cutoff:
                break
            window.append(sample)
            heights.append(sample[3])
        speed = 0.0
        if len(window) > 1:
            t1, x1, y1, _ = window[0]
            t0, x0, y0, _ = window[-1]
            heights.sort()
            height = heights[len(window) // 2]
            if t1 > t0:
                speed = math.hypot(x1 - x0, y1 - y0) / height / seconds(t1, t0)
        running = speed >= rules.running_speed
        if running or track.running.since_us is not None:
            run_s = track.running.update(running, now_us)
            if running and run_s >= rules.running_s:
                track.ran_at_us = now_us
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
        draft = Draft(
            incident_id=track_incident_id(self.camera_id, track_id, track.first_seen),
            track_id=track_id,
            kind=max(fired)[1],
            total=total,
            signals=signals,
            detail=tuple(sorted(by_name)),
            started=track.first_seen,
            last=track.last_seen,
            zone_ids=list(dict.fromkeys(track.path)),
        )
        return self._emit(track.incident, draft, now, now_us, closed)

    def _emit(
        self, emitted: Emitted, draft: Draft, now: datetime, now_us: int, closed: bool
    ) -> Incident | None:
        """The next version of an incident, or None when nothing worth publishing changed."""
        level = risk_level(draft.total)
        status = "closed" if closed else "open"
        signature = (draft.kind, status, level, draft.detail)
        values = tuple(s.value for s in draft.signals)
        if not emitted.wants(signature, values, now_us, self.rules.incident_update_s, closed):
            return None
        return Incident(
            incident_id=draft.incident_id,
            version=emitted.record(signature, values, now_us),
            store_id=self.store.store_id,
            camera_id=self.camera_id,
            track_id=draft.track_id,
            incident_type=draft.kind,
            risk_score=draft.total,
            risk_level=level,
            status=status,
            started_at=draft.started,
            updated_at=draft.last if closed else now,
            ended_at=draft.last if closed else None,
            zone_ids=draft.zone_ids,
            signals=draft.signals,
            snapshot=snapshot_name(self.camera_id, draft.incident_id),
        )

    # -- zones -----------------------------------------------------------------------------

    def _crowds(
        self, state: CameraState, counts: dict[str, int], now: datetime, now_us: int
    ) -> list[Incident]:
        rules = self.rules
        out = []
        for zone in self.zones.high_value:
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
        total, signals = score(crowd_strength(crowd.peak, self.rules), self.store.weights)
        draft = Draft(
            incident_id=crowd_incident_id(self.camera_id, zone_id, crowd.since),
            track_id=None,
            kind="crowding",
            total=total,
            signals=signals,
            detail=(crowd.peak,),
            started=crowd.since,
            last=crowd.last_full,
            zone_ids=[zone_id],
        )
        return self._emit(crowd.incident, draft, now, now_us, closed)
