"""Hostile camera-health, incident and dead-letter messages: decoding arbitrary bytes, arbitrary
JSON and mutated valid messages gives the message or a ContractError naming the wrong field,
never another exception; what is accepted encodes and decodes back to itself (nothing the
warehouse or a re-publish would choke on)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz
from hypothesis import strategies as st

from shrinkwatch.contracts import (
    MAX_PROBLEMS,
    CameraHealth,
    ContractError,
    DeadLetter,
    Incident,
    Signal,
    decode,
    encode,
    text_problem,
)
from tests.factories import incident

FUZZ = fuzz(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)
TS = datetime(2026, 11, 28, 10, 15, 30, 123000, tzinfo=UTC)
VALID: dict[type[Any], Any] = {
    CameraHealth: CameraHealth(
        camera_id="cam-1",
        store_id="s",
        ts=TS,
        status="degraded",
        fps_in=9.5,
        fps_analysed=5.0,
        last_frame_ts=TS,
        error="read timeout",
    ),
    Incident: incident(
        3,
        ended_at=TS,
        zone_ids=["z-razors", "z-exit"],
        signals=[Signal(name="dwell_high_value_s", value=95.0, contribution=0.41)],
        snapshot="cam-1/x.jpg",
    ),
    DeadLetter: DeadLetter.for_raw(source_topic="sw.detections", partition=0, offset=7, error="e", raw=b"{"),
}
KINDS = list(VALID)
TROUBLEMAKERS: list[Any] = [
    None,
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x" * 300,
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1969-12-31T23:59:59Z",
    "2026-11-28T10:00:00",
    "online",
    "high",
    -1,
    0,
    2**31,
    2**63,
    10**30,
    True,
    0.5,
    1e308,
    [],
    {},
    ["a", "\x00"],
    [{"name": "x", "value": 1, "contribution": 1}],
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(TROUBLEMAKERS),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


def wire(value: Any) -> bytes:
    # An unpaired surrogate is written as JSON writes it (\ud800), for the parser to judge.
    return json.dumps(value).encode()


def check(raw: bytes, kind: type[Any]) -> Any:
    """The message, or the ContractError's text: anything else fails the test."""
    try:
        message = decode(raw, kind)
    except ContractError as exc:
        text = str(exc)
        assert text and "Traceback" not in text and text.count("; ") <= MAX_PROBLEMS
        return text
    again = encode(message)
    assert decode(again, kind) == message
    assert text_problem(again.decode()) is None or kind is DeadLetter  # a dead letter's value is as it came
    return message


@FUZZ
@given(st.sampled_from(KINDS), st.binary(max_size=300))
def test_arbitrary_bytes(kind: type[Any], raw: bytes) -> None:
    check(raw, kind)


@FUZZ
@given(st.sampled_from(KINDS), JSON)
def test_arbitrary_json(kind: type[Any], value: Any) -> None:
    check(wire(value), kind)


@FUZZ
@given(st.sampled_from(KINDS), st.data())
def test_mutated_messages_name_the_field(kind: type[Any], data: st.DataObject) -> None:
    message = json.loads(encode(VALID[kind]))
    field = data.draw(st.sampled_from(sorted(message)))
    message[field] = data.draw(st.one_of(st.sampled_from(TROUBLEMAKERS), JSON))
    result = check(wire(message), kind)
    if isinstance(result, str):
        assert field in result or result.startswith("not valid JSON"), result


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_against_every_troublemaker(kind: type[Any]) -> None:
    for field in json.loads(encode(VALID[kind])):
        for value in TROUBLEMAKERS:
            message = json.loads(encode(VALID[kind])) | {field: value}
            result = check(wire(message), kind)
            if isinstance(result, str):
                assert field in result or result.startswith("not valid JSON"), result


def test_a_rejection_names_ten_fields_then_counts_the_rest() -> None:
    message = json.loads(encode(VALID[Incident])) | {"zone_ids": [""] * 25}
    text = check(wire(message), Incident)
    assert text.startswith("zone_ids[0]: String should have at least 1 character; zone_ids[1]: ")
    assert text.endswith("; and 15 more") and "zone_ids[10]" not in text
