"""Who is asking and what they ask: the signed-in account (`User`), the stores it may see
(`Scope`), the incident filters and page cursor the query functions take, and `QueryError`.

Text a caller passes (a store or camera id, an incident id, a username) that PostgreSQL cannot
even be sent (a NUL, an unpaired surrogate) is a `QueryError` naming the filter (`check_text`),
never a psycopg traceback: no stored value could match it.

These are values, with no SQL: the modules that own tables (accounts, sessions, incidents,
...) take or return them, so they live below all of those (accounts end sessions and sessions
return accounts: a `User` defined in either would make the two import each other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from shrinkwatch.contracts import INCIDENT_TYPES, text_problem
from shrinkwatch.errors import ShrinkwatchError

RISK_LEVELS = ("low", "medium", "high")
STATUSES = ("open", "closed")
REVIEW_STATES = ("unreviewed", "confirmed", "rejected")


class QueryError(ShrinkwatchError):
    """A filter that makes no sense (the message says which and why)."""


@dataclass(frozen=True)
class Scope:
    """The stores a caller may see; an empty scope sees nothing."""

    store_ids: frozenset[str]

    @classmethod
    def of(cls, *store_ids: str) -> Scope:
        return cls(frozenset(store_ids))


@dataclass(frozen=True)
class User:
    """A dashboard account as the app sees it."""

    username: str
    role: str
    stores: tuple[str, ...] = ()
    display_name: str = ""
    email: str | None = None
    disabled: bool = False

    @property
    def label(self) -> str:
        return self.display_name or self.username

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        """The account of a `users` row (username, role, stores, display_name, email, disabled)."""
        return cls(
            row["username"],
            row["role"],
            tuple(row["stores"]),
            row["display_name"],
            row["email"],
            row["disabled"],
        )


@dataclass(frozen=True)
class IncidentFilter:
    """What to list; None (or empty) means no restriction on that field."""

    stores: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    review: tuple[str, ...] = ()  # unreviewed / confirmed / rejected
    first_day: date | None = None  # store-local, inclusive
    last_day: date | None = None  # store-local, inclusive
    min_score: float = field(default=0.0)
    started_after: datetime | None = None  # an exact window (digests): after ...
    started_before: datetime | None = None  # ... and up to and including this instant

    def check(self) -> None:
        """QueryError naming the first value that makes no sense."""
        check_text("stores", *self.stores)
        check_text("cameras", *self.cameras)
        for name, values, allowed in (
            ("types", self.types, INCIDENT_TYPES),
            ("levels", self.levels, RISK_LEVELS),
            ("statuses", self.statuses, STATUSES),
            ("review", self.review, REVIEW_STATES),
        ):
            unknown = sorted(set(values) - set(allowed))
            if unknown:
                msg = (
                    f"{name}: unknown value(s) {', '.join(map(repr, unknown))}; expected {', '.join(allowed)}"
                )
                raise QueryError(msg)
        if self.first_day and self.last_day and self.first_day > self.last_day:
            msg = f"date range: {self.first_day} is after {self.last_day}"
            raise QueryError(msg)
        if not 0.0 <= self.min_score <= 1.0:
            msg = f"min_score: {self.min_score} is outside 0..1"
            raise QueryError(msg)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the next page starts after this incident (newest first)."""

    started_at: datetime
    incident_id: str


def check_days(first_day: date, last_day: date) -> None:
    """QueryError unless the range runs forwards (one day is a range)."""
    if first_day > last_day:
        msg = f"date range: {first_day} is after {last_day}"
        raise QueryError(msg)


def check_text(name: str, *values: str | None) -> None:
    """QueryError naming the filter when a value is text PostgreSQL cannot be sent (a NUL, an
    unpaired surrogate): no stored value could match it."""
    for value in values:
        problem = None if value is None else text_problem(value)
        if problem is not None:
            msg = f"{name}: {value!r} {problem}"
            raise QueryError(msg)
