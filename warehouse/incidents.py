"""Incidents in PostgreSQL: idempotent, version-guarded upserts and the queries behind review."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shrinkwatch.contracts import Incident
from warehouse.db import Connection

# An older or repeated version never overwrites a newer one, and the analyst's review
# columns are never touched by the pipeline.
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
    snapshot = COALESCE(EXCLUDED.snapshot, incidents.snapshot), last_written_at = now()
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


def count_incidents(conn: Connection, *, camera_id: str | None = None, since: datetime | None = None) -> int:
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


def review_incident(
    conn: Connection, incident_id: str, *, confirmed: bool, reviewed_by: str, note: str | None = None
) -> bool:
    """Record an analyst's verdict on an incident (True when the incident exists)."""
    row = conn.execute(
        """UPDATE incidents SET user_confirmed = %s, reviewed_by = %s, reviewed_at = now(),
                                review_note = %s
           WHERE incident_id = %s RETURNING incident_id""",
        (confirmed, reviewed_by, note, incident_id),
    ).fetchone()
    return row is not None
