"""Recovery snapshots written by the previous release (before the behaviour split and the
heatmap) resume in this one: pickled state bytes made by that release, read here."""

from __future__ import annotations

import base64
import pickle
from datetime import UTC, datetime

from flows.behaviour import BehaviourEngine
from flows.frames import Frame
from flows.occupancy import CameraMinutes, observe
from flows.stores import StoreInfo
from flows.tracks import CameraState, Sustained, TrackState, Visit
from flows.zones import ZoneIndex
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
    state = pickle.loads(base64.b64decode(CAMERA_STATE))
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
    state = pickle.loads(base64.b64decode(CAMERA_MINUTES))
    assert isinstance(state, CameraMinutes)
    assert (state.heat, state.last_seen, state.camera_id, state.max_us) == ({}, {}, "", 61_000_000)
    minute = frame("cam-1", 9, 62.0, [person(1, (0.5, 0.8))], t0=datetime(1970, 1, 1, tzinfo=UTC))
    observe(state, Frame.from_detection(minute), ZoneIndex(), 10_000_000)
    assert len(state.heat) == 1 and state.open[60_000_000]["*"].frames == 4
