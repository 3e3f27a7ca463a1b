"""Digest watermarks (owner of `alert_digests`): up to when each recipient's digests have
gone, and the lock that lets one dispatcher among many run the digest scheduler.

alerts.digest decides which window is due and what the digest says; it queues the digest
(`warehouse.alert_outbox.add_message`) and moves the watermark here in one transaction, the
watermark's row held from the moment it was read (`watermark(..., lock=True)`), so asking
twice queues one digest.
"""

from __future__ import annotations

from datetime import datetime

from warehouse.db import Connection

DIGEST_LOCK = 0x5357_4447  # pg_try_advisory_lock: one scheduler for all dispatchers


def watermark(conn: Connection, recipient_id: str, *, lock: bool = False) -> datetime | None:
    """Up to when the recipient's digests have gone (None: none yet); `lock` holds the row for
    the caller's transaction."""
    query = "SELECT watermark FROM alert_digests WHERE recipient_id = %s"
    row = conn.execute(f"{query} FOR UPDATE" if lock else query, (recipient_id,)).fetchone()
    return row["watermark"] if row else None


def move_watermark(conn: Connection, recipient_id: str, end: datetime) -> None:
    """The recipient's digests have gone up to `end` (a watermark never moves back), in the
    caller's transaction."""
    conn.execute(
        """INSERT INTO alert_digests (recipient_id, watermark) VALUES (%s, %s)
           ON CONFLICT (recipient_id) DO UPDATE SET
               watermark = greatest(alert_digests.watermark, EXCLUDED.watermark), updated_at = now()""",
        (recipient_id, end),
    )


def take_scheduler_lock(conn: Connection) -> bool:
    """Whether this session now holds the digest scheduler's lock (held until it ends; an
    autocommit connection kept open for it)."""
    held = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (DIGEST_LOCK,)).fetchone()
    return held is not None and bool(held["ok"])
