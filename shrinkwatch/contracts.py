"""The Kafka messages of CONTRACTS §3: encode, decode and validate.

Import-light on purpose (pydantic and the standard library only): every part of
Shrinkwatch, and every data team's consumer, reads messages through this module.

A message is hostile input until decoded, so absurd values are bounded here, once, for every
reader: a message of more than MAX_MESSAGE_BYTES is refused before it is parsed; a frame holds at
most MAX_OBJECTS objects (Ultralytics keeps at most 300 per image), so one camera's huge frame
cannot swell the flows' per-camera state; a timestamp lies in [1970-01-01, 9999-01-01) UTC (any
time zone can convert it, and microseconds since the epoch stay exact); an integer fits the
warehouse column it goes to (bigint, or integer for `version`); a number is finite; text holds no
NUL and an id at most ID_MAX characters (PostgreSQL stores neither a NUL nor an unpaired
surrogate; the JSON parser refuses the latter). Each is a ContractError naming the field, so the
message is dead-lettered and every other camera goes on. A dead letter keeps at most
DEAD_LETTER_VALUE_MAX characters of the value it wraps, so it can always be published.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from shrinkwatch.errors import ShrinkwatchError, validation_messages

DETECTION_SCHEMA: Final = "shrinkwatch.detection/1"
CAMERA_HEALTH_SCHEMA: Final = "shrinkwatch.camera-health/1"
INCIDENT_SCHEMA: Final = "shrinkwatch.incident/1"
DEAD_LETTER_SCHEMA: Final = "shrinkwatch.dead-letter/1"

IncidentType = Literal[
    "loitering_high_value",
    "exit_without_checkout",
    "restricted_zone",
    "after_hours",
    "concealment_suspected",
    "crowding",
    "running_exit",
]
INCIDENT_TYPES: tuple[str, ...] = get_args(IncidentType)


def format_ts(value: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a `Z`, as the contracts write timestamps."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


MAX_MESSAGE_BYTES: Final = 1_000_000  # librdkafka's own default message.max.bytes
MAX_OBJECTS: Final = 1000
MAX_PROBLEMS: Final = 10  # a rejection names this many wrong fields, then counts the rest
ID_MAX: Final = 256
INT64_MAX: Final = 2**63 - 1
INT32_MAX: Final = 2**31 - 1
TS_MIN: Final = datetime(1970, 1, 1, tzinfo=UTC)
TS_MAX: Final = datetime(9999, 1, 1, tzinfo=UTC)
DEAD_LETTER_VALUE_MAX: Final = 65_536
DEAD_LETTER_ERROR_MAX: Final = 4_000
_DEAD_LETTER_RAW_MAX: Final = DEAD_LETTER_VALUE_MAX // 4 * 3  # bytes whose base64 fills the value


def _to_utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first day a datetime holds
        utc = None
    if utc is None or not TS_MIN <= utc < TS_MAX:
        msg = f"must lie between {format_ts(TS_MIN)} and {format_ts(TS_MAX)}"
        raise ValueError(msg)
    return utc


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as text (a NUL, an unpaired surrogate), or None when it can."""
    if "\x00" in text:
        return "must not contain a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be Unicode text (it holds an unpaired surrogate)"
    return None


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_ts, return_type=str, when_used="json"),
]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Text = Annotated[str, AfterValidator(_storable)]
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX), AfterValidator(_storable)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Count64 = Annotated[int, Field(ge=0, le=INT64_MAX)]


class ContractError(ShrinkwatchError):
    """A message does not follow its contract; the text names each wrong field."""


class _Message(BaseModel):
    # Unknown fields are ignored so that additive changes do not break old readers.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class DetectedObject(_Message):
    """One tracked object in a frame; coordinates are normalised to 0..1."""

    track_id: Int64 | None
    class_name: Id
    class_id: Count64
    conf: Unit
    box: tuple[Unit, Unit, Unit, Unit]
    keypoints: list[tuple[Unit, Unit, Unit]] | None = None

    @model_validator(mode="after")
    def _ordered_box(self) -> DetectedObject:
        x1, y1, x2, y2 = self.box
        if x2 < x1 or y2 < y1:
            msg = "box must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2"
            raise ValueError(msg)
        if self.keypoints is not None and len(self.keypoints) != 17:
            msg = f"keypoints must hold the 17 COCO keypoints, got {len(self.keypoints)}"
            raise ValueError(msg)
        return self

    @model_serializer(mode="wrap")
    def _omit_absent_keypoints(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("keypoints") is None:
            data.pop("keypoints", None)
        return data


def foot(box: Sequence[float]) -> tuple[float, float]:
    """Where a person stands: the bottom centre of their box (x1, y1, x2, y2), in the box's own
    coordinates. The one rule for every use of it: which zones a person is in, their speed,
    the heatmap cells, the path drawn on an incident's snapshot."""
    return ((box[0] + box[2]) / 2.0, box[3])


class Detection(_Message):
    """`sw.detections`: one analysed frame of one camera (key = camera_id)."""

    schema_: Literal["shrinkwatch.detection/1"] = Field(DETECTION_SCHEMA, alias="schema")
    camera_id: Id
    store_id: Id
    frame_id: Count64
    ts: Timestamp
    frame_w: int = Field(gt=0, le=INT32_MAX)
    frame_h: int = Field(gt=0, le=INT32_MAX)
    objects: list[DetectedObject] = Field(max_length=MAX_OBJECTS)


class CameraHealth(_Message):
    """`sw.camera-health`: the state of one camera reader (key = camera_id)."""

    schema_: Literal["shrinkwatch.camera-health/1"] = Field(CAMERA_HEALTH_SCHEMA, alias="schema")
    camera_id: Id
    store_id: Id
    ts: Timestamp
    status: Literal["online", "degraded", "offline"]
    fps_in: float = Field(ge=0)
    fps_analysed: float = Field(ge=0)
    last_frame_ts: Timestamp | None = None
    error: Text | None = None


class Signal(_Message):
    """One explanation of a risk score: what was measured and how much it added."""

    name: Id
    value: float
    contribution: float


class Incident(_Message):
    """`sw.incidents`: one state of an incident (key = incident_id); highest version wins."""

    schema_: Literal["shrinkwatch.incident/1"] = Field(INCIDENT_SCHEMA, alias="schema")
    incident_id: Id
    version: int = Field(ge=1, le=INT32_MAX)
    store_id: Id
    camera_id: Id
    track_id: Int64 | None
    incident_type: IncidentType
    risk_score: Unit
    risk_level: Literal["low", "medium", "high"]
    status: Literal["open", "closed"]
    started_at: Timestamp
    updated_at: Timestamp
    ended_at: Timestamp | None = None
    zone_ids: list[Id]
    signals: list[Signal]
    # Where its evidence snapshot is (or will be) under the evidence folder: named by the
    # flow when it emits the incident (`snapshot_name`), written by the camera reader that
    # saw it a moment later. Readers treat a missing file as "not saved yet". None in
    # messages of earlier flows, which left it to the camera reader to fill in.
    snapshot: Text | None = None


def snapshot_name(camera_id: str, incident_id: str) -> str:
    """An incident's evidence snapshot, relative to the evidence folder; its clip is the same
    name with `.mp4` (`.avi` where ffmpeg is missing). Known when the incident is emitted, so
    every reader of the incident knows where to look without asking anyone."""
    return f"{camera_id}/{incident_id}.jpg"


class DeadLetter(_Message):
    """`sw.dlq`: a message that could not be processed (key = the source topic)."""

    schema_: Literal["shrinkwatch.dead-letter/1"] = Field(DEAD_LETTER_SCHEMA, alias="schema")
    source_topic: str
    partition: Int64 | None
    offset: Int64 | None
    ts: Timestamp
    error: str
    value: str | None

    @classmethod
    def for_raw(
        cls,
        *,
        source_topic: str,
        partition: int | None,
        offset: int | None,
        error: str,
        raw: bytes | None,
        ts: datetime | None = None,
    ) -> DeadLetter:
        """Wrap raw bytes: kept as text when UTF-8, else as base64; at most DEAD_LETTER_VALUE_MAX
        characters of it (the error says when the value was cut), and an error of at most
        DEAD_LETTER_ERROR_MAX, so that the dead letter itself can always be published."""
        value: str | None = None
        if raw is not None:
            try:
                value = raw.decode("utf-8")
                cut, whole = value[:DEAD_LETTER_VALUE_MAX], f"{len(value)} characters"
            except UnicodeDecodeError:
                kept = raw[:_DEAD_LETTER_RAW_MAX]
                cut, whole = base64.b64encode(kept).decode("ascii"), f"{len(raw)} bytes, base64"
                value = cut if len(kept) == len(raw) else None
            if cut != value:
                note = f" (value: the start of {whole})"
                error, value = _cut(error, DEAD_LETTER_ERROR_MAX - len(note)) + note, cut
        return cls(
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            ts=ts or datetime.now(UTC),
            error=_cut(error),
            value=value,
        )


def _cut(text: str, limit: int = DEAD_LETTER_ERROR_MAX) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def risk_level(score: float, medium: float = 0.4, high: float = 0.7) -> str:
    """CONTRACTS risk level: low < medium <= score < high <= high."""
    if score >= high:
        return "high"
    if score >= medium:
        return "medium"
    return "low"


M = TypeVar("M", bound=_Message)


def encode(message: _Message) -> bytes:
    """Serialise a message to its UTF-8 JSON wire form."""
    return message.model_dump_json(by_alias=True).encode("utf-8")


def to_dict(message: _Message) -> dict[str, Any]:
    """The message as the JSON-compatible dict that `encode` writes."""
    return message.model_dump(mode="json", by_alias=True)


def decode(raw: bytes | str | None, kind: type[M]) -> M:
    """Parse and validate one message; ContractError names every wrong field."""
    if raw is None:
        msg = "empty message (null value)"
        raise ContractError(msg)
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
    if size > MAX_MESSAGE_BYTES:
        msg = f"message too large: {size} bytes, at most {MAX_MESSAGE_BYTES}"
        raise ContractError(msg)
    try:
        return kind.model_validate_json(raw)
    except ValidationError as exc:
        problems = validation_messages(exc)
        if any(path == "(root)" and "JSON" in text for path, text in problems):
            msg = f"not valid JSON: {problems[0][1]}"
            raise ContractError(msg) from None
        raise ContractError(_problems_text(problems)) from None


def _problems_text(problems: list[tuple[str, str]]) -> str:
    """`path: what` for the first MAX_PROBLEMS problems, then how many more there are."""
    text = "; ".join(f"{path}: {what}" for path, what in problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    return f"{text}; and {more} more" if more > 0 else text


def validate(data: dict[str, Any], kind: type[M]) -> M:
    """Validate an already-parsed JSON object against a contract."""
    try:
        return kind.model_validate(json.loads(json.dumps(data, allow_nan=False)))
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            msg = _problems_text(validation_messages(exc))
        else:
            msg = f"not JSON-serialisable: {exc}"
        raise ContractError(msg) from None
