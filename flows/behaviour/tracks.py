"""The behaviour state of one camera: its tracks (people), its crowds, and the rule thresholds.

Plain, picklable values: the incidents flow snapshots them for recovery (and flows.snapshots
reads the snapshots of earlier versions, which named these classes by older module paths).
Times are integer microseconds since the epoch (`*_us`, exact, cheap to compare); durations
are seconds. Extension signals (flows.behaviour.signals) read `TrackState`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shrinkwatch.site_file import THRESHOLD_DEFAULTS


def seconds(later_us: int, earlier_us: int) -> float:
    """The time between two instants, in seconds."""
    return (later_us - earlier_us) / 1_000_000


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds of one store (seconds of frame time unless named otherwise); the
    defaults are THRESHOLD_DEFAULTS, the one list the site file and the settings share."""

    loiter_s: float = THRESHOLD_DEFAULTS["loiter_s"]
    restricted_s: float = THRESHOLD_DEFAULTS["restricted_s"]
    after_hours_s: float = THRESHOLD_DEFAULTS["after_hours_s"]
    concealment_s: float = THRESHOLD_DEFAULTS["concealment_s"]
    crowd_people: int = int(THRESHOLD_DEFAULTS["crowd_people"])
    crowd_s: float = THRESHOLD_DEFAULTS["crowd_s"]
    running_speed: float = THRESHOLD_DEFAULTS["running_speed"]  # body heights per second
    running_s: float = THRESHOLD_DEFAULTS["running_s"]
    zone_exit_grace_s: float = THRESHOLD_DEFAULTS["zone_exit_grace_s"]
    track_timeout_s: float = THRESHOLD_DEFAULTS["track_timeout_s"]
    incident_update_s: float = THRESHOLD_DEFAULTS["incident_update_s"]


@dataclass(slots=True)
class Sustained:
    """A condition held without a break: since when, and the longest run so far."""

    since_us: int | None = None
    longest_s: float = 0.0

    def update(self, active: bool, now_us: int, *, restart: bool = False) -> float:
        """Note the condition at `now_us` (`restart`: a gap broke the run even though it
        holds); return the current run in seconds, 0 when it does not hold."""
        if not active:
            self.since_us = None
            return 0.0
        if self.since_us is None or restart:
            self.since_us = now_us
        run = seconds(now_us, self.since_us)
        if run > self.longest_s:
            self.longest_s = run
        return run


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
    last_seen: datetime  # the datetime for output; last_us is the same instant, for the hot path
    last_us: int
    # (time, foot x, foot y, box height) of the last frames
    samples: deque[tuple[int, float, float, float]] = field(default_factory=lambda: deque(maxlen=12))
    visits: dict[str, Visit] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)  # zone ids in the order entered
    max_dwell_high_value: float = 0.0  # seconds
    high_value_pending: bool = False  # a high_value zone visited since the last checkout
    skipped_checkout: bool = False
    restricted_s: float = 0.0
    after_hours: Sustained = field(default_factory=Sustained)  # present while the store is closed
    concealment: Sustained = field(default_factory=Sustained)  # the pose cue in a high_value zone
    running: Sustained = field(default_factory=Sustained)  # faster than the running speed
    ran_at_us: int | None = None  # last time the running lasted long enough
    running_exit: bool = False
    bag_frames: int = 0
    incident: Emitted = field(default_factory=Emitted)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots of flows before these runs were Sustained values (recovery across an
        # upgrade): carry their fields over rather than fail on resume.
        if "after_hours" not in state:
            old = state.pop
            state["after_hours"] = Sustained(old("after_hours_since_us", None), old("after_hours_s", 0.0))
            state["concealment"] = Sustained(old("cue_since_us", None), old("concealment_s", 0.0))
            state["running"] = Sustained(old("running_since_us", None))
        self.__dict__.update(state)

    @property
    def after_hours_s(self) -> float:
        """Longest continuous presence while the store was closed, in seconds."""
        return self.after_hours.longest_s

    @property
    def concealment_s(self) -> float:
        """Longest sustained concealment cue, in seconds."""
        return self.concealment.longest_s

    # The fields these values replaced, for extension signals written against them.
    @property
    def after_hours_since_us(self) -> int | None:
        return self.after_hours.since_us

    @property
    def cue_since_us(self) -> int | None:
        return self.concealment.since_us

    @property
    def running_since_us(self) -> int | None:
        return self.running.since_us


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
