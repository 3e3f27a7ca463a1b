"""Every incident type on synthetic tracks, each with a near miss that must not fire."""

from __future__ import annotations

import pickle
from dataclasses import fields
from datetime import timedelta
from typing import Any

import pytest

from flows.behaviour.engine import BehaviourEngine
from flows.behaviour.stores import StoreInfo
from flows.behaviour.tracks import CameraState, Sustained, Thresholds, TrackState
from flows.behaviour.zones import ZoneArea
from shrinkwatch.contracts import DetectedObject, Detection, Incident, foot
from tests.factories import T0, frame, walk


def rect(zone_id: str, kind: str, x0: float, y0: float, x1: float, y1: float) -> ZoneArea:
    return ZoneArea(zone_id, kind, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


ZONES = [
    rect("z-entrance", "entrance", 0.0, 0.5, 0.1, 1.0),
    rect("z-shelf", "high_value", 0.2, 0.5, 0.4, 1.0),
    rect("z-checkout", "checkout", 0.5, 0.5, 0.65, 1.0),
    rect("z-exit", "exit", 0.85, 0.5, 1.0, 1.0),
    rect("z-stock", "restricted", 0.45, 0.0, 0.6, 0.3),
]
RULES = Thresholds(loiter_s=30, crowd_people=4, crowd_s=20)
T0_OPEN = T0  # 10:00 on a Saturday in London: open 09:00-18:00
STORE = StoreInfo("store-001", "Europe/London", (("sat", "09:00-18:00"),), RULES)


def run(frames: list[Detection], store: StoreInfo = STORE) -> list[Incident]:
    engine = BehaviourEngine("cam-1", ZONES, store)
    state: CameraState | None = None
    out: list[Incident] = []
    for f in sorted(frames, key=lambda d: d.ts):
        state, incidents = engine.step(state, f)
        out.extend(incidents)
    # Empty frames afterwards end every track.
    last = max(f.ts for f in frames)
    for i in range(1, 30):
        state, incidents = engine.step(
            state, frame("cam-1", 10_000 + i, 0, [], t0=last + timedelta(seconds=i * 0.2))
        )
        out.extend(incidents)
    return out


def final(incidents: list[Incident]) -> dict[str, Incident]:
    best: dict[str, Incident] = {}
    for i in incidents:
        if i.incident_id not in best or i.version > best[i.incident_id].version:
            best[i.incident_id] = i
    return best


def only(incidents: list[Incident]) -> Incident:
    latest = final(incidents)
    assert len(latest) == 1, latest
    return next(iter(latest.values()))


def test_loitering_and_its_near_miss() -> None:
    inc = only(run(walk("cam-1", 1, [(0, (0.3, 0.8)), (35, (0.3, 0.8))])))
    assert inc.incident_type == "loitering_high_value" and inc.status == "closed"
    assert inc.zone_ids == ["z-shelf"] and inc.track_id == 1
    assert inc.signals[0].name == "dwell_high_value_s" and inc.signals[0].value == pytest.approx(35, abs=0.3)
    assert run(walk("cam-1", 2, [(0, (0.3, 0.8)), (28, (0.3, 0.8))])) == []


def test_exit_without_checkout_and_the_paying_shopper() -> None:
    # Around the checkout lanes (above them), to the exit.
    thief = walk(
        "cam-1",
        3,
        [
            (0, (0.05, 0.8)),
            (2, (0.3, 0.8)),
            (6, (0.3, 0.8)),
            (7, (0.45, 0.45)),
            (10, (0.9, 0.45)),
            (11, (0.95, 0.7)),
        ],
    )
    inc = only(run(thief))
    assert inc.incident_type == "exit_without_checkout"
    assert inc.zone_ids == ["z-entrance", "z-shelf", "z-exit"]
    # The same path through the checkout (stopping there) fires nothing: a normal shopper.
    shopper = walk(
        "cam-1",
        4,
        [
            (0, (0.05, 0.8)),
            (2, (0.3, 0.8)),
            (12, (0.3, 0.8)),
            (14, (0.57, 0.8)),
            (24, (0.57, 0.8)),
            (28, (0.95, 0.8)),
        ],
    )
    assert run(shopper) == []


def test_walking_past_the_exit_without_visiting_high_value_is_normal() -> None:
    assert run(walk("cam-1", 5, [(0, (0.05, 0.6)), (20, (0.95, 0.6))])) == []


def test_restricted_zone_and_its_near_miss() -> None:
    inc = only(run(walk("cam-1", 6, [(0, (0.52, 0.2)), (3, (0.52, 0.2))])))
    assert inc.incident_type == "restricted_zone" and inc.zone_ids == ["z-stock"]
    assert run(walk("cam-1", 7, [(0, (0.52, 0.2)), (1.5, (0.52, 0.2)), (2.5, (0.7, 0.2))])) == []


def test_after_hours_and_its_near_misses() -> None:
    night = T0.replace(hour=22)  # closed
    inc = only(run(walk("cam-1", 8, [(0, (0.7, 0.2)), (6, (0.7, 0.2))], t0=night)))
    assert inc.incident_type == "after_hours" and inc.risk_level == "medium"
    assert run(walk("cam-1", 9, [(0, (0.7, 0.2)), (4, (0.7, 0.2))], t0=night)) == []
    assert run(walk("cam-1", 10, [(0, (0.7, 0.2)), (60, (0.7, 0.2))], t0=T0_OPEN)) == []


def with_pose(obj: DetectedObject, wrists: str) -> DetectedObject:
    x1, y1, x2, y2 = obj.box
    cx, _ = foot(obj.box)  # the body's centre line rises from the feet
    h = y2 - y1
    shoulder_y, hip_y = y1 + 0.25 * h, y1 + 0.55 * h
    points = [(cx, y1 + 0.05 * h, 0.9)] * 17
    points[5], points[6] = (cx - 0.02, shoulder_y, 0.9), (cx + 0.02, shoulder_y, 0.9)
    points[11], points[12] = (cx - 0.015, hip_y, 0.9), (cx + 0.015, hip_y, 0.9)
    if wrists == "front":  # one hand in front of the belly, inside the hips
        points[9], points[10] = (cx, hip_y - 0.05 * h, 0.9), (cx + 0.03, hip_y, 0.9)
    else:  # hanging at the sides, outside the hip line
        points[9], points[10] = (cx - 0.03, hip_y + 0.05 * h, 0.9), (cx + 0.03, hip_y + 0.05 * h, 0.9)
    return obj.model_copy(update={"keypoints": points})


def posed(frames: list[Detection], wrists: str) -> list[Detection]:
    return [f.model_copy(update={"objects": [with_pose(o, wrists) for o in f.objects]}) for f in frames]


def test_concealment_and_hands_at_the_sides() -> None:
    inc = only(run(posed(walk("cam-1", 11, [(0, (0.3, 0.8)), (4, (0.3, 0.8))]), "front")))
    assert inc.incident_type == "concealment_suspected"
    assert run(posed(walk("cam-1", 12, [(0, (0.3, 0.8)), (20, (0.3, 0.8))]), "sides")) == []
    # The same gesture outside any high_value zone is not a cue.
    assert run(posed(walk("cam-1", 13, [(0, (0.7, 0.2)), (10, (0.7, 0.2))]), "front")) == []


def crowd(people: int, seconds: float) -> list[Detection]:
    tracks = [
        walk("cam-1", 20 + i, [(0, (0.22 + 0.04 * i, 0.8)), (seconds, (0.22 + 0.04 * i, 0.8))])
        for i in range(people)
    ]
    return [
        f.model_copy(update={"objects": [o for t in group for o in t.objects]})
        for f, *_ in zip(*tracks, strict=True)
        for group in [(f, *_)]
    ]


def test_crowding_and_its_near_misses() -> None:
    # 4 people for 25 s in the shelf zone (each also loiters under 30 s: nothing else fires).
    incidents = final(run(crowd(4, 25)))
    crowding = [i for i in incidents.values() if i.incident_type == "crowding"]
    assert len(crowding) == 1 and crowding[0].track_id is None and crowding[0].zone_ids == ["z-shelf"]
    assert crowding[0].status == "closed"
    assert len(incidents) == 1
    assert run(crowd(3, 25)) == []
    assert run(crowd(4, 15)) == []


def test_running_to_the_exit_and_walking_to_it() -> None:
    # Height 0.2: 0.6 units/s is 3 body heights a second; 0.15 units/s is 0.75 (a walk).
    sprint = [(0, (0.55, 0.2)), (1, (0.55, 0.2)), (2.2, (0.95, 0.6)), (3, (0.95, 0.65))]
    inc = only(run(walk("cam-1", 30, sprint)))
    assert inc.incident_type == "running_exit"
    assert run(walk("cam-1", 31, [(0, (0.6, 0.2)), (3, (0.95, 0.6))])) == []


def test_one_incident_per_visit_versions_and_dominant_type() -> None:
    # Loiters 65 s at the shelf, then leaves through the exit without paying.
    frames = walk(
        "cam-1",
        40,
        [(0, (0.3, 0.8)), (65, (0.3, 0.8)), (66, (0.45, 0.45)), (69, (0.9, 0.45)), (70, (0.95, 0.7))],
    )
    incidents = run(frames)
    assert [i.version for i in incidents] == list(range(1, len(incidents) + 1))
    assert len({i.incident_id for i in incidents}) == 1
    first, last = incidents[0], incidents[-1]
    assert first.incident_type == "loitering_high_value" and first.status == "open"
    assert last.status == "closed" and last.ended_at is not None
    names = {s.name for s in last.signals}
    assert {"dwell_high_value_s", "skipped_checkout"} <= names
    assert last.incident_type == "loitering_high_value"  # 0.8 (dwell >= 2x) beats 0.55
    assert last.risk_score == pytest.approx(
        sum(s.contribution for s in last.signals) if sum(s.contribution for s in last.signals) < 1 else 1.0
    )
    assert last.risk_level == "high"
    assert run(frames) == incidents  # deterministic


def test_bag_adds_to_the_score_but_never_fires_alone() -> None:
    bag = DetectedObject(
        track_id=99, class_name="handbag", class_id=26, conf=0.8, box=(0.29, 0.7, 0.33, 0.78)
    )
    frames = walk("cam-1", 50, [(0, (0.3, 0.8)), (20, (0.3, 0.8))])
    assert run([f.model_copy(update={"objects": [*f.objects, bag]}) for f in frames]) == []
    frames = walk("cam-1", 51, [(0, (0.3, 0.8)), (31, (0.3, 0.8))])
    inc = only(run([f.model_copy(update={"objects": [*f.objects, bag]}) for f in frames]))
    assert "bag_present" in {s.name for s in inc.signals}


def test_store_with_unknown_hours_is_never_after_hours() -> None:
    store = StoreInfo("store-001", "UTC", None, RULES)
    assert run(walk("cam-1", 60, [(0, (0.7, 0.2)), (30, (0.7, 0.2))], t0=T0.replace(hour=3)), store) == []


def test_store_closed_every_day_raises_after_hours_at_any_time() -> None:
    store = StoreInfo("store-001", "UTC", (), RULES)  # `hours: {}`: shut for a refit
    inc = only(run(walk("cam-1", 61, [(0, (0.7, 0.2)), (6, (0.7, 0.2))], t0=T0_OPEN), store))
    assert inc.incident_type == "after_hours"


def test_hours_past_midnight_in_the_store_time_zone() -> None:
    # Friday 22:00 to Saturday 06:00 in Tokyo (UTC+9); T0 is Saturday 28 November, UTC.
    store = StoreInfo("store-001", "Asia/Tokyo", (("fri", "22:00-06:00"),), RULES)
    saturday_5am = T0.replace(day=27, hour=20)  # Friday 20:00 UTC = Saturday 05:00 in Tokyo: open
    saturday_7am = T0.replace(day=27, hour=22)  # Saturday 07:00 in Tokyo: closed
    assert run(walk("cam-1", 62, [(0, (0.7, 0.2)), (30, (0.7, 0.2))], t0=saturday_5am), store) == []
    inc = only(run(walk("cam-1", 63, [(0, (0.7, 0.2)), (6, (0.7, 0.2))], t0=saturday_7am), store))
    assert inc.incident_type == "after_hours"


def test_untracked_and_replayed_frames() -> None:
    frames = walk("cam-1", 70, [(0, (0.3, 0.8)), (35, (0.3, 0.8))])
    untracked = [
        f.model_copy(update={"objects": [o.model_copy(update={"track_id": None}) for o in f.objects]})
        for f in frames
    ]
    assert run(untracked) == []
    engine = BehaviourEngine("cam-1", ZONES, STORE)
    state = None
    for f in frames:
        state, _ = engine.step(state, f)
    _, again = engine.step(state, frames[-1])
    assert again == []


def test_threshold_defaults_have_one_source() -> None:
    from dataclasses import asdict

    from shrinkwatch.settings import Settings
    from shrinkwatch.site_file import THRESHOLD_DEFAULTS, StoreThresholds

    assert asdict(Thresholds()) == THRESHOLD_DEFAULTS
    assert set(StoreThresholds.model_fields) == set(THRESHOLD_DEFAULTS)
    described = StoreThresholds.model_fields["loiter_s"].description
    assert described is not None and "(30 s)" in described
    settings = Settings()
    assert settings.loiter_threshold_s == THRESHOLD_DEFAULTS["loiter_s"]
    assert settings.track_timeout_s == THRESHOLD_DEFAULTS["track_timeout_s"]


def test_snapshots_from_before_sustained_values_resume() -> None:
    # A TrackState as the previous release pickled it (plain since/longest fields).
    old = TrackState.__new__(TrackState)
    old.__dict__.update(
        {
            **{f.name: getattr(TrackState(T0, T0, 0), f.name) for f in fields(TrackState)},
            "after_hours_since_us": 5,
            "after_hours_s": 7.5,
            "cue_since_us": None,
            "concealment_s": 2.5,
            "running_since_us": 9,
        }
    )
    for name in ("after_hours", "concealment", "running"):
        del old.__dict__[name]
    track = pickle.loads(pickle.dumps(old))
    assert track.after_hours == Sustained(5, 7.5) and track.after_hours_s == 7.5
    assert track.concealment == Sustained(None, 2.5) and track.concealment_s == 2.5
    assert track.running == Sustained(9, 0.0)
    assert "after_hours_since_us" not in track.__dict__


@pytest.mark.parametrize(
    ("steps", "runs", "longest"),
    [
        ([(True, 0), (True, 1_000_000), (True, 2_500_000)], [0.0, 1.0, 2.5], 2.5),
        ([(True, 0), (True, 2_000_000), (False, 3_000_000), (True, 4_000_000)], [0.0, 2.0, 0.0, 0.0], 2.0),
        (
            [(True, 0), (True, 3_000_000), (True, 4_000_000, True), (True, 5_000_000)],
            [0.0, 3.0, 0.0, 1.0],
            3.0,
        ),
    ],
)
def test_sustained(steps: list[tuple[Any, ...]], runs: list[float], longest: float) -> None:
    value = Sustained()
    got = [value.update(step[0], step[1], restart=len(step) > 2) for step in steps]
    assert got == runs and value.longest_s == longest


def test_rules_follow_the_polygon_not_its_bounding_box() -> None:
    # A high_value shelf seen in perspective and a concave restricted stock room.
    zones = [
        ZoneArea("z-shelf", "high_value", ((0.35, 0.4), (0.65, 0.4), (0.8, 0.9), (0.2, 0.9))),
        ZoneArea(
            "z-stock", "restricted", ((0.0, 0.0), (0.3, 0.0), (0.3, 0.2), (0.1, 0.2), (0.1, 0.5), (0.0, 0.5))
        ),
    ]

    def incidents(foot: tuple[float, float], seconds: float) -> list[Incident]:
        engine = BehaviourEngine("cam-1", zones, STORE)
        state: CameraState | None = None
        out: list[Incident] = []
        for f in walk("cam-1", 80, [(0, foot), (seconds, foot)]):
            state, new = engine.step(state, f)
            out.extend(new)
        return out

    assert only(incidents((0.25, 0.85), 31)).incident_type == "loitering_high_value"  # the wide bottom
    assert incidents((0.25, 0.45), 31) == []  # in the box, outside the slanted side
    assert only(incidents((0.2, 0.1), 3)).incident_type == "restricted_zone"  # the L's short arm
    assert incidents((0.2, 0.35), 3) == []  # the notch
