"""Frames as the behaviour rules need them, parsed straight from `sw.detections` bytes.

The flows read every frame of every camera, so parsing is on the hot path. `parse_frame`
checks a message against CONTRACTS §3 by hand for the common, well-formed case and hands
anything unusual (a missing `schema`, a number written as a string, NaN, ...)
to the pydantic contract in `shrinkwatch.contracts`, which decides and explains. The fast
path accepts only messages that the contract accepts, so both paths agree on what is valid
and every rejection carries the contract's own error text. That includes the contract's bounds
on absurd values (its docstring): a message over MAX_MESSAGE_BYTES is never parsed, and one
with more than MAX_OBJECTS objects, a timestamp out of range or an integer too large for its
column is the contract's to reject; any `\\u` escape (the only way JSON writes a NUL or an
unpaired surrogate) sends the message to the contract too, which the detector never writes, and
so does a field this version does not know (the contract ignores it, within its parser's limits).

Times inside the rules are integer microseconds since the Unix epoch (`*_us`): exact
differences, no rounding at a threshold, and cheap arithmetic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shrinkwatch.contracts import (
    DETECTION_SCHEMA,
    ID_MAX,
    INT32_MAX,
    INT64_MAX,
    MAX_MESSAGE_BYTES,
    MAX_OBJECTS,
    TS_MAX,
    TS_MIN,
    Detection,
    decode,
)

BAG_CLASSES = frozenset({"backpack", "handbag", "suitcase"})
Box = Sequence[float]  # x1, y1, x2, y2, normalised
Keypoints = Sequence[Sequence[float]]

# What the fast path trusts `datetime.fromisoformat` with: the contracts' own form.
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)\Z", re.ASCII)


def _reject_constant(name: str) -> float:
    raise ValueError(name)


# JSON's NaN/Infinity extensions go to the contract (which rejects them).
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


MINUTE_US = 60_000_000


def to_us(ts: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact)."""
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def from_us(us: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


@dataclass(slots=True)
class Person:
    """A tracked person in one frame (where they stand: shrinkwatch.contracts.foot of the box)."""

    track_id: int
    box: Box
    keypoints: Keypoints | None


@dataclass(slots=True)
class Frame:
    """One analysed frame: who is in it (tracked people) and which bags."""

    camera_id: str
    store_id: str
    frame_id: int
    ts: datetime
    us: int
    people: list[Person]
    bags: list[Box]

    @classmethod
    def from_detection(cls, detection: Detection) -> Frame:
        """From a validated contract message."""
        people = [
            Person(o.track_id, o.box, o.keypoints)
            for o in detection.objects
            if o.class_name == "person" and o.track_id is not None
        ]
        bags: list[Box] = [o.box for o in detection.objects if o.class_name in BAG_CLASSES]
        return cls(
            detection.camera_id,
            detection.store_id,
            detection.frame_id,
            detection.ts,
            to_us(detection.ts),
            people,
            bags,
        )


def _keypoints_ok(points: object) -> bool:
    if type(points) is not list or len(points) != 17:
        return False
    for point in points:
        if type(point) is not list or len(point) != 3 or not (min(point) >= 0.0 and max(point) <= 1.0):
            return False
    return True


def _fast(raw: bytes) -> Frame | None:
    """The frame when `raw` is plainly valid; None when the contract must decide."""
    if len(raw) > MAX_MESSAGE_BYTES or b"\\u" in raw:
        return None
    try:
        data = _JSON.decode(raw.decode("utf-8"))
        # Fields this version does not know go to the contract, which ignores them, but within
        # its parser's limits (how deep a value nests, ...) that Python's parser does not share.
        if data["schema"] != DETECTION_SCHEMA or len(data) != 8:
            return None
        camera_id, store_id, frame_id = data["camera_id"], data["store_id"], data["frame_id"]
        ts_text, width, height = data["ts"], data["frame_w"], data["frame_h"]
        if not (
            type(camera_id) is str
            and 0 < len(camera_id) <= ID_MAX
            and type(store_id) is str
            and 0 < len(store_id) <= ID_MAX
            and type(frame_id) is int
            and 0 <= frame_id <= INT64_MAX
            and type(width) is int
            and 0 < width <= INT32_MAX
            and type(height) is int
            and 0 < height <= INT32_MAX
            and type(ts_text) is str
            and _TS.match(ts_text)
        ):
            return None
        ts = datetime.fromisoformat(ts_text).astimezone(UTC)
        if not TS_MIN <= ts < TS_MAX:
            return None
        people: list[Person] = []
        bags: list[Box] = []
        objects = data["objects"]
        if type(objects) is not list or len(objects) > MAX_OBJECTS:
            return None
        for obj in objects:
            name, track_id, class_id, box = obj["class_name"], obj["track_id"], obj["class_id"], obj["box"]
            if not (
                type(name) is str
                and 0 < len(name) <= ID_MAX
                and (track_id is None or (type(track_id) is int and -INT64_MAX - 1 <= track_id <= INT64_MAX))
                and type(class_id) is int
                and 0 <= class_id <= INT64_MAX
                and 0.0 <= obj["conf"] <= 1.0
                and type(box) is list
                and len(box) == 4
                # Comparisons raise TypeError for anything but numbers (and booleans, which
                # the contract reads as 0/1 too).
                and min(box) >= 0.0
                and max(box) <= 1.0
                and box[0] <= box[2]
                and box[1] <= box[3]
            ):
                return None
            points = obj.get("keypoints")
            if len(obj) != (5 if "keypoints" not in obj else 6):
                return None
            if points is not None and not _keypoints_ok(points):
                return None
            if name == "person":
                if track_id is not None:
                    people.append(Person(track_id, box, points))
            elif name in BAG_CLASSES:
                bags.append(box)
        return Frame(camera_id, store_id, frame_id, ts, to_us(ts), people, bags)
    # Not UTF-8 or not JSON (ValueError), nested too deep for Python's parser (RecursionError),
    # a time that leaves the calendar in UTC (OverflowError), ...: the contract explains.
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError, OverflowError):
        return None


def parse_frame(raw: bytes | None) -> Frame:
    """A frame from a `sw.detections` value; ContractError (naming the field) when invalid."""
    if raw is not None:
        frame = _fast(raw)
        if frame is not None:
            return frame
    return Frame.from_detection(decode(raw, Detection))
