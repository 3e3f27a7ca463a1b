"""An extra signal: people who browse many zones in one visit."""

from __future__ import annotations

from flows.behaviour.signals import register_signal
from flows.behaviour.tracks import Thresholds, TrackState


@register_signal("zones_visited", weight=0.15)
def zones_visited(track: TrackState, rules: Thresholds) -> tuple[float, float]:
    """Distinct zones visited; strength grows from the third zone and is full at the fifth."""
    count = len(set(track.path))
    return float(count), min(1.0, max(0.0, (count - 2) / 3))
