"""The one query layer the dashboard and the alerts call: typed filters, a required scope.

Every function takes the caller's `Scope` (the store ids it may see) first: a caller limited
to one store gets nothing of another, whatever filters it passes, because the scope is part
of every query's WHERE clause, not a filter applied afterwards. SQL is parameterised only.
Filter values that cannot match (an unknown store, an injection string) give an empty
answer; values that make no sense (a reversed date range, an unknown incident type, a page
size out of bounds) raise `QueryError` with a message a page can show.

Dates are calendar days in each store's own time zone: "1 to 7 March" means the incidents
that started on those days where they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.errors import ShrinkwatchError
from warehouse.db import Connection

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

    def check(self) -> None:
        """QueryError naming the first value that makes no sense."""
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


INCIDENT_COLUMNS = (
    "incident_id",
    "version",
    "store_id",
    "camera_id",
    "track_id",
    "incident_type",
    "risk_score",
    "risk_level",
    "status",
    "started_at",
    "updated_at",
    "ended_at",
    "zone_ids",
    "signals",
    "snapshot",
    "user_confirmed",
    "reviewed_by",
    "reviewed_at",
    "review_note",
    "weights_version",
)

# The scope first; every other condition is "no restriction" when its parameter is NULL.
_WHERE = """
    i.store_id = ANY(%(scope)s)
    AND (%(stores)s::text[] IS NULL OR i.store_id = ANY(%(stores)s))
    AND (%(cameras)s::text[] IS NULL OR i.camera_id = ANY(%(cameras)s))
    AND (%(types)s::text[] IS NULL OR i.incident_type = ANY(%(types)s))
    AND (%(levels)s::text[] IS NULL OR i.risk_level = ANY(%(levels)s))
    AND (%(statuses)s::text[] IS NULL OR i.status = ANY(%(statuses)s))
    AND (%(review)s::text[] IS NULL OR CASE
            WHEN i.user_confirmed IS NULL THEN 'unreviewed'
            WHEN i.user_confirmed THEN 'confirmed' ELSE 'rejected' END = ANY(%(review)s))
    AND (%(first_day)s::date IS NULL OR (i.started_at AT TIME ZONE s.timezone)::date >= %(first_day)s)
    AND (%(last_day)s::date IS NULL OR (i.started_at AT TIME ZONE s.timezone)::date <= %(last_day)s)
    AND i.risk_score >= %(min_score)s
"""


def _params(scope: Scope, filters: IncidentFilter) -> dict[str, Any]:
    filters.check()

    def listed(values: tuple[str, ...]) -> list[str] | None:
        return list(values) or None

    return {
        "scope": sorted(scope.store_ids),
        "stores": listed(filters.stores),
        "cameras": listed(filters.cameras),
        "types": listed(filters.types),
        "levels": listed(filters.levels),
        "statuses": listed(filters.statuses),
        "review": listed(filters.review),
        "first_day": filters.first_day,
        "last_day": filters.last_day,
        "min_score": filters.min_score,
    }


def incidents_page(
    conn: Connection,
    scope: Scope,
    filters: IncidentFilter = IncidentFilter(),
    *,
    after: Cursor | None = None,
    page_size: int = 50,
) -> tuple[pd.DataFrame, Cursor | None]:
    """One page of incidents, newest first, and the cursor of the next page (None at the
    end). Columns: INCIDENT_COLUMNS. Keyset paging: as fast on page 2,000 as on page 1."""
    if not 1 <= page_size <= 1000:
        msg = f"page_size: {page_size} is outside 1..1000"
        raise QueryError(msg)
    params = _params(scope, filters) | {
        "after_ts": after.started_at if after else None,
        "after_id": after.incident_id if after else None,
        "limit": page_size + 1,
    }
    rows = conn.execute(
        f"""SELECT {", ".join(f"i.{c}" for c in INCIDENT_COLUMNS)}
            FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE {_WHERE}
              AND (%(after_ts)s::timestamptz IS NULL
                   OR (i.started_at, i.incident_id) < (%(after_ts)s, %(after_id)s))
            ORDER BY i.started_at DESC, i.incident_id DESC
            LIMIT %(limit)s""",  # noqa: S608 (the column list is ours; values are parameters)
        params,
    ).fetchall()
    more = len(rows) > page_size
    rows = rows[:page_size]
    frame = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
    cursor = Cursor(rows[-1]["started_at"], rows[-1]["incident_id"]) if more else None
    return frame, cursor


def incident_count(conn: Connection, scope: Scope, filters: IncidentFilter = IncidentFilter()) -> int:
    """How many incidents match (within the scope)."""
    row = conn.execute(
        f"SELECT count(*) AS n FROM incidents i JOIN stores s ON s.id = i.store_id WHERE {_WHERE}",  # noqa: S608
        _params(scope, filters),
    ).fetchone()
    return int(row["n"]) if row else 0
