"""Incidents (owner of `incidents`): the flow's idempotent, version-guarded upserts, the
analysts' verdicts, and the questions the review pages, the CSV export and the digests ask.

Two kinds of caller, two shapes. The pipeline (`upsert_incidents`, `incidents_written`,
`reviewed_incidents` for the calibration) sees every store. Everything a person asks for
takes the caller's `Scope` (the store ids it may see) first: a caller limited to one store
gets nothing of another, whatever filters it passes, because the scope is part of every
query's WHERE clause, not a filter applied afterwards. SQL is parameterised only. Filter
values that cannot match (an unknown store, an injection string) give an empty answer;
values that make no sense (a reversed date range, an unknown incident type, a page size out
of bounds) raise `QueryError` with a message a page can show.

Dates are calendar days in each store's own time zone: "1 to 7 March" means the incidents
that started on those days where they happened.

A verdict is written here alone (`record_verdict`), and marks the incident seen by its
reviewer through `warehouse.seen`, the owner of `incident_seen`, in the same transaction.

Retention (privacy.purge) asks which incidents have evidence past their store's retention
(`evidence_past_retention`: per kind, the store's `privacy.retention_days`, counted from
the incident's end, else its last update; never under an active legal hold) and marks what
it deleted (`mark_evidence_gone`: the time each kind went, and the snapshot reference
cleared with its file, for good). The due list is read once per run, so a legal hold can be
placed after it was read: the purge locks the incident's row (`lock_incident`, SELECT ... FOR
UPDATE) in the transaction that marks it and then asks for a hold in a statement of its own,
which sees any hold committed meanwhile; warehouse.evidence_log.hold locks the same row before
it inserts, so the two take turns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from psycopg.types.json import Jsonb

from shrinkwatch.contracts import Incident
from shrinkwatch.site_file import RetentionDays
from shrinkwatch.spreadsheets import csv_bytes
from warehouse.db import Connection
from warehouse.scope import Cursor, IncidentFilter, QueryError, Scope, check_text
from warehouse.seen import mark_seen

# An older or repeated version never overwrites a newer one, and the analyst's review
# columns are never touched by the pipeline. A snapshot that retention purged stays gone: a
# replayed state still carries its reference, but the file behind it was deleted.
_UPSERT = """
INSERT INTO incidents (incident_id, version, store_id, camera_id, track_id, incident_type,
                       risk_score, risk_level, status, started_at, updated_at, ended_at,
                       zone_ids, signals, snapshot, weights_version)
VALUES (%(incident_id)s, %(version)s, %(store_id)s, %(camera_id)s, %(track_id)s,
        %(incident_type)s, %(risk_score)s, %(risk_level)s, %(status)s, %(started_at)s,
        %(updated_at)s, %(ended_at)s, %(zone_ids)s, %(signals)s, %(snapshot)s,
        %(weights_version)s)
ON CONFLICT (incident_id) DO UPDATE SET
    version = EXCLUDED.version, store_id = EXCLUDED.store_id, camera_id = EXCLUDED.camera_id,
    track_id = EXCLUDED.track_id, incident_type = EXCLUDED.incident_type,
    risk_score = EXCLUDED.risk_score, risk_level = EXCLUDED.risk_level,
    status = EXCLUDED.status, started_at = EXCLUDED.started_at,
    updated_at = EXCLUDED.updated_at, ended_at = EXCLUDED.ended_at,
    zone_ids = EXCLUDED.zone_ids, signals = EXCLUDED.signals,
    weights_version = EXCLUDED.weights_version,
    snapshot = CASE WHEN incidents.snapshot_purged_at IS NULL
                    THEN COALESCE(EXCLUDED.snapshot, incidents.snapshot) END,
    last_written_at = now()
WHERE incidents.version < EXCLUDED.version
"""


def _params(incident: Incident, weights_version: int | None) -> dict[str, Any]:
    return {
        "weights_version": weights_version,
        "incident_id": incident.incident_id,
        "version": incident.version,
        "store_id": incident.store_id,
        "camera_id": incident.camera_id,
        "track_id": incident.track_id,
        "incident_type": incident.incident_type,
        "risk_score": incident.risk_score,
        "risk_level": incident.risk_level,
        "status": incident.status,
        "started_at": incident.started_at,
        "updated_at": incident.updated_at,
        "ended_at": incident.ended_at,
        "zone_ids": incident.zone_ids,
        "signals": Jsonb([s.model_dump() for s in incident.signals]),
        "snapshot": incident.snapshot,
    }


def upsert_incidents(conn: Connection, incidents: Iterable[Incident | tuple[Incident, int | None]]) -> None:
    """Write incident states, each alone or with the risk-weights version that scored it;
    safe to repeat (replays after a restart change nothing)."""
    latest: dict[str, tuple[Incident, int | None]] = {}
    for item in incidents:
        incident, weights_version = item if isinstance(item, tuple) else (item, None)
        seen = latest.get(incident.incident_id)
        if seen is None or incident.version > seen[0].version:
            latest[incident.incident_id] = (incident, weights_version)
    if not latest:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_UPSERT, [_params(i, v) for i, v in latest.values()])


def incidents_written(
    conn: Connection, *, camera_id: str | None = None, since: datetime | None = None
) -> int:
    """How many incidents the warehouse holds (of one camera, first written since a time)."""
    row = conn.execute(
        """SELECT count(*) AS n FROM incidents
           WHERE (%(camera)s::text IS NULL OR camera_id = %(camera)s)
             AND (%(since)s::timestamptz IS NULL OR first_seen_at >= %(since)s)""",
        {"camera": camera_id, "since": since},
    ).fetchone()
    return int(row["n"]) if row else 0


def reviewed_incidents(conn: Connection) -> list[dict[str, Any]]:
    """Every incident with an analyst's verdict: store, signals, confirmed or not."""
    return conn.execute(
        """SELECT store_id, signals, user_confirmed, reviewed_at FROM incidents
           WHERE user_confirmed IS NOT NULL ORDER BY store_id, incident_id"""
    ).fetchall()


def record_verdict(
    conn: Connection, scope: Scope, incident_id: str, *, confirmed: bool, reviewer: str, note: str | None
) -> bool:
    """An analyst's verdict (confirmed or rejected, and a note) on an incident within the
    scope; the calibration learns from it. False when there is no such incident in scope.
    Reviewing also marks the incident seen by the reviewer (an account)."""
    note = (note or "").strip() or None
    if note is not None and len(note) > 2000:
        msg = "note: at most 2000 characters"
        raise QueryError(msg)
    with conn.transaction():
        row = conn.execute(
            """UPDATE incidents SET user_confirmed = %(confirmed)s, reviewed_by = %(reviewer)s,
                   reviewed_at = now(), review_note = %(note)s
               WHERE incident_id = %(id)s AND store_id = ANY(%(scope)s) RETURNING incident_id""",
            {
                "confirmed": confirmed,
                "reviewer": reviewer,
                "note": note,
                "id": incident_id,
                "scope": sorted(scope.store_ids),
            },
        ).fetchone()
        if row is not None:
            mark_seen(conn, scope, reviewer, [incident_id])
    return row is not None


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
# Store-local days become each store's UTC bounds, and also bounds a day wider in UTC that
# hold every store's (no time zone is a day away from UTC): a range started_at's index
# serves, whatever the stores. The review states are plain conditions on user_confirmed,
# which the planner can estimate (a CASE expression it cannot: it then sorted everything).
_WHERE = """
    i.store_id = ANY(%(scope)s)
    AND (%(stores)s::text[] IS NULL OR i.store_id = ANY(%(stores)s))
    AND (%(cameras)s::text[] IS NULL OR i.camera_id = ANY(%(cameras)s))
    AND (%(types)s::text[] IS NULL OR i.incident_type = ANY(%(types)s))
    AND (%(levels)s::text[] IS NULL OR i.risk_level = ANY(%(levels)s))
    AND (%(statuses)s::text[] IS NULL OR i.status = ANY(%(statuses)s))
    AND (%(review)s::text[] IS NULL
         OR (i.user_confirmed IS NULL AND 'unreviewed' = ANY(%(review)s))
         OR (i.user_confirmed AND 'confirmed' = ANY(%(review)s))
         OR (NOT i.user_confirmed AND 'rejected' = ANY(%(review)s)))
    AND (%(first_day)s::date IS NULL
         OR (i.started_at >= (%(first_day)s::date - 1)::timestamp AT TIME ZONE 'UTC'
             AND i.started_at >= (%(first_day)s::date::timestamp AT TIME ZONE s.timezone)))
    AND (%(last_day)s::date IS NULL
         OR (i.started_at < (%(last_day)s::date + 2)::timestamp AT TIME ZONE 'UTC'
             AND i.started_at < ((%(last_day)s::date + 1)::timestamp AT TIME ZONE s.timezone)))
    AND i.risk_score >= %(min_score)s
    AND (%(after)s::timestamptz IS NULL OR i.started_at > %(after)s)
    AND (%(before)s::timestamptz IS NULL OR i.started_at <= %(before)s)
"""


def _filter_params(scope: Scope, filters: IncidentFilter) -> dict[str, Any]:
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
        "after": filters.started_after,
        "before": filters.started_before,
    }


# "seen": whether %(viewer)s has seen it (NULL viewer: false), apart from any verdict.
_SEEN = """EXISTS (SELECT 1 FROM incident_seen v
                   WHERE v.incident_id = i.incident_id AND v.username = %(viewer)s) AS seen"""


def incidents_page(
    conn: Connection,
    scope: Scope,
    filters: IncidentFilter = IncidentFilter(),
    *,
    after: Cursor | None = None,
    page_size: int = 50,
    viewer: str | None = None,
) -> tuple[pd.DataFrame, Cursor | None]:
    """One page of incidents, newest first, and the cursor of the next page (None at the
    end). Columns: INCIDENT_COLUMNS, then `seen` (by `viewer`). Keyset paging: as fast on
    page 2,000 as on page 1."""
    if not 1 <= page_size <= 1000:
        msg = f"page_size: {page_size} is outside 1..1000"
        raise QueryError(msg)
    check_text("after", after.incident_id if after else None)
    check_text("viewer", viewer)
    params = _filter_params(scope, filters) | {
        "after_ts": after.started_at if after else None,
        "after_id": after.incident_id if after else None,
        "limit": page_size + 1,
        "viewer": viewer,
    }
    rows = conn.execute(
        f"""SELECT {", ".join(f"i.{c}" for c in INCIDENT_COLUMNS)}, {_SEEN}
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
    frame = pd.DataFrame(rows, columns=[*INCIDENT_COLUMNS, "seen"])
    cursor = Cursor(rows[-1]["started_at"], rows[-1]["incident_id"]) if more else None
    return frame, cursor


def incident_detail(
    conn: Connection, scope: Scope, incident_id: str, *, viewer: str | None = None
) -> dict[str, Any] | None:
    """One incident (INCIDENT_COLUMNS, `seen`, when retention or an erasure deleted its
    snapshot / clip (`snapshot_purged_at`, `clip_purged_at`), and the store's name, time zone
    and privacy settings), or None when it does not exist or is outside the scope: the two
    look the same to the caller."""
    check_text("incident_id", incident_id)
    check_text("viewer", viewer)
    return conn.execute(
        f"""SELECT {", ".join(f"i.{c}" for c in INCIDENT_COLUMNS)}, {_SEEN},
                   i.snapshot_purged_at, i.clip_purged_at,
                   s.name AS store_name, s.timezone AS store_timezone, s.privacy AS store_privacy
            FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE i.incident_id = %(id)s AND i.store_id = ANY(%(scope)s)""",  # noqa: S608
        {"id": incident_id, "scope": sorted(scope.store_ids), "viewer": viewer},
    ).fetchone()


def next_unreviewed(
    conn: Connection, scope: Scope, filters: IncidentFilter = IncidentFilter(), *, skip: tuple[str, ...] = ()
) -> str | None:
    """The newest incident without a verdict that matches the filters (other than those in
    `skip`), or None when there is none left."""
    check_text("skip", *skip)
    params = _filter_params(scope, replace(filters, review=("unreviewed",))) | {"skip": list(skip)}
    row = conn.execute(
        f"""SELECT i.incident_id FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE {_WHERE} AND NOT (i.incident_id = ANY(%(skip)s))
            ORDER BY i.started_at DESC, i.incident_id DESC LIMIT 1""",  # noqa: S608
        params,
    ).fetchone()
    return row["incident_id"] if row else None


def incident_count(conn: Connection, scope: Scope, filters: IncidentFilter = IncidentFilter()) -> int:
    """How many incidents match (within the scope)."""
    row = conn.execute(
        f"SELECT count(*) AS n FROM incidents i JOIN stores s ON s.id = i.store_id WHERE {_WHERE}",  # noqa: S608
        _filter_params(scope, filters),
    ).fetchone()
    return int(row["n"]) if row else 0


def incidents_csv(conn: Connection, scope: Scope, filters: IncidentFilter, *, limit: int = 100_000) -> bytes:
    """The filtered list as CSV (newest first, at most `limit` rows; signals as
    name=contribution pairs), for spreadsheets: no cell runs as a formula
    (shrinkwatch.spreadsheets)."""
    params = _filter_params(scope, filters) | {"limit": limit}
    columns = [c for c in INCIDENT_COLUMNS if c not in ("signals", "snapshot")]
    rows = conn.execute(
        f"""SELECT {", ".join(f"i.{c}" for c in columns)},
                   (SELECT string_agg((x ->> 'name') || '=' || round((x ->> 'contribution')::numeric, 3), ' ')
                    FROM jsonb_array_elements(i.signals) x) AS signals
            FROM incidents i JOIN stores s ON s.id = i.store_id
            WHERE {_WHERE}
            ORDER BY i.started_at DESC, i.incident_id DESC LIMIT %(limit)s""",  # noqa: S608
        params,
    ).fetchall()
    header = [*columns, "signals"]
    cells = ({**row, "zone_ids": " ".join(row["zone_ids"] or [])} for row in rows)
    return csv_bytes(header, ([row[c] for c in header] for row in cells))


def newest_snapshots(conn: Connection, limit: int = 50) -> list[tuple[str, str]]:
    """The newest incidents' (id, snapshot name), of any store, newest first (for the README's
    screenshots: whether a file was saved under the name is for the caller to look)."""
    rows = conn.execute(
        """SELECT incident_id, snapshot FROM incidents WHERE snapshot IS NOT NULL
           ORDER BY started_at DESC LIMIT %s""",
        (limit,),
    ).fetchall()
    return [(row["incident_id"], row["snapshot"]) for row in rows]


# -- retention ----------------------------------------------------------------------------
EVIDENCE_KINDS = ("snapshots", "clips")


def lock_incident(conn: Connection, incident_id: str) -> bool:
    """Lock the incident's row until the caller's transaction ends (SELECT ... FOR UPDATE,
    waiting for whoever holds it); False when there is no such incident."""
    row = conn.execute("SELECT 1 FROM incidents WHERE incident_id = %s FOR UPDATE", (incident_id,)).fetchone()
    return row is not None


def mark_evidence_gone(conn: Connection, incident_id: str, kinds: Iterable[str]) -> bool:
    """Note that retention (or an erasure) deleted these kinds of the incident's evidence: the
    time each went (the first time only), and the snapshot reference cleared with the snapshot.
    False when there is no such incident."""
    kinds = set(kinds)
    if not kinds <= set(EVIDENCE_KINDS):
        msg = f"unknown evidence kinds {sorted(kinds - set(EVIDENCE_KINDS))} (of {', '.join(EVIDENCE_KINDS)})"
        raise ValueError(msg)
    row = conn.execute(
        """UPDATE incidents SET
               snapshot_purged_at = CASE WHEN %(snapshots)s THEN coalesce(snapshot_purged_at, now())
                                         ELSE snapshot_purged_at END,
               clip_purged_at = CASE WHEN %(clips)s THEN coalesce(clip_purged_at, now())
                                     ELSE clip_purged_at END,
               snapshot = CASE WHEN %(snapshots)s THEN NULL ELSE snapshot END
           WHERE incident_id = %(id)s RETURNING incident_id""",
        {"id": incident_id, "snapshots": "snapshots" in kinds, "clips": "clips" in kinds},
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class EvidenceDue:
    """An incident with evidence past its store's retention: the kinds now due (of
    EVIDENCE_KINDS) and those that went before."""

    incident_id: str
    camera_id: str
    store_id: str
    due: tuple[str, ...]
    gone: tuple[str, ...]


# A store's retention per kind from its privacy settings (the site file's defaults where it
# says nothing), counted from the incident's end, else its last update.
_PAST_RETENTION = """
SELECT i.incident_id, i.camera_id, i.store_id,
       i.snapshot_purged_at IS NULL AND r.since < now() - make_interval(days => r.snapshots) AS snapshots_due,
       i.clip_purged_at IS NULL AND r.since < now() - make_interval(days => r.clips) AS clips_due,
       i.snapshot_purged_at IS NOT NULL AS snapshots_gone,
       i.clip_purged_at IS NOT NULL AS clips_gone
FROM incidents i
LEFT JOIN stores s ON s.id = i.store_id
CROSS JOIN LATERAL (
    SELECT coalesce((s.privacy #>> '{retention_days,snapshots}')::int, %(snapshots)s) AS snapshots,
           coalesce((s.privacy #>> '{retention_days,clips}')::int, %(clips)s) AS clips,
           coalesce(i.ended_at, i.updated_at) AS since
) r
WHERE (i.snapshot_purged_at IS NULL OR i.clip_purged_at IS NULL)
  AND ((i.snapshot_purged_at IS NULL AND r.since < now() - make_interval(days => r.snapshots))
       OR (i.clip_purged_at IS NULL AND r.since < now() - make_interval(days => r.clips)))
  AND EXISTS (SELECT 1 FROM legal_holds h
              WHERE h.incident_id = i.incident_id AND h.released_at IS NULL) = %(held)s
ORDER BY r.since, i.incident_id
"""


def evidence_past_retention(conn: Connection, *, held: bool = False) -> list[EvidenceDue]:
    """Every incident (of any store) with a kind of evidence past its store's retention and not
    yet marked gone, oldest first; not those under an active legal hold (`held=True`: only
    those, which the purge keeps)."""
    defaults = RetentionDays()
    rows = conn.execute(
        _PAST_RETENTION, {"snapshots": defaults.snapshots, "clips": defaults.clips, "held": held}
    ).fetchall()
    return [
        EvidenceDue(
            incident_id=row["incident_id"],
            camera_id=row["camera_id"],
            store_id=row["store_id"],
            due=tuple(k for k in EVIDENCE_KINDS if row[f"{k}_due"]),
            gone=tuple(k for k in EVIDENCE_KINDS if row[f"{k}_gone"]),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class EvidenceMarks:
    """What is known of one incident's evidence: its camera, and the kinds retention removed."""

    incident_id: str
    camera_id: str
    gone: tuple[str, ...]


def evidence_marks(conn: Connection, incident_ids: Iterable[str]) -> dict[str, EvidenceMarks]:
    """The incidents among these ids that exist, by id (those that do not are left out)."""
    rows = conn.execute(
        """SELECT incident_id, camera_id, snapshot_purged_at IS NOT NULL AS snapshots_gone,
                  clip_purged_at IS NOT NULL AS clips_gone
           FROM incidents WHERE incident_id = ANY(%s)""",
        (list(incident_ids),),
    ).fetchall()
    return {
        row["incident_id"]: EvidenceMarks(
            row["incident_id"], row["camera_id"], tuple(k for k in EVIDENCE_KINDS if row[f"{k}_gone"])
        )
        for row in rows
    }
