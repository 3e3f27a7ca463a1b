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
A camera's minutes are kept by the worker that reads its partition (flows.kafka_io.placed_key).

Each camera's hour also gets a heatmap row in `heatmap_hours`: person-seconds per cell of a
64 x 36 grid where people's feet are, and the part spent nearly still (dwell). An hour
closes with its last minute, by the same watermark; a late frame is left out of it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from flows import snapshots
from flows.behaviour.frames import MINUTE_US, Frame, from_us
from flows.behaviour.zones import ZoneIndex
from flows.catalog import SiteCatalog
from flows.kafka_io import check_local, detections
from flows.progress import COUNTERS
from flows.sinks import PostgresSink
from shrinkwatch.contracts import foot
from shrinkwatch.settings import Settings
from warehouse.occupancy import HeatRow, LateFrame, MinuteRow, write_occupancy

WHOLE_VIEW = "*"
HOUR_US = 60 * MINUTE_US
GRID_W, GRID_H = 64, 36  # heatmap cells over the image (16:9, about 12 px at 768 px wide)
MAX_STEP_US = 5_000_000  # a frame stands for the time since the camera's last one, at most 5 s
STILL_SPEED = 0.25  # body heights per second: below it a person is dwelling, not passing
TRACK_MEMORY_US = 10_000_000  # forget a track's last position after 10 s unseen


@dataclass
class Tally:
    """One zone's minute so far."""

    frames: int = 0
    people_sum: int = 0
    peak: int = 0
    visitors: set[int] = field(default_factory=set)


@dataclass
class HeatTally:
    """One camera's hour so far: {cell: person-seconds} in all, and nearly still."""

    frames: int = 0
    person_s: dict[int, float] = field(default_factory=dict)
    dwell_s: dict[int, float] = field(default_factory=dict)
    written_frames: int = 0  # frames in the row last written early (the camera went quiet)


@dataclass
class CameraMinutes:
    """Open minutes of one camera: {minute start (us): {zone: tally}}, its open heatmap
    hours, where each track last stood, and its clock."""

    open: dict[int, dict[str, Tally]] = field(default_factory=dict)
    closed_before_us: int = 0  # minutes starting before this are closed
    max_us: int = 0
    heat: dict[int, HeatTally] = field(default_factory=dict)  # {hour start (us): tally}
    last_frame_us: int | None = None
    last_seen: dict[int, tuple[int, float, float, float]] = field(default_factory=dict)  # (us, x, y, h)
    camera_id: str = ""

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots from before the heatmap: no open hours, no positions, no camera id yet.
        self.__dict__.update({"heat": {}, "last_frame_us": None, "last_seen": {}, "camera_id": "", **state})

    def unwritten(self) -> bool:
        """Whether anything counted has not been written yet."""
        return bool(self.open) or any(t.frames != t.written_frames for t in self.heat.values())


def cell_of(x: float, y: float) -> int:
    """The heatmap cell (row * GRID_W + column) of a normalised image point."""
    column = min(max(int(x * GRID_W), 0), GRID_W - 1)
    row = min(max(int(y * GRID_H), 0), GRID_H - 1)
    return row * GRID_W + column


def add_heat(state: CameraMinutes, frame: Frame) -> None:
    """Count where each person of the frame stands, for the time since the camera's last
    frame (at most MAX_STEP_US); the part spent nearly still is dwell."""
    step_us = 0 if state.last_frame_us is None else min(max(frame.us - state.last_frame_us, 0), MAX_STEP_US)
    # An out-of-order frame (within lateness) adds no time: the interval was counted.
    state.last_frame_us = frame.us if state.last_frame_us is None else max(state.last_frame_us, frame.us)
    hour_us = frame.us - frame.us % HOUR_US
    tally = state.heat.get(hour_us)
    if tally is None:
        tally = state.heat[hour_us] = HeatTally()
    tally.frames += 1
    step_s = step_us / 1_000_000
    for person in frame.people:
        fx, fy = foot(person.box)
        height = max(person.box[3] - person.box[1], 1e-3)
        before = state.last_seen.get(person.track_id)
        state.last_seen[person.track_id] = (frame.us, fx, fy, height)
        if not step_s:
            continue
        cell = cell_of(fx, fy)
        tally.person_s[cell] = tally.person_s.get(cell, 0.0) + step_s
        if before is not None and frame.us > before[0]:
            speed = math.hypot(fx - before[1], fy - before[2]) / height / ((frame.us - before[0]) / 1_000_000)
            if speed < STILL_SPEED:
                tally.dwell_s[cell] = tally.dwell_s.get(cell, 0.0) + step_s
    if len(state.last_seen) > 4 * max(len(frame.people), 8):
        oldest = frame.us - TRACK_MEMORY_US
        state.last_seen = {t: seen for t, seen in state.last_seen.items() if seen[0] >= oldest}


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
        for zone in zones.containing(*foot(person.box)):
            inside[zone.zone_id].append(person.track_id)
    for zone_id, tracks in inside.items():
        tally = tallies.get(zone_id)
        if tally is None:
            tally = tallies[zone_id] = Tally()
        tally.frames += 1
        tally.people_sum += len(tracks)
        tally.peak = max(tally.peak, len(tracks))
        tally.visitors.update(tracks)
    add_heat(state, frame)
    state.max_us = max(state.max_us, frame.us)
    return close(state, frame.camera_id, state.max_us - lateness_us)


def close(state: CameraMinutes, camera_id: str, watermark_us: int, *, quiet: bool = False) -> list[Any]:
    """Rows of every open minute that ends at or before the watermark, and of every hour
    that ends there. `quiet` (the camera went silent, or the input ended): every open minute
    closes, and each hour with new counts is written as it stands but stays open, so frames
    of its later minutes still count and its row is written again, whole, when it ends."""
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
    # An hour closes with its last minute: the same watermark, the same late frames.
    # (An hour still here when the camera goes quiet has not ended by the frames' clock.)
    for hour_us in sorted(state.heat):
        heat = state.heat[hour_us]
        if not quiet and hour_us + HOUR_US <= watermark_us:
            del state.heat[hour_us]
        elif not quiet or heat.frames == heat.written_frames:
            continue
        heat.written_frames = heat.frames
        cells = sorted(heat.person_s)
        rows.append(
            HeatRow(
                camera_id,
                from_us(hour_us),
                GRID_W,
                GRID_H,
                heat.frames,
                cells,
                [round(heat.person_s[c], 3) for c in cells],
                [round(heat.dwell_s.get(c, 0.0), 3) for c in cells],
            )
        )
    return rows


class CameraOccupancy(StatefulBatchLogic[Frame, Any, bytes]):
    """One camera's open minutes; closes them by its frames' times, or when it goes quiet."""

    def __init__(
        self, catalog: SiteCatalog, lateness_s: float, idle_close_s: float, resume: bytes | None
    ) -> None:
        self.catalog = catalog
        self.lateness_us = round(lateness_s * 1_000_000)
        self.idle_close = timedelta(seconds=idle_close_s)
        self.state: CameraMinutes = snapshots.load(resume) if resume is not None else CameraMinutes()
        self.last_batch = datetime.now(UTC)
        self.checked = False

    def on_batch(self, frames: list[Frame]) -> tuple[list[Any], bool]:
        out: list[Any] = []
        camera_id = self.state.camera_id = frames[0].camera_id
        if not self.checked:
            self.checked = check_local(camera_id)
        zones = self.catalog.zones(camera_id)
        for frame in frames:
            out.extend(observe(self.state, frame, zones, self.lateness_us))
        self.last_batch = datetime.now(UTC)
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return self.last_batch + self.idle_close if self.state.unwritten() else None

    def on_notify(self) -> tuple[list[Any], bool]:
        # The camera went quiet: close what it left open (a frame for them later is late).
        return close(self.state, self.state.camera_id, 2**62, quiet=True), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return close(self.state, self.state.camera_id, 2**62, quiet=True), StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return snapshots.dump(self.state)


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
