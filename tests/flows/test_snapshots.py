"""Recovery snapshots written by earlier releases resume in this one: pickled state bytes made
by a release from before the behaviour split and the heatmap, and state pickled under the
module paths from before the behaviour package, read here by the flows' own loader."""

from __future__ import annotations

import base64
import pickle
import sys
from dataclasses import is_dataclass
from datetime import UTC, datetime

import pytest

from flows import snapshots
from flows.behaviour import tracks
from flows.behaviour.engine import BehaviourEngine
from flows.behaviour.frames import Frame
from flows.behaviour.stores import StoreInfo
from flows.behaviour.tracks import CameraState, Sustained, TrackState, Visit
from flows.behaviour.zones import ZoneArea, ZoneIndex
from flows.occupancy import CameraMinutes, observe
from tests.factories import frame, person

# Made at commit 2daeb3a: a CameraState with one track (seen after hours since 0.5 s for
# 7.5 s, a concealment cue sustained 2.5 s, running since 0.9 s, in z-razors), and the
# occupancy state of one camera with one open minute.
CAMERA_STATE = (
    "gAWV8gIAAAAAAACMD2Zsb3dzLmJlaGF2aW91cpSMC0NhbWVyYVN0YXRllJOUKYGUfZQojAhzdG9yZV9pZJSMCXN0b3JlLTAwMZSMB2xhc3RfdXOUSkBC"
    "DwCMBnRyYWNrc5R9lEsHaACMClRyYWNrU3RhdGWUk5QpgZR9lCiMCmZpcnN0X3NlZW6UjAhkYXRldGltZZSMCGRhdGV0aW1llJOUQwoH6gscCgAAAAAA"
    "lGgPjAh0aW1lem9uZZSTlGgPjAl0aW1lZGVsdGGUk5RLAEsASwCHlFKUhZRSlIaUUpSMCWxhc3Rfc2VlbpRoHGgHSkBCDwCMB3NhbXBsZXOUjAtjb2xs"
    "ZWN0aW9uc5SMBWRlcXVllJOUKUsMhpRSlIwGdmlzaXRzlH2UjAh6LXJhem9yc5RoAIwFVmlzaXSUk5QpgZROfZQojAd6b25lX2lklGgmjARraW5klIwK"
    "aGlnaF92YWx1ZZSMCmVudGVyZWRfdXOUS2SMDmxhc3RfaW5zaWRlX3VzlE2EA3WGlGJzjARwYXRolF2UaCZhjBRtYXhfZHdlbGxfaGlnaF92YWx1ZZRH"
    "AAAAAAAAAACMEmhpZ2hfdmFsdWVfcGVuZGluZ5SJjBBza2lwcGVkX2NoZWNrb3V0lImMDHJlc3RyaWN0ZWRfc5RHAAAAAAAAAACMFGFmdGVyX2hvdXJz"
    "X3NpbmNlX3VzlEogoQcAjA1hZnRlcl9ob3Vyc19zlEdAHgAAAAAAAIwMY3VlX3NpbmNlX3VzlE6MDWNvbmNlYWxtZW50X3OUR0AEAAAAAAAAjBBydW5u"
    "aW5nX3NpbmNlX3VzlEqguw0AjAlyYW5fYXRfdXOUTowMcnVubmluZ19leGl0lImMCmJhZ19mcmFtZXOUSwCMCGluY2lkZW50lGgAjAdFbWl0dGVklJOU"
    "KYGUfZQojAd2ZXJzaW9ulEsAjAlzaWduYXR1cmWUKYwGdmFsdWVzlCmMBWF0X3VzlE51YnVic4wGY3Jvd2RzlH2UdWIu"
)
CAMERA_MINUTES = (
    "gAWVsAAAAAAAAACMD2Zsb3dzLm9jY3VwYW5jeZSMDUNhbWVyYU1pbnV0ZXOUk5QpgZR9lCiMBG9wZW6UfZRKAIeTA32UjAEqlGgAjAVUYWxseZSTlCmB"
    "lH2UKIwGZnJhbWVzlEsDjApwZW9wbGVfc3VtlEsEjARwZWFrlEsCjAh2aXNpdG9yc5SPlChLAUsCkHVic3OMEGNsb3NlZF9iZWZvcmVfdXOUSwCMBm1h"
    "eF91c5RKQMmiA3ViLg=="
)


def test_behaviour_state_of_the_previous_release_resumes() -> None:
    raw = base64.b64decode(CAMERA_STATE)
    assert b"flows.behaviour\x94" in raw  # it names the classes flows.behaviour.CameraState, ...
    state = snapshots.load(raw)
    assert isinstance(state, CameraState)
    track = state.tracks[7]
    assert isinstance(track, TrackState)
    assert track.after_hours == Sustained(500_000, 7.5) and track.after_hours_s == 7.5
    assert track.concealment == Sustained(None, 2.5) and track.running == Sustained(900_000, 0.0)
    assert track.visits["z-razors"] == Visit("z-razors", "high_value", 100, 900)
    # ... and the engine goes on with it.
    engine = BehaviourEngine("cam-1", [], StoreInfo("store-001"))
    later = frame("cam-1", 1, 0, [person(7, (0.5, 0.8))], t0=datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC))
    state, _ = engine.step(state, later)
    assert state.tracks[7].last_us > 1_000_000


def test_occupancy_state_of_the_previous_release_resumes() -> None:
    state = snapshots.load(base64.b64decode(CAMERA_MINUTES))
    assert isinstance(state, CameraMinutes)
    assert (state.heat, state.last_seen, state.camera_id, state.max_us) == ({}, {}, "", 61_000_000)
    minute = frame("cam-1", 9, 62.0, [person(1, (0.5, 0.8))], t0=datetime(1970, 1, 1, tzinfo=UTC))
    observe(state, Frame.from_detection(minute), ZoneIndex(), 10_000_000)
    assert len(state.heat) == 1 and state.open[60_000_000]["*"].frames == 4


def test_state_pickled_under_the_module_paths_before_the_behaviour_package_resumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shelf = ZoneArea("z-shelf", "high_value", ((0.4, 0.5), (0.6, 0.5), (0.6, 1.0), (0.4, 1.0)))
    engine = BehaviourEngine("cam-1", [shelf], StoreInfo("store-001"))
    first = frame("cam-1", 1, 0, [person(7, (0.5, 0.8))], t0=datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
    state, _ = engine.step(None, first)
    assert type(state.tracks[7].visits["z-shelf"]) is tracks.Visit
    # Pickle it as the previous release did: its classes in the module flows.tracks.
    monkeypatch.setitem(sys.modules, "flows.tracks", tracks)
    for cls in vars(tracks).values():
        if isinstance(cls, type) and is_dataclass(cls) and cls.__module__ == tracks.__name__:
            monkeypatch.setattr(cls, "__module__", "flows.tracks")
    old = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    monkeypatch.undo()
    assert b"flows.tracks" in old and b"flows.behaviour" not in old
    with pytest.raises(ModuleNotFoundError, match="flows.tracks"):
        pickle.loads(old)  # no module is left at the old path

    resumed = snapshots.load(old)
    assert resumed == state  # every class the same as this release's (dataclasses compare types)
    later = frame("cam-1", 2, 0.2, [person(7, (0.5, 0.8))], t0=first.ts)
    resumed, _ = engine.step(resumed, later)
    assert resumed.tracks[7].visits["z-shelf"].seconds == pytest.approx(0.2)  # the visit goes on
