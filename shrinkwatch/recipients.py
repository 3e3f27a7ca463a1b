"""Alert recipients as data: who they are, how to reach them, their rule, and what makes a
recipient invalid. One definition for every place a recipient is written: the dashboard's
Alert settings page, the site file's `alerts.recipients` (shrinkwatch.site_file) and the
tests. How alerts use a rule (who hears of what, quiet hours) is `alerts.rules`.

Secrets (`SECRET_FIELDS`: the webhook secret, the Apprise URL that holds a service's token)
are written as `${VAR}` references and stored so (shrinkwatch.placeholders); `with_secret`
reads one from the environment when a message is sent. Values stored before references were
required still work (`literal_secrets` lists them, for `alerts run --check` to warn).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.hours import DAYS
from shrinkwatch.placeholders import (
    FORM,
    placeholders,
    reserved,
    reserved_message,
    resolve_placeholders,
    resolve_secret,
    well_formed,
    whole_reference,
)

LEVELS = ("low", "medium", "high")
CHANNELS = ("email", "sms", "webhook", "apprise")
SECRET_OF_CHANNEL = {"webhook": "webhook_secret", "apprise": "apprise_url"}  # the channel's secret
SECRET_FIELDS = tuple(SECRET_OF_CHANNEL.values())
_ID = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


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
    webhook_secret: str | None = field(default=None, repr=False)  # ${VAR}
    apprise_url: str | None = field(default=None, repr=False)  # ${VAR}: slack://..., msteams://...
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


def quiet_apprise() -> None:
    """Apprise's log lines can carry pieces of a URL, which are the service's tokens: they
    stay within Apprise's own logger (read with apprise.LogCapture, scrubbed) and never
    reach ours."""
    import logging

    logger = logging.getLogger("apprise")
    if logger.propagate:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def _apprise_problems(url: str | None) -> list[str]:
    if not url:
        return ["apprise_url: an Apprise URL (slack://..., msteams://...) is needed for the apprise channel"]
    import apprise

    quiet_apprise()
    if apprise.Apprise.instantiate(url) is None:
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        return [
            f"apprise_url: Apprise cannot use a {scheme}:// URL like this one (see its wiki for the form)"
        ]
    return []


def _reference_problems(recipient: Recipient) -> list[str]:
    """Each secret must be written as a `${VAR}` reference, never as the secret itself."""
    found = []
    for name in SECRET_FIELDS:
        value = getattr(recipient, name)
        if not value:
            continue
        if not well_formed(value):
            found.append(f"{name}: {FORM}")
        elif not whole_reference(value):
            # The whole value: an Apprise URL with a ${VAR} inside would send that variable's
            # value to whatever host the rest of it names.
            what = "the whole URL as one ${VAR}" if name == "apprise_url" else "it as ${VAR}"
            found.append(f"{name}: write {what}, with VAR set in the environment: secrets are never stored")
        elif names := reserved(value):
            found.append(f"{name}: {reserved_message(names)}")
    return found


def recipient_problems(recipient: Recipient, *, references: bool = False) -> list[str]:
    """What is wrong with a recipient, each as 'field: what' (empty: nothing). Whether its
    stores exist is for the caller, who knows them. `references`: the recipient as it is
    written (a site file, the dashboard), whose secrets must be `${VAR}` references (what
    they give is `environment_problems`); otherwise, as it is used, its secrets read."""
    found = []
    if not _ID.match(recipient.id):
        found.append("id: use 1-64 of a-z 0-9 . _ @ -, starting with a letter or digit")
    if not recipient.name.strip():
        found.append("name: required")
    if not recipient.channels or set(recipient.channels) - set(CHANNELS):
        found.append(f"channels: one or more of {', '.join(CHANNELS)}")
    if "email" in recipient.channels and not (recipient.email and "@" in recipient.email):
        found.append("email: an address is needed for the email channel")
    if "sms" in recipient.channels and not (recipient.phone and _PHONE.match(recipient.phone)):
        found.append("phone: an E.164 number (+447700900123) is needed for the sms channel")
    if "webhook" in recipient.channels and not (
        recipient.webhook_url
        and recipient.webhook_url.startswith(("https://", "http://"))
        and recipient.webhook_secret
    ):
        found.append("webhook_url: a URL and a secret are needed for the webhook channel")
    if references:
        found += _reference_problems(recipient)
        if "apprise" in recipient.channels and not recipient.apprise_url:
            found += _apprise_problems(None)
    elif "apprise" in recipient.channels:
        found += _apprise_problems(recipient.apprise_url)
    if not recipient.stores:
        found.append("stores: at least one")
    unknown_types = sorted(set(recipient.incident_types) - set(INCIDENT_TYPES))
    if unknown_types:
        found.append(
            f"incident_types: unknown {', '.join(unknown_types)} (one of {', '.join(INCIDENT_TYPES)})"
        )
    if recipient.min_level not in LEVELS:
        found.append(f"min_level: one of {', '.join(LEVELS)}")
    if (recipient.quiet_start is None) != (recipient.quiet_end is None):
        found.append("quiet_hours: give both ends, or neither")
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
            found.append(f"digest: {exc}")
    return found


def environment_problems(recipient: Recipient, environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the secrets the environment gives a recipient written with `${VAR}`
    references (valid as written), each as 'field: what': a variable that is not set, or a
    value that is empty or malformed (nothing of the value is said)."""
    unset = {}
    for name in SECRET_FIELDS:
        if value := getattr(recipient, name):
            try:
                resolve_placeholders(value, environ)
            except KeyError as exc:
                unset[name] = exc.args[0]
    if unset:
        return [f"{name}: not set in the environment: {names}" for name, names in unset.items()]
    values: dict[str, Any] = {
        name: resolve_placeholders(value, environ)
        for name in SECRET_FIELDS
        if (value := getattr(recipient, name))
    }
    used = replace(recipient, **values)
    return [f"{problem} (from the environment)" for problem in recipient_problems(used)]


def with_secret(recipient: Recipient, name: str, environ: Mapping[str, str]) -> str | None:
    """One of the recipient's secrets as a channel uses it now (never to store or log):
    `${VAR}` read from `environ`; UnsetVariable names the recipient, the field and the
    variable."""
    value: str | None = getattr(recipient, name)
    return resolve_secret(value, f"recipient {recipient.id}: {name}", environ) if value else None


def literal_secrets(recipient: Recipient) -> list[str]:
    """The recipient's secrets stored as values, not `${VAR}` references (written before
    references were required): they still work, but they are secrets at rest in clear."""
    return [name for name in SECRET_FIELDS if (value := getattr(recipient, name)) and not placeholders(value)]


class RecipientEntry(BaseModel):
    """A recipient as the site file writes it (`alerts.recipients[]`): lists for tuples,
    `quiet_hours: "22:00-07:00"` (the stores' local time) for the two ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    channels: list[str] = Field(default_factory=lambda: ["email"])
    stores: list[str]
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None  # ${VAR}: read from the environment when used
    apprise_url: str | None = None  # ${VAR} too
    min_level: str = "high"
    incident_types: list[str] = Field(default_factory=list)
    quiet_hours: str | None = None
    max_per_hour: int = 10
    enabled: bool = True
    digest: str | None = None
    timezone: str = "UTC"

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_span(cls, value: str | None) -> str | None:
        if value is not None and not _QUIET.match(value):
            msg = f"expected 'HH:MM-HH:MM' (for example 22:00-07:00), got {value!r}"
            raise ValueError(msg)
        return value

    def to_recipient(self, **changes: Any) -> Recipient:
        start = end = None
        if self.quiet_hours:
            first, second = self.quiet_hours.split("-")
            start, end = time.fromisoformat(first), time.fromisoformat(second)
        values = self.model_dump(exclude={"quiet_hours"})
        values |= {
            "channels": tuple(self.channels),
            "stores": tuple(self.stores),
            "incident_types": tuple(self.incident_types),
            "quiet_start": start,
            "quiet_end": end,
        }
        return Recipient(**(values | changes))
