"""Cameras' health (owner of `camera_health`, migration 0013): each camera reader's newest
report, written by the health flow, and read by the dashboard's camera status and the alert
dispatcher's camera problems.

The flow may replay reports, so the write keeps the newest per camera and remembers since
when its status holds (what a camera alert is keyed by). The readers take a scope like every
question a person asks; the dispatcher's reader sees every store (it sends to each store's
own recipients).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shrinkwatch.contracts import CameraHealth
from warehouse.db import Connection
from warehouse.scope import Scope

if TYPE_CHECKING:  # pandas only for the dashboard's reader: the health flow never loads it
    import pandas as pd

_UPSERT = """
INSERT INTO camera_health (camera_id, store_id, status, status_since, reported_at, fps_in, fps_analysed,
                           last_frame_ts, error)
VALUES (%(camera_id)s, %(store_id)s, %(status)s, %(ts)s, %(ts)s, %(fps_in)s, %(fps_analysed)s,
        %(last_frame_ts)s, %(error)s)
ON CONFLICT (camera_id) DO UPDATE SET
    store_id = EXCLUDED.store_id,
    status = EXCLUDED.status,
    status_since = CASE WHEN camera_health.status = EXCLUDED.status THEN camera_health.status_since
                        ELSE EXCLUDED.reported_at END,
    reported_at = EXCLUDED.reported_at, fps_in = EXCLUDED.fps_in, fps_analysed = EXCLUDED.fps_analysed,
    last_frame_ts = EXCLUDED.last_frame_ts, error = EXCLUDED.error
WHERE EXCLUDED.reported_at > camera_health.reported_at
"""


def write_health(conn: Connection, reports: list[CameraHealth]) -> None:
    """Keep each camera's newest report (older or repeated ones change nothing), in order."""
    rows: list[dict[str, Any]] = [
        {
            "camera_id": r.camera_id,
            "store_id": r.store_id,
            "status": r.status,
            "ts": r.ts,
            "fps_in": r.fps_in,
            "fps_analysed": r.fps_analysed,
            "last_frame_ts": r.last_frame_ts,
            "error": r.error,
        }
        for r in sorted(reports, key=lambda r: r.ts)
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_UPSERT, rows)


def camera_status(conn: Connection, scope: Scope) -> pd.DataFrame:
    """Each camera of the stores in scope with its reader's latest health (None where no
    reader has reported). Columns: camera_id, store_id, name, status, status_since,
    reported_at, fps_in, fps_analysed, error."""
    import pandas as pd

    rows = conn.execute(
        """SELECT c.id AS camera_id, c.store_id, c.name, h.status, h.status_since, h.reported_at,
                  h.fps_in, h.fps_analysed, h.error
           FROM cameras c LEFT JOIN camera_health h ON h.camera_id = c.id
           WHERE c.store_id = ANY(%s) ORDER BY c.store_id, c.id""",
        (sorted(scope.store_ids),),
    ).fetchall()
    columns = [
        "camera_id",
        "store_id",
        "name",
        "status",
        "status_since",
        "reported_at",
        "fps_in",
        "fps_analysed",
        "error",
    ]
    return pd.DataFrame(rows, columns=columns)


def latest_health(conn: Connection) -> list[dict[str, Any]]:
    """Every camera's latest report with the camera's and its store's names (camera_id,
    store_id, status, status_since, error, name, store_name), of every store."""
    return conn.execute(
        """SELECT h.camera_id, h.store_id, h.status, h.status_since, h.error, c.name, s.name AS store_name
           FROM camera_health h JOIN cameras c ON c.id = h.camera_id JOIN stores s ON s.id = h.store_id"""
    ).fetchall()
