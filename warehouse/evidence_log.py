"""The evidence access log and legal holds (owner of `evidence_access` and `legal_holds`).

`evidence_access` is append-only (a trigger refuses UPDATE, TRUNCATE and any DELETE but the
log's own retention, `purge_access_log`, and that only of rows older than KEEP_AT_LEAST, 90
days, whoever sets its switch: migration 0020): one row per view, download, reveal and export of
evidence, per access request answered, per erasure, per hold and release, and per incident
whose files the retention purge deleted; who (`username`, `retention` for the purge), when,
which incident or camera (the incident's store and camera are filled in from the incident),
from where (`client`: the address a request came from, `cli` for the command line), the
reason where one is asked, and what else is worth keeping (`detail`: the file, the kind of
export, how many files went).

A video player fetches a clip in many pieces and the live view refreshes every second:
`record(..., once_per_s=...)` writes nothing when the same person's same access to the same
thing from the same place (action, incident, camera, client and the whole `detail`: the file,
and whether it was the revealed one) is already logged within that many seconds; the same
account from another address (a stolen cookie) is a row of its own.

A reveal (an analyst's "show me the faces of this incident", with a reason) is a row of this
log too, and what says it is in force: `revealed_until` reads it back, so no other table
can disagree with what was logged.

A legal hold keeps one incident's evidence past its store's retention until released; each
hold and release is logged here too, in the same transaction. `hold` locks the incident's row
first (warehouse.incidents.lock_incident), as the purge does before it checks for a hold and
marks the evidence gone: a hold placed while a purge runs either lands before the purge looks
(and is seen) or waits until that incident's evidence is marked gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from psycopg.types.json import Jsonb

from warehouse.db import Connection
from warehouse.incidents import lock_incident

# The dashboard logs one view per person, thing and file every ten minutes (a clip fetched in
# ranges, the live view refreshed each second, a page drawn again: one watching, one row).
ONCE_PER_S = 600.0
# The log's rows are kept at least this long, whatever retention_evidence_access_days says
# (its settings floor is the same): the table's trigger refuses to delete a younger row.
KEEP_AT_LEAST = timedelta(days=90)
ACTIONS = ("view", "download", "reveal", "export", "access_request", "erase", "hold", "release", "purge")
LOG_COLUMNS = (
    "at",
    "username",
    "action",
    "store_id",
    "camera_id",
    "incident_id",
    "client",
    "reason",
    "detail",
)


def record(
    conn: Connection,
    *,
    username: str,
    action: str,
    incident_id: str | None = None,
    camera_id: str | None = None,
    store_id: str | None = None,
    client: str | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
    once_per_s: float = 0.0,
) -> bool:
    """Log one access (see the module docstring); whether a row was written (False: the same
    access was logged within `once_per_s`)."""
    if action not in ACTIONS:
        msg = f"unknown evidence action {action!r} (one of {', '.join(ACTIONS)})"
        raise ValueError(msg)
    detail = dict(detail or {})
    row = conn.execute(
        """INSERT INTO evidence_access
               (username, action, store_id, camera_id, incident_id, client, reason, detail)
           SELECT %(username)s, %(action)s,
                  coalesce(%(store_id)s, i.store_id, c.store_id),
                  coalesce(%(camera_id)s, i.camera_id), %(incident_id)s,
                  %(client)s, %(reason)s, %(detail)s
           FROM (SELECT 1) AS one
           LEFT JOIN incidents i ON i.incident_id = %(incident_id)s
           LEFT JOIN cameras c ON c.id = coalesce(%(camera_id)s, i.camera_id)
           WHERE %(once_per_s)s <= 0 OR NOT EXISTS (
               SELECT 1 FROM evidence_access a
               WHERE a.username = %(username)s AND a.action = %(action)s
                 AND a.incident_id IS NOT DISTINCT FROM %(incident_id)s
                 AND a.camera_id IS NOT DISTINCT FROM coalesce(%(camera_id)s, i.camera_id)
                 AND a.client IS NOT DISTINCT FROM %(client)s
                 AND a.detail = %(detail)s
                 AND a.at > now() - make_interval(secs => %(once_per_s)s))
           RETURNING id""",
        {
            "username": username,
            "action": action,
            "store_id": store_id,
            "camera_id": camera_id,
            "incident_id": incident_id,
            "client": client,
            "reason": reason,
            "detail": Jsonb(detail),
            "once_per_s": float(once_per_s),
        },
    ).fetchone()
    return row is not None


def access_log(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    usernames: Iterable[str] = (),
    actions: Iterable[str] = (),
    store_ids: Iterable[str] = (),
    incident_id: str | None = None,
    camera_id: str | None = None,
    limit: int = 10_000,
) -> pd.DataFrame:
    """The log's rows matching every filter given, newest first (at most `limit`)."""
    rows = conn.execute(
        f"""SELECT {", ".join(LOG_COLUMNS)} FROM evidence_access
            WHERE (%(since)s::timestamptz IS NULL OR at >= %(since)s)
              AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
              AND (cardinality(%(users)s::text[]) = 0 OR username = ANY(%(users)s))
              AND (cardinality(%(actions)s::text[]) = 0 OR action = ANY(%(actions)s))
              AND (cardinality(%(stores)s::text[]) = 0 OR store_id = ANY(%(stores)s))
              AND (%(incident)s::text IS NULL OR incident_id = %(incident)s)
              AND (%(camera)s::text IS NULL OR camera_id = %(camera)s)
            ORDER BY at DESC, id DESC LIMIT %(limit)s""",
        {
            "since": since,
            "until": until,
            "users": list(usernames),
            "actions": list(actions),
            "stores": list(store_ids),
            "incident": incident_id,
            "camera": camera_id,
            "limit": limit,
        },
    ).fetchall()
    return pd.DataFrame(rows, columns=list(LOG_COLUMNS))


def log_usernames(conn: Connection) -> list[str]:
    """Everyone the log names, for the page's filter."""
    return [r["username"] for r in conn.execute("SELECT DISTINCT username FROM evidence_access ORDER BY 1")]


def purge_access_log(conn: Connection, keep: timedelta) -> int:
    """The log's own retention: delete its rows older than `keep` (at least KEEP_AT_LEAST);
    how many went."""
    if keep < KEEP_AT_LEAST:
        msg = f"the evidence access log is kept at least {KEEP_AT_LEAST.days} days (asked: {keep})"
        raise ValueError(msg)
    with conn.transaction():
        conn.execute("SET LOCAL shrinkwatch.evidence_access_retention = 'on'")
        cur = conn.execute("DELETE FROM evidence_access WHERE at < now() - %s", (keep,))
    return cur.rowcount


# -- legal holds ---------------------------------------------------------------------------
def hold(conn: Connection, incident_id: str, *, by: str, reason: str, client: str | None = None) -> bool:
    """Put the incident's evidence under a legal hold; False when it is already held. The
    incident's row is locked first (see the module docstring)."""
    if not reason.strip():
        msg = "a legal hold needs a reason"
        raise ValueError(msg)
    with conn.transaction():
        lock_incident(conn, incident_id)
        row = conn.execute(
            """INSERT INTO legal_holds (incident_id, held_by, reason) VALUES (%s, %s, %s)
               ON CONFLICT (incident_id) WHERE released_at IS NULL DO NOTHING RETURNING id""",
            (incident_id, by, reason.strip()),
        ).fetchone()
        if row is None:
            return False
        record(
            conn, username=by, action="hold", incident_id=incident_id, client=client, reason=reason.strip()
        )
    return True


def release(conn: Connection, incident_id: str, *, by: str, reason: str, client: str | None = None) -> bool:
    """Release the incident's legal hold (its evidence then follows the store's retention);
    False when it was not held."""
    if not reason.strip():
        msg = "releasing a legal hold needs a reason"
        raise ValueError(msg)
    with conn.transaction():
        row = conn.execute(
            """UPDATE legal_holds SET released_by = %s, released_at = now(), release_reason = %s
               WHERE incident_id = %s AND released_at IS NULL RETURNING id""",
            (by, reason.strip(), incident_id),
        ).fetchone()
        if row is None:
            return False
        record(
            conn, username=by, action="release", incident_id=incident_id, client=client, reason=reason.strip()
        )
    return True


HOLD_COLUMNS = ("incident_id", "held_by", "held_at", "reason", "released_by", "released_at", "release_reason")


def active_hold(conn: Connection, incident_id: str) -> dict[str, Any] | None:
    """The incident's hold in force (who, when, why), or None."""
    return conn.execute(
        f"SELECT {', '.join(HOLD_COLUMNS)} FROM legal_holds WHERE incident_id = %s AND released_at IS NULL",
        (incident_id,),
    ).fetchone()


def holds(conn: Connection, *, include_released: bool = False) -> pd.DataFrame:
    """Every hold in force (and released ones when asked), newest first."""
    rows = conn.execute(
        f"""SELECT {", ".join(HOLD_COLUMNS)} FROM legal_holds
            WHERE %s OR released_at IS NULL ORDER BY held_at DESC, id DESC""",
        (include_released,),
    ).fetchall()
    return pd.DataFrame(rows, columns=list(HOLD_COLUMNS))


# -- reveals -------------------------------------------------------------------------------
def reveal(
    conn: Connection, incident_id: str, *, by: str, reason: str, minutes: int, client: str | None = None
) -> datetime:
    """Log that `by` reveals the incident's unblurred evidence for `minutes`, with a reason
    (required); until when it is revealed to them."""
    if not reason.strip():
        msg = "revealing faces needs a reason"
        raise ValueError(msg)
    record(
        conn,
        username=by,
        action="reveal",
        incident_id=incident_id,
        client=client,
        reason=reason.strip(),
        detail={"minutes": minutes},
    )
    until = revealed_until(conn, by, incident_id, minutes)
    if until is None:  # (only a clock gone backwards between the two statements)
        msg = "the reveal just logged is not in force"
        raise RuntimeError(msg)
    return until


def revealed_until(conn: Connection, username: str, incident_id: str, minutes: int) -> datetime | None:
    """Until when the incident's unblurred evidence is revealed to `username`: their latest
    reveal of it (this log's "reveal" rows) plus `minutes`, or None when that time has passed
    or they never revealed it."""
    row = conn.execute(
        """SELECT max(at) + make_interval(mins => %(minutes)s) AS until FROM evidence_access
           WHERE username = %(username)s AND action = 'reveal' AND incident_id = %(incident)s
           HAVING max(at) + make_interval(mins => %(minutes)s) > now()""",
        {"username": username, "incident": incident_id, "minutes": minutes},
    ).fetchone()
    return None if row is None else row["until"]


def purge_marks(conn: Connection, incident_id: str) -> dict[str, Any] | None:
    """When retention deleted the incident's snapshot and clip (`snapshot_purged_at`,
    `clip_purged_at`, None while kept), and its store's `privacy` settings (the site file's,
    `{}` when it set none), for saying why evidence is missing; None when no such incident."""
    return conn.execute(
        """SELECT i.snapshot_purged_at, i.clip_purged_at, coalesce(s.privacy, '{}'::jsonb) AS privacy
           FROM incidents i LEFT JOIN stores s ON s.id = i.store_id WHERE i.incident_id = %s""",
        (incident_id,),
    ).fetchone()
