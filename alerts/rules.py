"""Who hears of what: recipients, their rules, and their quiet hours (pure functions).

A recipient hears of an incident when it is enabled, the incident's store is one of theirs,
its type is one they asked for (or they asked for every type) and its risk level is at
least their minimum. Quiet hours are in the incident's store's own time zone: an alert due
in them waits until they end (a span like 22:00-07:00 runs past midnight; on the nights the
clocks change, "07:00" is the 07:00 of that night's local time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shrinkwatch.recipients import (
    CHANNELS,
    DAYS,
    LEVELS,
    Recipient,
    Schedule,
    environment_problems,
    parse_schedule,
    recipient_problems,
)

__all__ = [
    "CHANNELS",
    "DAYS",
    "LEVELS",
    "Recipient",
    "Schedule",
    "at_least",
    "interested",
    "parse_schedule",
    "problems",
    "quiet_until",
]


def at_least(level: str, minimum: str) -> bool:
    """Whether a risk level is `minimum` or above."""
    return LEVELS.index(level) >= LEVELS.index(minimum)


def interested(recipient: Recipient, store_id: str, incident_type: str, level: str) -> bool:
    """Whether the recipient's rule asks for this incident."""
    return (
        recipient.enabled
        and store_id in recipient.stores
        and (not recipient.incident_types or incident_type in recipient.incident_types)
        and at_least(level, recipient.min_level)
    )


def quiet_until(recipient: Recipient, when: datetime, timezone: str) -> datetime | None:
    """If `when` falls in the recipient's quiet hours (store-local), the moment they end
    (UTC); else None."""
    start, end = recipient.quiet_start, recipient.quiet_end
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(timezone)
    local = when.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if start < end:  # e.g. 12:00-14:00, within one day
        if not start <= now < end:
            return None
        end_day = local.date()
    else:  # e.g. 22:00-07:00, past midnight
        if end <= now < start:
            return None
        end_day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, zone).astimezone(UTC)


def problems(recipient: Recipient, known_stores: set[str], environ: Mapping[str, str]) -> list[str]:
    """What is wrong with a recipient as written (the dashboard), each naming the field (empty:
    nothing): its secrets must be `${VAR}` references that `environ` sets to values that work."""
    found = recipient_problems(recipient, references=True) or environment_problems(recipient, environ)
    unknown = sorted(set(recipient.stores) - known_stores)
    if unknown:
        found.append(f"stores: unknown {', '.join(unknown)}")
    return found
