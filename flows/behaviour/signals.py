"""Risk signals: what the rules measure on a track, how strongly, and what each is worth.

Built-in signals have a strength in 0..1 (`track_strengths`) and a default weight
(`BUILT_IN_WEIGHTS`); six of them are incident patterns (`PATTERNS`), and an incident opens
when one of those fires (`triggered`). The score itself is flows.behaviour.risk.

Extra signals: a data team's function over a track's state, registered by name.

    from flows.behaviour.signals import register_signal

    @register_signal("zones_visited", weight=0.15)
    def zones_visited(track, rules):
        n = len(set(track.path))
        return float(n), min(1.0, max(0.0, (n - 2) / 3))

The function returns (measured value, strength in 0..1). A registered signal adds
weight x strength to the score of the person's incident and appears in its explanation;
it does not open an incident by itself (incident types are part of the public contract).
Modules that register signals are named in the `extensions` setting and imported when a
flow starts.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable

from flows.behaviour.tracks import Thresholds, TrackState
from shrinkwatch.contracts import IncidentType

log = logging.getLogger(__name__)

BUILT_IN_WEIGHTS: dict[str, float] = {
    "dwell_high_value_s": 0.8,  # 0.4 at the loitering threshold, 0.8 from twice it
    "skipped_checkout": 0.55,  # reached an exit after a high-value zone, no checkout between
    "restricted_zone_s": 0.9,
    "after_hours_s": 1.0,
    "concealment_cue_s": 0.9,
    "running_exit": 0.6,
    "bag_present": 0.1,  # a modifier: never enough on its own
    "crowd_size": 0.8,
}

# Which signal makes which incident type (the type is the triggered one contributing most).
PATTERNS: dict[IncidentType, str] = {
    "loitering_high_value": "dwell_high_value_s",
    "exit_without_checkout": "skipped_checkout",
    "restricted_zone": "restricted_zone_s",
    "after_hours": "after_hours_s",
    "concealment_suspected": "concealment_cue_s",
    "running_exit": "running_exit",
}


def ramp(value: float, threshold: float) -> float:
    """Strength of a measured duration: 0 below the threshold, 0.5 at it, 1 from twice it."""
    if threshold <= 0 or value < threshold:
        return 0.0
    return min(1.0, value / (2 * threshold))


def track_strengths(track: TrackState, rules: Thresholds) -> dict[str, tuple[float, float]]:
    """{signal: (value, strength)} for one track, the registered signals included."""
    return {
        "dwell_high_value_s": (track.max_dwell_high_value, ramp(track.max_dwell_high_value, rules.loiter_s)),
        "skipped_checkout": (float(track.skipped_checkout), float(track.skipped_checkout)),
        "restricted_zone_s": (track.restricted_s, ramp(track.restricted_s, rules.restricted_s)),
        "after_hours_s": (track.after_hours_s, ramp(track.after_hours_s, rules.after_hours_s)),
        "concealment_cue_s": (track.concealment_s, ramp(track.concealment_s, rules.concealment_s)),
        "running_exit": (float(track.running_exit), float(track.running_exit)),
        "bag_present": (float(track.bag_frames), 1.0 if track.bag_frames >= 3 else 0.0),
        **extra_strengths(track, rules),
    }


def crowd_strength(peak: int, rules: Thresholds) -> dict[str, tuple[float, float]]:
    """{signal: (value, strength)} of a crowding episode: its peak, full at twice the threshold."""
    return {"crowd_size": (float(peak), min(1.0, peak / (2 * rules.crowd_people)))}


def triggered(track: TrackState, rules: Thresholds) -> bool:
    """Whether any incident pattern has fired for this track (a pattern signal of
    `track_strengths` above 0: `ramp(v, t) > 0` is `v >= t > 0`); cheap, so that most
    sightings skip scoring."""
    return (
        track.skipped_checkout
        or track.running_exit
        or track.max_dwell_high_value >= rules.loiter_s > 0
        or track.restricted_s >= rules.restricted_s > 0
        or track.after_hours.longest_s >= rules.after_hours_s > 0
        or track.concealment.longest_s >= rules.concealment_s > 0
    )


SignalFn = Callable[[TrackState, Thresholds], tuple[float, float]]
_REGISTRY: dict[str, tuple[SignalFn, float]] = {}
_FAILED: set[str] = set()


def register_signal(name: str, weight: float) -> Callable[[SignalFn], SignalFn]:
    """Decorator: add a signal (its name must be new) with its default weight."""
    if name in BUILT_IN_WEIGHTS:
        msg = f"signal {name!r} is built in; choose another name"
        raise ValueError(msg)
    if not 0 <= weight <= 1:
        msg = f"signal {name!r}: weight must be in 0..1, got {weight}"
        raise ValueError(msg)

    def decorate(fn: SignalFn) -> SignalFn:
        _REGISTRY[name] = (fn, weight)
        return fn

    return decorate


def unregister_signal(name: str) -> None:
    """Remove a registered signal (tests use this)."""
    _REGISTRY.pop(name, None)
    _FAILED.discard(name)


def default_weight(name: str) -> float:
    """A signal's default weight: built in, else registered, else 0."""
    if name in BUILT_IN_WEIGHTS:
        return BUILT_IN_WEIGHTS[name]
    return _REGISTRY[name][1] if name in _REGISTRY else 0.0


def extra_strengths(track: TrackState, rules: Thresholds) -> dict[str, tuple[float, float]]:
    """{name: (value, strength)} of every registered signal; a failing one counts as 0."""
    out = {}
    for name, (fn, _weight) in _REGISTRY.items():
        try:
            value, strength = fn(track, rules)
            out[name] = (float(value), min(1.0, max(0.0, float(strength))))
        except Exception:
            if name not in _FAILED:  # say it once, keep the flow running
                _FAILED.add(name)
                log.exception("signal %s failed; it counts as 0", name)
    return out


def load_extensions(modules: Iterable[str]) -> None:
    """Import the modules that register signals."""
    from shrinkwatch.errors import ConfigError

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            msg = f"extensions: cannot import {module!r}: {exc}"
            raise ConfigError(msg) from None
