"""The occupancy dataflow: footfall and occupancy per camera and zone, per minute of frame time.

For every camera and each of its zones (and `*`, the whole view), each minute gets one row
in `occupancy_minutes`: frames seen, distinct people (footfall: tracks seen in the zone that
minute), average and peak people at once. Rows are upserts keyed by (camera, zone, minute),
so a replay after a restart writes the same values again.

Windows are tumbling minutes of event time with a watermark driven by the camera's own
frames, not by wall time: a minute closes once a frame of that camera is `lateness_s` past
its end. Bytewax's EventClock advances its watermark with the system clock, so after a
pause (the flow stopped, a detector's buffered backlog arriving) whole minutes of frames
would turn "late"; frames of one camera arrive in order (one Kafka key), so their own
times are the better clock. A camera that stops sending has its open minutes closed after
`idle_close_s` of wall time. A frame for a minute already closed is late: it is stored in
`occupancy_late` and counted on that minute's rows (`late_frames`), never dropped silently.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from flows.catalog import SiteCatalog
from flows.frames import MINUTE_US, Frame, from_us
from flows.kafka_io import detections
from flows.progress import COUNTERS
from flows.sinks import PostgresSink
from flows.zones import ZoneIndex
from shrinkwatch.settings import Settings
from warehouse.occupancy import LateFrame, MinuteRow, write_occupancy

WHOLE_VIEW = "*"


@dataclass
class Tally:
    """One zone's minute so far."""

    frames: int = 0
    people_sum: int = 0
    peak: int = 0
    visitors: set[int] = field(default_factory=set)


@dataclass
class CameraMinutes:
    """Open minutes of one camera: {minute start (us): {zone: tally}}, and its clock."""

    open: dict[int, dict[str, Tally]] = field(default_factory=dict)
    closed_before_us: int = 0  # minutes starting before this are closed
    max_us: int = 0


def observe(state: CameraMinutes, frame: Frame, zones: ZoneIndex, lateness_us: int) -> list[Any]:
    """Count one frame; return the rows of minutes it closes, or a LateFrame."""
    minute_us = frame.us - frame.us % MINUTE_US
    if minute_us < state.closed_before_us:
        return [LateFrame(frame.camera_id, frame.ts, frame.frame_id, from_us(minute_us))]
    tallies = state.open.setdefault(minute_us, {})
    inside: dict[str, list[int]] = {WHOLE_VIEW: []}
    for zone in zones:
        inside[zone.zone_id] = []
    for person in frame.people:
        inside[WHOLE_VIEW].append(person.track_id)
        for zone in zones.containing(*person.foot):
            inside[zone.zone_id].append(person.track_id)
    for zone_id, tracks in inside.items():
        tally = tallies.get(zone_id)
        if tally is None:
            tally = tallies[zone_id] = Tally()
        tally.frames += 1
        tally.people_sum += len(tracks)
        tally.peak = max(tally.peak, len(tracks))
        tally.visitors.update(tracks)
    state.max_us = max(state.max_us, frame.us)
    return close(state, frame.camera_id, state.max_us - lateness_us)


def close(state: CameraMinutes, camera_id: str, watermark_us: int) -> list[Any]:
    """Rows of every open minute that ends at or before the watermark."""
    rows: list[Any] = []
    for minute_us in sorted(m for m in state.open if m + MINUTE_US <= watermark_us):
        minute = from_us(minute_us)
        for zone_id, t in sorted(state.open.pop(minute_us).items()):
            rows.append(
                MinuteRow(
                    camera_id,
                    zone_id,
                    minute,
                    t.frames,
                    len(t.visitors),
                    round(t.people_sum / t.frames, 3),
                    t.peak,
                )
            )
        state.closed_before_us = max(state.closed_before_us, minute_us + MINUTE_US)
    return rows


class CameraOccupancy(StatefulBatchLogic[Frame, Any, bytes]):
    """One camera's open minutes; closes them by its frames' times, or when it goes quiet."""

    def __init__(
        self, catalog: SiteCatalog, lateness_s: float, idle_close_s: float, resume: bytes | None
    ) -> None:
        self.catalog = catalog
        self.lateness_us = round(lateness_s * 1_000_000)
        self.idle_close = timedelta(seconds=idle_close_s)
        self.state: CameraMinutes = pickle.loads(resume) if resume is not None else CameraMinutes()
        self.camera_id = ""
        self.last_batch = datetime.now(UTC)

    def on_batch(self, frames: list[Frame]) -> tuple[list[Any], bool]:
        out: list[Any] = []
        self.camera_id = frames[0].camera_id
        zones = self.catalog.zones(self.camera_id)
        for frame in frames:
            out.extend(observe(self.state, frame, zones, self.lateness_us))
        self.last_batch = datetime.now(UTC)
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return self.last_batch + self.idle_close if self.state.open else None

    def on_notify(self) -> tuple[list[Any], bool]:
        # The camera went quiet: close what it left open (a frame for them later is late).
        return close(self.state, self.camera_id, 2**62), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return close(self.state, self.camera_id, 2**62), StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


def build_flow(settings: Settings, catalog: SiteCatalog | None = None, *, tail: bool = True) -> Dataflow:
    """The occupancy dataflow for these settings (`tail=False` stops at the end of the topic)."""
    site = catalog or SiteCatalog.for_settings(settings)
    flow = Dataflow("occupancy")
    # Bad messages are counted here and dead-lettered once, by the incidents flow beside it.
    frames = detections("detections", flow, settings, tail=tail, dlq=False).frames
    minutes = op.stateful_batch(
        "minutes",
        frames,
        lambda resume: CameraOccupancy(
            site, settings.occupancy_lateness_s, settings.occupancy_idle_close_s, resume
        ),
    )
    closed = op.inspect("count_late", op.key_rm("rows", minutes), _count_late)
    op.output("store", closed, PostgresSink(settings.database_dsn, write_occupancy))
    return flow


def _count_late(_step: str, item: Any) -> None:
    if isinstance(item, LateFrame):
        COUNTERS.late_frames += 1
