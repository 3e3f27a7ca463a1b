"""Wire contracts: round trips and rejections that name the wrong field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shrinkwatch.contracts import (
    CameraHealth,
    ContractError,
    DeadLetter,
    Detection,
    Incident,
    Signal,
    decode,
    encode,
    foot,
    risk_level,
    to_dict,
    validate,
)
from tests.factories import frame, incident, person

TS = datetime(2026, 11, 28, 10, 15, 30, 123000, tzinfo=UTC)


def _incident() -> Incident:
    return incident(
        3,
        incident_id="9f1c",
        track_id=17,
        incident_type="exit_without_checkout",
        risk_score=0.82,
        risk_level="high",
        started_at=TS,
        updated_at=TS,
        zone_ids=["z-razors", "z-exit"],
        signals=[Signal(name="dwell_high_value_s", value=95.0, contribution=0.41)],
    )


@pytest.mark.parametrize(
    "message",
    [
        frame("cam-1", 1234, 0.0, [person(17, (0.33, 0.55))]),
        frame("cam-1", 0, 0.0, []),
        CameraHealth(
            camera_id="cam-1",
            store_id="s",
            ts=TS,
            status="degraded",
            fps_in=9.5,
            fps_analysed=5.0,
            last_frame_ts=TS,
            error="read timeout",
        ),
        _incident(),
        DeadLetter.for_raw(source_topic="sw.detections", partition=0, offset=7, error="bad", raw=b"{", ts=TS),
    ],
    ids=["detection", "empty-frame", "camera-health", "incident", "dead-letter"],
)
def test_round_trip(message: object) -> None:
    raw = encode(message)  # type: ignore[arg-type]
    assert decode(raw, type(message)) == message  # type: ignore[arg-type]


def test_wire_format_matches_contract_example() -> None:
    data = json.loads(encode(frame("cam-entrance-1", 1234, 0.0, [person(17, (0.335, 0.55))])))
    assert data["schema"] == "shrinkwatch.detection/1"
    assert data["ts"] == "2026-11-28T10:00:00.000Z"
    assert set(data["objects"][0]) == {"track_id", "class_name", "class_id", "conf", "box"}
    incident = to_dict(_incident())
    assert incident["schema"] == "shrinkwatch.incident/1"
    assert incident["ended_at"] is None and incident["track_id"] == 17
    assert incident["started_at"] == "2026-11-28T10:15:30.123Z"


def test_keypoints_round_trip_and_count() -> None:
    base = to_dict(frame("cam-1", 1, 0.0, [person(1, (0.5, 0.5))]))
    base["objects"][0]["keypoints"] = [[0.5, 0.4, 0.9]] * 17
    assert validate(base, Detection).objects[0].keypoints is not None
    base["objects"][0]["keypoints"] = [[0.5, 0.4, 0.9]]
    with pytest.raises(ContractError, match=r"objects\[0\].*17 COCO keypoints"):
        validate(base, Detection)


def test_non_utc_timestamps_are_normalised() -> None:
    data = to_dict(frame("cam-1", 1, 0.0, []))
    data["ts"] = "2026-11-28T11:00:00.500+01:00"
    assert json.loads(encode(validate(data, Detection)))["ts"] == "2026-11-28T10:00:00.500Z"


def _detection(**changes: object) -> bytes:
    data = to_dict(frame("cam-1", 5, 0.0, [person(3, (0.5, 0.6))]))
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[keys[-1]] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "(root)"),
        (_detection(schema="shrinkwatch.detection/2"), "schema"),
        (_detection(camera_id=""), "camera_id"),
        (_detection(ts="2026-11-28T10:00:00"), "ts"),
        (_detection(ts="yesterday"), "ts"),
        (_detection(frame_w=0), "frame_w"),
        (_detection(objects__0__box=[0.5, 0.5, 0.4, 0.9]), r"objects\[0\]: box must be"),
        (_detection(objects__0__box=[0.1, 0.1, 0.2, 1.5]), r"objects\[0\]\.box\[3\]"),
        (_detection(objects__0__conf=2), r"objects\[0\]\.conf"),
        (_detection(objects=None), "objects"),
        (None, "empty message"),
    ],
)
def test_rejections_name_the_field(raw: bytes | None, expected: str) -> None:
    with pytest.raises(ContractError, match=expected):
        decode(raw, Detection)


def test_dead_letter_keeps_binary_as_base64() -> None:
    letter = DeadLetter.for_raw(
        source_topic="sw.detections", partition=1, offset=2, error="x", raw=b"\xff\x00"
    )
    assert letter.value == "/wA="


@pytest.mark.parametrize(
    ("score", "level"),
    [(0.0, "low"), (0.39, "low"), (0.4, "medium"), (0.69, "medium"), (0.7, "high"), (1.0, "high")],
)
def test_risk_levels(score: float, level: str) -> None:
    assert risk_level(score) == level


def test_feet_are_the_bottom_centre_of_the_box() -> None:
    assert foot((0.2, 0.1, 0.4, 0.9)) == (0.30000000000000004, 0.9)  # (0.2 + 0.4) / 2, as floats add
    assert foot(person(1, (0.5, 0.8)).box) == pytest.approx((0.5, 0.8))  # where the factory put them
