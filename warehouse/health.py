"""Camera readers' latest health (migration 0013), written by the health flow."""

from __future__ import annotations

from typing import Any

from shrinkwatch.contracts import CameraHealth
from warehouse.db import Connection

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
