"""The loitering rule over synthetic tracks (no services)."""

from __future__ import annotations

from flows.dwell import CameraState, DwellRules, incident_id, step
from flows.zones import ZoneArea
from shrinkwatch.contracts import Detection, Incident
from tests.factories import frame, walk

SHELF = ZoneArea("z-shelf", "high_value", ((0.0, 0.5), (0.4, 0.5), (0.4, 1.0), (0.0, 1.0)))
EXIT = ZoneArea("z-exit", "exit", ((0.8, 0.0), (1.0, 0.0), (1.0, 1.0), (0.8, 1.0)))
RULES = DwellRules(loiter_threshold_s=10.0, zone_exit_grace_s=2.0, track_timeout_s=3.0, incident_update_s=5.0)


def run(
    frames: list[Detection], zones: list[ZoneArea] | None = None, rules: DwellRules = RULES
) -> list[Incident]:
    state: CameraState | None = None
    out: list[Incident] = []
    for f in sorted(frames, key=lambda d: d.ts):
        state, incidents = step(state, f, zones if zones is not None else [SHELF, EXIT], rules)
        out.extend(incidents)
    return out


def latest(incidents: list[Incident]) -> dict[str, Incident]:
    best: dict[str, Incident] = {}
    for i in incidents:
        if i.incident_id not in best or i.version > best[i.incident_id].version:
            best[i.incident_id] = i
    return best


def test_zone_contains() -> None:
    assert SHELF.contains(0.2, 0.7)
    assert not SHELF.contains(0.5, 0.7)
    assert not SHELF.contains(0.2, 0.4)


def test_loitering_opens_updates_and_closes() -> None:
    # Stands at the shelf for 20 s, then walks out of view, then empty frames.
    frames = walk("cam-1", 7, [(0, (0.2, 0.8)), (20, (0.21, 0.8)), (24, (0.9, 0.5))])
    frames += [frame("cam-1", 200 + i, 24.2 + i * 0.2, []) for i in range(30)]
    incidents = run(frames)
    assert [i.version for i in incidents] == list(range(1, len(incidents) + 1))
    first, final = incidents[0], incidents[-1]
    assert first.status == "open" and first.version == 1
    assert first.signals[0].value == 10.0 and first.risk_level == "medium"
    assert (first.updated_at - first.started_at).total_seconds() == 10.0
    assert final.status == "closed" and final.ended_at is not None
    assert final.zone_ids == ["z-shelf"] and final.track_id == 7
    dwell = final.signals[0].value
    assert 20.0 <= dwell <= 21.0
    assert final.risk_score == round(0.4 + 0.3 * (dwell / 10.0 - 1.0), 4) and final.risk_level == "high"
    assert len(latest(incidents)) == 1


def test_near_miss_below_threshold_does_not_fire() -> None:
    frames = walk("cam-1", 3, [(0, (0.2, 0.8)), (9.4, (0.2, 0.8)), (10, (0.9, 0.5))])
    assert run(frames) == []


def test_walking_past_does_not_fire() -> None:
    # A normal shopper path: through the shelf zone in a few seconds, then to the exit.
    frames = walk("cam-1", 4, [(0, (0.0, 0.9)), (4, (0.4, 0.6)), (12, (0.95, 0.3))])
    assert run(frames) == []


def test_dwell_in_a_non_high_value_zone_does_not_fire() -> None:
    frames = walk("cam-1", 5, [(0, (0.9, 0.5)), (30, (0.9, 0.5))])
    assert run(frames) == []


def test_brief_exit_within_grace_keeps_the_visit() -> None:
    frames = walk(
        "cam-1",
        8,
        [
            (0, (0.2, 0.8)),
            (6, (0.2, 0.8)),
            (6.2, (0.5, 0.8)),
            (7, (0.5, 0.8)),
            (7.2, (0.2, 0.8)),
            (12, (0.2, 0.8)),
        ],
    )
    incidents = run(frames)
    assert incidents and incidents[0].started_at == frames[0].ts


def test_track_end_by_empty_frames_closes_incident() -> None:
    frames = walk("cam-1", 9, [(0, (0.2, 0.8)), (15, (0.2, 0.8))])
    last = frames[-1].ts
    frames += [frame("cam-1", 100 + i, 15.2 + i * 0.2, []) for i in range(20)]
    incidents = run(frames)
    final = incidents[-1]
    assert final.status == "closed"
    assert final.ended_at == last


def test_deterministic_ids_and_replay() -> None:
    frames = walk("cam-1", 7, [(0, (0.2, 0.8)), (12, (0.2, 0.8))])
    assert run(frames) == run(frames)
    first = run(frames)[0]
    assert first.incident_id == incident_id("loitering_high_value", "cam-1", 7, "z-shelf", frames[0].ts)


def test_replayed_older_frames_are_ignored() -> None:
    frames = walk("cam-1", 7, [(0, (0.2, 0.8)), (12, (0.2, 0.8))])
    state = None
    for f in frames:
        state, _ = step(state, f, [SHELF], RULES)
    _, again = step(state, frames[10], [SHELF], RULES)
    assert again == []


def test_other_classes_and_untracked_objects_are_ignored() -> None:
    frames = walk("cam-1", 7, [(0, (0.2, 0.8)), (15, (0.2, 0.8))])
    bags = [
        f.model_copy(
            update={
                "objects": [o.model_copy(update={"class_name": "handbag", "class_id": 26}) for o in f.objects]
            }
        )
        for f in frames
    ]
    untracked = [
        f.model_copy(update={"objects": [o.model_copy(update={"track_id": None}) for o in f.objects]})
        for f in frames
    ]
    assert run(bags) == [] and run(untracked) == []


def test_two_people_two_incidents() -> None:
    a = walk("cam-1", 1, [(0, (0.1, 0.8)), (12, (0.1, 0.8))])
    b = walk("cam-1", 2, [(0, (0.3, 0.9)), (12, (0.3, 0.9))])
    merged = [f.model_copy(update={"objects": f.objects + g.objects}) for f, g in zip(a, b, strict=True)]
    assert {i.track_id for i in run(merged)} == {1, 2}
