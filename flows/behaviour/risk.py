"""Explainable risk: a score in 0..1 as the capped sum of weighted signal strengths.

Each signal has a strength in 0..1 (how strongly the behaviour was seen) and a weight (how
much it says about theft). Its contribution is weight x strength; the score is the sum of
contributions, capped at 1, so the contributions on an incident add up to its score.
Weights are per store and versioned (the feedback calibration adjusts them); the signals'
default weights (flows.behaviour.signals) are the starting point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flows.behaviour.signals import BUILT_IN_WEIGHTS, default_weight
from shrinkwatch.contracts import Signal


@dataclass(frozen=True)
class Weights:
    """Signal weights in force for a store, with the version that produced them."""

    values: Mapping[str, float] = field(default_factory=lambda: dict(BUILT_IN_WEIGHTS))
    version: int = 0

    def of(self, name: str) -> float:
        """The weight of a signal: this store's, else its default (built in or registered)."""
        if name in self.values:
            return float(self.values[name])
        return default_weight(name)


def score(strengths: Mapping[str, tuple[float, float]], weights: Weights) -> tuple[float, list[Signal]]:
    """(score, signals) from {name: (measured value, strength 0..1)}; zero-strength signals are left out."""
    signals = []
    total = 0.0
    for name, (value, strength) in strengths.items():
        if strength <= 0:
            continue
        contribution = round(weights.of(name) * min(1.0, strength), 4)
        total += contribution
        signals.append(Signal(name=name, value=round(value, 3), contribution=contribution))
    signals.sort(key=lambda s: -s.contribution)
    return round(min(1.0, total), 4), signals
