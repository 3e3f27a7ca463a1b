"""The disclosure register and subject access requests (owner of `disclosures` and
`access_requests`).

The register has one row per file handed to someone outside: a case file for the police or
an insurer (`kind` 'case') or the answer to a subject access request ('access_request', with
its `request_id`): when, by whom, to whom, why, which incidents of which stores, the file's
name and the SHA-256 of its bytes, so that a copy shown later can be matched with what left.
The answer to an access request names the requester as its recipient: only admins, who answer
them, read those rows (the pages ask for kind 'case' alone for anyone else).

A subject access request is answered within a month of the day it was received: `due_on` is
the same day of the next month, or that month's last day when it has no such day (31 January
-> 28 or 29 February), as the ICO counts it. A request is open until it is answered; one past
its due date is overdue. A request answered once may be answered again (the first answer
never reached the requester): each answer is a row of the register, and `answered_at` stays
the first one's.

The access requests' search for a camera's incidents in a time window reads `incidents` (its
owner is warehouse.incidents); nothing here writes it.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import pandas as pd

from shrinkwatch.spreadsheets import csv_bytes
from warehouse.db import Connection
from warehouse.scope import QueryError, Scope, check_text

KINDS = ("case", "access_request")
DISCLOSURE_COLUMNS = (
    "id",
    "at",
    "kind",
    "disclosed_by",
    "recipient",
    "reason",
    "incident_ids",
    "store_ids",
    "file_name",
    "sha256",
    "request_id",
)
REQUEST_COLUMNS = (
    "id",
    "received_on",
    "due_on",
    "requester",
    "description",
    "store_id",
    "camera_id",
    "window_start",
    "window_end",
    "recorded_by",
    "recorded_at",
    "answered_at",
    "answered_by",
)


def due_on(received_on: date) -> date:
    """The day a request received on `received_on` must be answered by: one calendar month
    later, the month's last day when it is shorter (31 Jan -> 28/29 Feb, 31 Mar -> 30 Apr)."""
    year, month = (
        (received_on.year + 1, 1) if received_on.month == 12 else (received_on.year, received_on.month + 1)
    )
    return date(year, month, min(received_on.day, calendar.monthrange(year, month)[1]))


def _required(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        msg = f"{name}: required"
        raise QueryError(msg)
    check_text(name, value)
    return value


# -- the disclosure register ---------------------------------------------------------------
def record_disclosure(
    conn: Connection,
    *,
    kind: str,
    disclosed_by: str,
    recipient: str,
    reason: str,
    incident_ids: Iterable[str],
    store_ids: Iterable[str],
    file_name: str,
    sha256: str,
    request_id: int | None = None,
) -> int:
    """Enter one file handed over in the register; its row id. QueryError for an unknown kind
    or a missing recipient or reason."""
    if kind not in KINDS:
        msg = f"kind: {kind!r} is not one of {', '.join(KINDS)}"
        raise QueryError(msg)
    row = conn.execute(
        """INSERT INTO disclosures (kind, disclosed_by, recipient, reason, incident_ids, store_ids,
                                    file_name, sha256, request_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            kind,
            disclosed_by,
            _required("recipient", recipient),
            _required("reason", reason),
            sorted(set(incident_ids)),
            sorted(set(store_ids)),
            file_name,
            sha256,
            request_id,
        ),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def disclosures(
    conn: Connection, scope: Scope, *, kinds: Iterable[str] = KINDS, limit: int = 10_000
) -> pd.DataFrame:
    """The register's rows of these kinds about any store in the scope, newest first
    (DISCLOSURE_COLUMNS). QueryError for an unknown kind."""
    kinds = _kinds(kinds)
    rows = conn.execute(
        f"""SELECT {", ".join(DISCLOSURE_COLUMNS)} FROM disclosures
            WHERE store_ids && %s::text[] AND kind = ANY(%s)
            ORDER BY at DESC, id DESC LIMIT %s""",  # noqa: S608
        (sorted(scope.store_ids), kinds, limit),
    ).fetchall()
    return pd.DataFrame(rows, columns=list(DISCLOSURE_COLUMNS))


def _kinds(kinds: Iterable[str]) -> list[str]:
    kinds = sorted(set(kinds))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        msg = f"kind: {', '.join(map(repr, unknown))} is not one of {', '.join(KINDS)}"
        raise QueryError(msg)
    return kinds


def disclosures_csv(conn: Connection, scope: Scope, *, kinds: Iterable[str] = KINDS) -> bytes:
    """The register (as `disclosures`) as CSV; lists joined by spaces, no cell a formula."""
    frame = disclosures(conn, scope, kinds=kinds)
    rows = (
        [" ".join(v) if isinstance(v, list) else ("" if v is None else v) for v in row]
        for row in frame.itertuples(index=False)
    )
    return csv_bytes(DISCLOSURE_COLUMNS, rows)


# -- subject access requests ---------------------------------------------------------------
def record_request(
    conn: Connection,
    *,
    received_on: date,
    requester: str,
    description: str,
    store_id: str,
    camera_id: str,
    window_start: datetime,
    window_end: datetime,
    recorded_by: str,
) -> int:
    """Record a subject access request (its due date from `due_on`); its id. QueryError when
    the requester is missing, the window is empty or reversed, or the camera is not the
    store's."""
    requester = _required("requester", requester)
    check_text("description", description)
    if window_end <= window_start:
        msg = "time window: its end must be after its start"
        raise QueryError(msg)
    camera = conn.execute(
        "SELECT 1 FROM cameras WHERE id = %s AND store_id = %s", (camera_id, store_id)
    ).fetchone()
    if camera is None:
        msg = f"camera: {camera_id} is not a camera of store {store_id}"
        raise QueryError(msg)
    row = conn.execute(
        """INSERT INTO access_requests (received_on, due_on, requester, description, store_id,
                                        camera_id, window_start, window_end, recorded_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            received_on,
            due_on(received_on),
            requester,
            description.strip(),
            store_id,
            camera_id,
            window_start,
            window_end,
            recorded_by,
        ),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def access_request(conn: Connection, request_id: int) -> dict[str, Any] | None:
    """One request (REQUEST_COLUMNS), or None."""
    return conn.execute(
        f"SELECT {', '.join(REQUEST_COLUMNS)} FROM access_requests WHERE id = %s",  # noqa: S608
        (request_id,),
    ).fetchone()


def access_requests(
    conn: Connection, scope: Scope, today: date, *, include_answered: bool = False
) -> pd.DataFrame:
    """The requests about stores in the scope, open ones first by due date (answered ones
    after, when asked): REQUEST_COLUMNS, then `days_left` (to the due date from `today`;
    negative: overdue) and `overdue`."""
    rows = conn.execute(
        f"""SELECT {", ".join(REQUEST_COLUMNS)}, (due_on - %(today)s::date) AS days_left,
                   (answered_at IS NULL AND due_on < %(today)s::date) AS overdue
            FROM access_requests
            WHERE store_id = ANY(%(scope)s) AND (%(answered)s OR answered_at IS NULL)
            ORDER BY answered_at IS NOT NULL, due_on, id""",  # noqa: S608
        {"today": today, "scope": sorted(scope.store_ids), "answered": include_answered},
    ).fetchall()
    return pd.DataFrame(rows, columns=[*REQUEST_COLUMNS, "days_left", "overdue"])


def mark_answered(conn: Connection, request_id: int, *, by: str) -> bool:
    """Mark a request answered (now, by whom); False when it was answered already or does not
    exist."""
    row = conn.execute(
        """UPDATE access_requests SET answered_at = now(), answered_by = %s
           WHERE id = %s AND answered_at IS NULL RETURNING id""",
        (by, request_id),
    ).fetchone()
    return row is not None


def camera_incidents(
    conn: Connection, scope: Scope, camera_id: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The incidents of a camera (in a store of the scope) that overlap the window [start,
    end): incident_id, store_id, camera_id, track_id, incident_type, started_at, ended_at,
    updated_at, snapshot_purged_at, clip_purged_at (when retention or an erasure deleted
    each kind, None while kept), store_name, store_timezone, store_privacy (the store's
    privacy settings); oldest first."""
    check_text("camera", camera_id)
    return conn.execute(
        """SELECT i.incident_id, i.store_id, i.camera_id, i.track_id, i.incident_type, i.started_at,
                  i.ended_at, i.updated_at, i.snapshot_purged_at, i.clip_purged_at,
                  s.name AS store_name, s.timezone AS store_timezone, s.privacy AS store_privacy
           FROM incidents i JOIN stores s ON s.id = i.store_id
           WHERE i.camera_id = %(camera)s AND i.store_id = ANY(%(scope)s)
             AND i.started_at < %(end)s AND coalesce(i.ended_at, i.updated_at) >= %(start)s
           ORDER BY i.started_at, i.incident_id""",
        {"camera": camera_id, "scope": sorted(scope.store_ids), "start": start, "end": end},
    ).fetchall()
