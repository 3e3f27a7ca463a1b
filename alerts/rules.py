"""Who hears of what: recipients, their rules, and their quiet hours (pure functions).

A recipient hears of an incident when it is enabled, the incident's store is one of theirs,
its type is one they asked for (or they asked for every type) and its risk level is at
least their minimum. Quiet hours are in the incident's store's own time zone: an alert due
in them waits until they end (a span like 22:00-07:00 runs past midnight; on the nights the
clocks change, "07:00" is the 07:00 of that night's local time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shrinkwatch.errors import ShrinkwatchError

LEVELS = ("low", "medium", "high")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNELS = ("email", "sms", "webhook")


@dataclass(frozen=True)
class Recipient:
    """A person (or system) alerts go to, and their rule."""

    id: str
    name: str
    channels: tuple[str, ...]
    stores: tuple[str, ...]
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    min_level: str = "high"
    incident_types: tuple[str, ...] = ()
    quiet_start: time | None = None
    quiet_end: time | None = None
    max_per_hour: int = 10
    enabled: bool = True
    digest: str | None = None  # 'daily 07:00' or 'weekly mon 07:00' (recipient's timezone)
    timezone: str = "UTC"


@dataclass(frozen=True)
class Schedule:
    """When digests are due: at `at` on `weekday` (0 = Monday), or every day when None."""

    at: time
    weekday: int | None = None


def parse_schedule(text: str) -> Schedule:
    """'daily HH:MM' or 'weekly DAY HH:MM'; ShrinkwatchError saying what is wrong."""
    parts = text.strip().lower().split()
    try:
        if len(parts) == 2 and parts[0] == "daily":
            return Schedule(time.fromisoformat(parts[1]))
        if len(parts) == 3 and parts[0] == "weekly" and parts[1] in DAYS:
            return Schedule(time.fromisoformat(parts[2]), DAYS.index(parts[1]))
    except ValueError:
        pass
    msg = f"digest schedule {text!r}: write 'daily 07:00' or 'weekly mon 07:00'"
    raise ShrinkwatchError(msg)


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


def problems(recipient: Recipient, known_stores: set[str]) -> list[str]:
    """What is wrong with a recipient, each naming the field (empty: nothing)."""
    import re
    from zoneinfo import ZoneInfoNotFoundError

    found = []
    if not re.match(r"^[a-z0-9][a-z0-9._@-]{0,63}$", recipient.id):
        found.append("id: use 1-64 of a-z 0-9 . _ @ -, starting with a letter or digit")
    if not recipient.name.strip():
        found.append("name: required")
    if not recipient.channels or set(recipient.channels) - set(CHANNELS):
        found.append(f"channels: one or more of {', '.join(CHANNELS)}")
    if "email" in recipient.channels and not (recipient.email and "@" in recipient.email):
        found.append("email: an address is needed for the email channel")
    if "sms" in recipient.channels and not (
        recipient.phone and re.match(r"^\+[1-9]\d{6,14}$", recipient.phone)
    ):
        found.append("phone: an E.164 number (+447700900123) is needed for the sms channel")
    if "webhook" in recipient.channels and not (
        recipient.webhook_url
        and recipient.webhook_url.startswith(("https://", "http://"))
        and recipient.webhook_secret
    ):
        found.append("webhook: a URL and a secret are needed for the webhook channel")
    if not recipient.stores:
        found.append("stores: at least one")
    unknown = sorted(set(recipient.stores) - known_stores)
    if unknown:
        found.append(f"stores: unknown {', '.join(unknown)}")
    if recipient.min_level not in LEVELS:
        found.append(f"min_level: one of {', '.join(LEVELS)}")
    if (recipient.quiet_start is None) != (recipient.quiet_end is None):
        found.append("quiet hours: give both ends, or neither")
    if recipient.max_per_hour < 1:
        found.append("max_per_hour: at least 1")
    try:
        ZoneInfo(recipient.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        found.append(f"timezone: {recipient.timezone!r} is not an IANA time zone")
    if recipient.digest:
        try:
            parse_schedule(recipient.digest)
        except ShrinkwatchError as exc:
            found.append(str(exc))
    return found
