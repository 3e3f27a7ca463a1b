"""What the behaviour rules know about a store: time zone, opening hours, thresholds, weights."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flows.behaviour.frames import MINUTE_US, from_us
from flows.behaviour.risk import Weights
from flows.behaviour.tracks import Thresholds
from shrinkwatch.hours import open_at


@functools.lru_cache(maxsize=8192)
def _open_in_minute(timezone: str, hours: tuple[tuple[str, str], ...], minute: int) -> bool:
    local = from_us(minute * MINUTE_US).astimezone(ZoneInfo(timezone))
    return open_at(dict(hours), local.weekday(), local.strftime("%H:%M"))


@dataclass(frozen=True)
class StoreInfo:
    """A store as the rules see it."""

    store_id: str
    timezone: str = "UTC"
    # (day, "HH:MM-HH:MM") pairs; a missing day is closed, () is closed every day, and
    # None means the hours are unknown: never after hours.
    hours: tuple[tuple[str, str], ...] | None = None
    thresholds: Thresholds = Thresholds()
    weights: Weights = Weights()

    def is_open_us(self, us: int) -> bool:
        """Whether the store is open at this instant (microseconds since the epoch), in its
        local time; unknown hours count as open. Hours have minute resolution."""
        if self.hours is None:
            return True
        return _open_in_minute(self.timezone, self.hours, us // MINUTE_US)
