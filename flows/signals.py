"""Extra risk signals: a data team's function over a track's state, registered by name.

    from flows.signals import register_signal

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flows.behaviour import Thresholds, TrackState

log = logging.getLogger(__name__)

SignalFn = Callable[["TrackState", "Thresholds"], tuple[float, float]]
_REGISTRY: dict[str, tuple[SignalFn, float]] = {}
_FAILED: set[str] = set()


def register_signal(name: str, weight: float) -> Callable[[SignalFn], SignalFn]:
    """Decorator: add a signal (its name must be new) with its default weight."""
    from flows.risk import DEFAULT_WEIGHTS

    if name in DEFAULT_WEIGHTS:
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


def registered_weight(name: str) -> float:
    """Default weight of a registered signal (0 for an unknown name)."""
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
