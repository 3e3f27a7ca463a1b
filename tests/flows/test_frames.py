"""The hot-path parser agrees with the contract on every message, valid or not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from flows.behaviour.frames import Frame, _fast, parse_frame
from shrinkwatch.contracts import ContractError, DetectedObject, Detection, decode, encode
from tests.factories import frame, person

KEYPOINTS = [[0.5, 0.5, 0.9]] * 17


def message() -> dict[str, Any]:
    bag = DetectedObject(
        track_id=None, class_name="handbag", class_id=26, conf=0.5, box=(0.3, 0.5, 0.35, 0.6)
    )
    posed = person(4, (0.6, 0.9)).model_copy(update={"keypoints": [tuple(p) for p in KEYPOINTS]})
    untracked = person(5, (0.1, 0.9)).model_copy(update={"track_id": None})
    detection = frame("cam-1", 7, 1.5, [person(3, (0.3, 0.8)), posed, untracked, bag])
    data: dict[str, Any] = json.loads(encode(detection))
    return data


def mutated(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(message())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()
CASES = [
    (("schema",), DELETE),
    (("schema",), "shrinkwatch.detection/2"),
    (("camera_id",), ""),
    (("camera_id",), 5),
    (("store_id",), None),
    (("frame_id",), -1),
    (("frame_id",), 3.0),
    (("frame_id",), "3"),
    (("frame_id",), True),
    (("ts",), "2026-11-28T10:00:01.5"),
    (("ts",), "2026-11-28 10:00:01+00:00"),
    (("ts",), "2026-11-28T11:00:01.500+01:00"),
    (("ts",), "2026-W48-6"),
    (("ts",), "yesterday"),
    (("ts",), 1764324001),
    (("frame_w",), 0),
    (("objects",), {}),
    (("objects",), []),
    (("objects", 0), []),
    (("objects", 0, "track_id"), DELETE),
    (("objects", 0, "track_id"), 3.5),
    (("objects", 0, "track_id"), "3"),
    (("objects", 0, "class_name"), ""),
    (("objects", 0, "class_id"), -2),
    (("objects", 0, "conf"), 1.5),
    (("objects", 0, "conf"), "0.5"),
    (("objects", 0, "conf"), True),
    (("objects", 0, "box"), [0.1, 0.2, 0.3]),
    (("objects", 0, "box"), [0.3, 0.2, 0.1, 0.4]),
    (("objects", 0, "box"), [0.1, 0.2, 0.3, 1.2]),
    (("objects", 0, "box"), [0.1, 0.2, "0.3", 0.4]),
    (("objects", 0, "box"), [0.1, 0.2, True, 0.4]),
    (("objects", 0, "box"), [0.1, 0.2, None, 0.4]),
    (("objects", 0, "box", 0), -0.0),
    (("objects", 1, "keypoints"), KEYPOINTS[:16]),
    (("objects", 1, "keypoints"), [[0.5, 0.5]] * 17),
    (("objects", 1, "keypoints"), [[0.5, 1.5, 0.9]] * 17),
    (("objects", 1, "keypoints"), None),
    (("extra",), {"anything": [1, 2]}),
    (("objects", 0, "extra"), "ignored"),
]


def same(a: Frame, b: Frame) -> None:
    assert (a.camera_id, a.store_id, a.frame_id, a.ts, a.us) == (
        b.camera_id,
        b.store_id,
        b.frame_id,
        b.ts,
        b.us,
    )
    assert [(p.track_id, list(p.box), p.keypoints and [list(k) for k in p.keypoints]) for p in a.people] == [
        (p.track_id, list(p.box), p.keypoints and [list(k) for k in p.keypoints]) for p in b.people
    ]
    assert [list(b) for b in a.bags] == [list(x) for x in b.bags]


def contract(raw: bytes) -> Frame | None:
    try:
        return Frame.from_detection(decode(raw, Detection))
    except ContractError:
        return None


def test_a_plain_message_takes_the_fast_path_and_matches_the_contract() -> None:
    raw = json.dumps(message()).encode()
    fast = _fast(raw)
    assert fast is not None
    expected = contract(raw)
    assert expected is not None
    same(fast, expected)
    assert [p.track_id for p in fast.people] == [3, 4] and len(fast.bags) == 1


@pytest.mark.parametrize(
    ("path", "value"), CASES, ids=[f"{'.'.join(map(str, p))}={v!r:.20}" for p, v in CASES]
)
def test_parser_and_contract_agree(path: tuple[Any, ...], value: Any) -> None:
    raw = json.dumps(mutated(path, value)).encode()
    expected = contract(raw)
    if expected is None:
        with pytest.raises(ContractError) as err:
            parse_frame(raw)
        with pytest.raises(ContractError) as want:
            decode(raw, Detection)
        assert str(err.value) == str(want.value)
    else:
        same(parse_frame(raw), expected)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"schema": "shrinkwatch.detection/1", "conf": NaN}',
        json.dumps(message()).replace('"conf": 0.9', '"conf": NaN').encode(),
        json.dumps(message()).replace('"conf": 0.9', '"conf": 1e999').encode(),
    ],
)
def test_broken_messages_are_rejected_with_the_contracts_reason(raw: bytes | None) -> None:
    with pytest.raises(ContractError) as err:
        parse_frame(raw)
    with pytest.raises(ContractError) as want:
        decode(raw, Detection)
    assert str(err.value) == str(want.value)
