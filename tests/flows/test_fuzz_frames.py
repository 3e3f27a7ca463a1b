"""Hostile `sw.detections` values: the flows' fast parser (flows.behaviour.frames) and the contract
(shrinkwatch.contracts) on arbitrary bytes, arbitrary JSON and mutated valid frames.

Whatever arrives, both give a frame or a ContractError whose text says what is wrong (never
another exception, which would stop the flow for every camera), and they agree: the same frame,
or the same error text. An oversize frame is refused with a clear error, its dead letter stays
small enough to publish, and the other cameras' frames go on (through real Kafka).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz
from hypothesis import strategies as st

from flows.behaviour.frames import Frame, _fast, from_us, parse_frame
from flows.kafka_io import detections
from shrinkwatch.contracts import (
    DEAD_LETTER_ERROR_MAX,
    DEAD_LETTER_VALUE_MAX,
    INT64_MAX,
    MAX_MESSAGE_BYTES,
    MAX_OBJECTS,
    ContractError,
    DeadLetter,
    Detection,
    decode,
    encode,
    text_problem,
)
from shrinkwatch.settings import Settings
from tests.factories import frame, person
from tests.support import produce, read_all

FUZZ = fuzz(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEYPOINTS = [[0.5, 0.5, 0.9]] * 17


def valid() -> dict[str, Any]:
    """A frame with a tracked person, a posed one, an untracked one and a bag."""
    posed = person(4, (0.6, 0.9)).model_copy(update={"keypoints": [tuple(p) for p in KEYPOINTS]})
    untracked = person(5, (0.1, 0.9)).model_copy(update={"track_id": None})
    bag = person(6, (0.3, 0.6)).model_copy(update={"class_name": "handbag", "class_id": 26})
    data: dict[str, Any] = json.loads(
        encode(frame("cam-1", 7, 1.5, [person(3, (0.3, 0.8)), posed, untracked, bag]))
    )
    return data


# JSON as any producer might write it, with the values that have broken parsers before: huge and
# negative integers, non-finite and tiny floats, timestamps at the calendar's ends, NUL and
# unpaired surrogates, long and non-ASCII text.
TROUBLEMAKERS: list[Any] = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x" * 300,
    "٢٠٢٦-١١-٢٨T10:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1969-12-31T23:59:59.5Z",
    "2026-11-28T10:00:00.1234567Z",
    "2026-11-28T24:00:00Z",
    "2026-11-28T10:00:60Z",
    "2026-11-28T10:00:00+23:59",
    "2026-11-28T10:00:00+24:00",
    "shrinkwatch.detection/1",
    "person",
    "handbag",
    0,
    -1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**30,
    True,
    1.5,
    1e-320,
    [],
    {},
    [0.1, 0.2, 0.3, 0.4],
    [[0.5, 0.5, 0.9]] * 17,
]
HOSTILE = st.sampled_from(TROUBLEMAKERS)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    HOSTILE,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON value."""
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, (*prefix, i))
    return out


# Where a mutation lands: every field of the frame and of its first two objects, one keypoint.
def targets(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    keep = [p for p in paths(data) if not (len(p) > 4 and p[3] == "keypoints" and (p[4] > 0 or len(p) > 5))]
    return [*keep, ("extra",), ("objects", 0, "extra")]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[tuple[Any, ...], bytes]:
    """A valid frame with one value replaced (half the time by a known troublemaker), deleted or
    added; the path that changed."""
    data = valid()
    path = draw(st.sampled_from(targets(data)))
    target = data
    for key in path[:-1]:
        target = target[key]
    if isinstance(target, dict) and path[-1] in target and draw(st.integers(0, 9)) == 0:
        del target[path[-1]]
    else:
        target[path[-1]] = draw(st.one_of(HOSTILE, JSON))
    return path, json.dumps(data).encode("utf-8", "surrogatepass")


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """ISO-8601 text across the whole calendar, with offsets as far as the format goes."""
    year, month, day = draw(st.integers(1, 9999)), draw(st.integers(1, 12)), draw(st.integers(1, 31))
    hour, minute, second = draw(st.integers(0, 24)), draw(st.integers(0, 59)), draw(st.integers(0, 60))
    fraction = draw(st.sampled_from(["", ".5", ".123", ".123456", ".1234567"]))
    zone = draw(st.one_of(st.just("Z"), st.from_regex(r"[+-][0-2]\d:[0-5]\d", fullmatch=True), st.just("")))
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"


def storable(f: Frame) -> None:
    """What the flows and the warehouse do with an accepted frame cannot fail on it: its text
    is storable, its integers fit bigint, its time converts to any zone and back exactly."""
    for text in [f.camera_id, f.store_id]:
        assert text_problem(text) is None
    assert 0 <= f.frame_id <= INT64_MAX
    assert all(-INT64_MAX - 1 <= p.track_id <= INT64_MAX for p in f.people)
    assert from_us(f.us) == f.ts
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        assert f.ts.astimezone(ZoneInfo(zone)).astimezone(UTC) == f.ts


def crowded(camera_id: str, people: int) -> bytes:
    """A frame of `people` tracked people, written by hand: the contract's own model refuses to
    build one of more than MAX_OBJECTS."""
    data = json.loads(encode(frame(camera_id, 1, 0.0, [])))
    one = json.loads(encode(person(0, (0.5, 0.9))))
    data["objects"] = [one | {"track_id": i} for i in range(people)]
    return json.dumps(data).encode()


def outcome(parse: Any, raw: bytes | None) -> Frame | str:
    """The frame, or the text of the ContractError: anything else fails the test."""
    try:
        result = parse(raw)
    except ContractError as exc:
        text = str(exc)
        assert text and "Traceback" not in text
        return text
    assert isinstance(result, Frame)
    return result


def contract(raw: bytes | None) -> Frame:
    return Frame.from_detection(decode(raw, Detection))


def as_tuple(f: Frame) -> tuple[Any, ...]:
    return (
        f.camera_id,
        f.store_id,
        f.frame_id,
        f.ts,
        f.us,
        [(p.track_id, list(p.box), p.keypoints and [list(k) for k in p.keypoints]) for p in f.people],
        [list(b) for b in f.bags],
    )


def agree(raw: bytes) -> Frame | str:
    """Both paths give the same frame or the same error; the fast path never accepts more."""
    want = outcome(contract, raw)
    got = outcome(parse_frame, raw)
    fast = _fast(raw)
    if isinstance(want, str):
        assert got == want and fast is None
    else:
        assert isinstance(got, Frame) and as_tuple(got) == as_tuple(want)
        assert fast is None or as_tuple(fast) == as_tuple(want)
        storable(want)
    return want


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    agree(raw)


@FUZZ
@given(JSON)
def test_arbitrary_json(value: Any) -> None:
    agree(json.dumps(value).encode("utf-8", "surrogatepass"))


@FUZZ
@given(mutated())
def test_mutated_frames_are_parsed_alike_or_rejected_naming_the_field(
    case: tuple[tuple[Any, ...], bytes],
) -> None:
    path, raw = case
    result = agree(raw)
    if isinstance(result, str) and path[0] != "extra" and path[-1] != "extra":
        # The wrong field by name, or the JSON parser's own word (an unpaired surrogate).
        assert str(path[0]) in result or result.startswith("not valid JSON"), result


def test_a_frame_of_too_many_objects_is_refused_and_its_dead_letter_stays_small() -> None:
    assert len(agree(crowded("cam-1", MAX_OBJECTS)).people) == MAX_OBJECTS  # type: ignore[union-attr]
    raw = crowded("cam-2", 4 * (MAX_OBJECTS + 1))
    error = agree(raw)
    too_many = f"at most {MAX_OBJECTS} items after validation, not {4 * (MAX_OBJECTS + 1)}"
    assert error == f"objects: List should have {too_many}"
    letter = DeadLetter.for_raw(source_topic="sw.detections", partition=0, offset=1, error=error, raw=raw)
    assert letter.value == raw.decode()[:DEAD_LETTER_VALUE_MAX]
    assert letter.error.startswith(error) and letter.error.endswith(
        f"(value: the start of {len(raw)} characters)"
    )
    assert len(encode(letter)) < 2 * DEAD_LETTER_VALUE_MAX


def test_a_message_over_the_bound_is_refused_before_it_is_parsed() -> None:
    raw = json.dumps(valid() | {"padding": "x" * MAX_MESSAGE_BYTES}).encode()
    assert agree(raw) == f"message too large: {len(raw)} bytes, at most {MAX_MESSAGE_BYTES}"
    letter = DeadLetter.for_raw(source_topic="t", partition=0, offset=1, error="e", raw=b"\xff" + raw)
    assert letter.value is not None and len(letter.value) <= DEAD_LETTER_VALUE_MAX
    assert letter.error == f"e (value: the start of {len(raw) + 1} bytes, base64)"
    long = DeadLetter.for_raw(source_topic="t", partition=0, offset=1, error="e" * 10**5, raw=b"{}")
    assert len(long.error) == DEAD_LETTER_ERROR_MAX and long.value == "{}"


def test_every_field_against_every_troublemaker() -> None:
    for path in targets(valid()):
        for value in TROUBLEMAKERS:
            data = valid()
            target = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            agree(json.dumps(data).encode("utf-8", "surrogatepass"))


@FUZZ
@given(timestamps())
def test_timestamps_across_the_calendar(ts: str) -> None:
    agree(json.dumps(valid() | {"ts": ts}).encode())


@FUZZ
@given(st.integers(1, 3000), st.sampled_from("[{"))
def test_nesting_of_any_depth(depth: int, opening: str) -> None:
    closing = {"[": "]", "{": "}"}[opening]
    nested = (opening + ('"a":' if opening == "{" else "")) * depth + "1" + closing * depth
    agree(json.dumps(valid()).replace('"objects"', f'"deep": {nested}, "objects"').encode())


@pytest.mark.services
def test_one_cameras_hostile_frames_take_no_other_camera_down(make_settings: Any) -> None:
    """Through real Kafka and the flows' input operator: an oversize frame of cam-2 (under Kafka's
    own size limit) and a timestamp that overflowed the parser before are dead-lettered with
    their reasons; every cam-1 frame around them is read."""
    settings: Settings = make_settings()
    good = [encode(frame("cam-1", i, i * 0.2, [person(1, (0.5, 0.9))])) for i in range(6)]
    huge = crowded("cam-2", 5 * MAX_OBJECTS)
    overflow = json.loads(good[0]) | {"camera_id": "cam-2", "ts": "0001-01-01T00:00:00+01:00"}
    assert len(huge) < 1_000_000  # the broker's and the producer's default limit
    produce(
        settings,
        settings.topic("detections"),
        [(b"cam-1", good[0]), (b"cam-2", huge), (b"cam-1", good[1]), (b"cam-1", good[2])]
        + [(b"cam-2", json.dumps(overflow).encode())]
        + [(b"cam-1", raw) for raw in good[3:]],
    )
    flow = Dataflow("fuzz")
    read = detections("in", flow, settings, tail=False)
    frames: list[Any] = []
    letters: list[Any] = []
    import bytewax.operators as op

    op.output("frames", read.frames, TestingSink(frames))
    op.output("dead", read.dead, TestingSink(letters))
    run_main(flow)

    assert sorted(f.frame_id for camera, f in frames if camera == "cam-1") == list(range(6))
    assert [camera for camera, _ in frames] == ["cam-1"] * 6
    errors = sorted(letter.error for letter in letters)
    assert errors[0].startswith("objects: List should have at most 1000 items after validation, not 5000")
    assert errors[1] == "ts: must lie between 1970-01-01T00:00:00.000Z and 9999-01-01T00:00:00.000Z"
    published = [decode(m.value(), DeadLetter) for m in read_all(settings, settings.topic("dlq"))]
    assert sorted(d.error for d in published) == errors
