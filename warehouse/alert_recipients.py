"""Alert recipients and mutes (owner of `alert_recipients` and `alert_mutes`): who hears of
what, and which cameras or stores nobody hears of for a while.

Recipients come from the site file (`warehouse.site_tables` saves them in the site's own
transaction) and from the Alert settings page; alerts/ decides what each one hears of
(alerts.rules) from what `load_recipients` returns. A recipient's secrets are stored as the
`${VAR}` references they were given as, never resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from shrinkwatch.recipients import Recipient
from warehouse.db import Connection


def save_recipient(conn: Connection, recipient: Recipient) -> None:
    """Insert or replace an alert recipient (by id), in one transaction (the caller's, if any)."""
    with conn.transaction():
        conn.execute(
            """INSERT INTO alert_recipients (id, name, email, phone, webhook_url, webhook_secret, apprise_url,
                   channels, stores, min_level, incident_types, quiet_start, quiet_end, max_per_hour, enabled,
                   digest, timezone)
               VALUES (%(id)s, %(name)s, %(email)s, %(phone)s, %(webhook_url)s, %(webhook_secret)s,
                       %(apprise_url)s, %(channels)s, %(stores)s, %(min_level)s, %(incident_types)s,
                       %(quiet_start)s, %(quiet_end)s, %(max_per_hour)s, %(enabled)s, %(digest)s,
                       %(timezone)s)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
                   phone = EXCLUDED.phone, webhook_url = EXCLUDED.webhook_url,
                   webhook_secret = EXCLUDED.webhook_secret, apprise_url = EXCLUDED.apprise_url,
                   channels = EXCLUDED.channels,
                   stores = EXCLUDED.stores, min_level = EXCLUDED.min_level,
                   incident_types = EXCLUDED.incident_types, quiet_start = EXCLUDED.quiet_start,
                   quiet_end = EXCLUDED.quiet_end, max_per_hour = EXCLUDED.max_per_hour,
                   enabled = EXCLUDED.enabled, digest = EXCLUDED.digest, timezone = EXCLUDED.timezone,
                   updated_at = now()""",
            {
                **recipient.__dict__,
                "channels": list(recipient.channels),
                "stores": list(recipient.stores),
                "incident_types": list(recipient.incident_types),
            },
        )


def recipient_counts(conn: Connection) -> tuple[int, int]:
    """(enabled recipients, those of them who get email)."""
    row = conn.execute(
        """SELECT count(*) AS n, count(*) FILTER (WHERE 'email' = ANY(channels)) AS by_email
           FROM alert_recipients WHERE enabled"""
    ).fetchone()
    return (int(row["n"]), int(row["by_email"])) if row else (0, 0)


def load_recipients(
    conn: Connection, only: str | Sequence[str] | None = None, *, disabled_too: bool = False
) -> list[Recipient]:
    """Every enabled recipient (or just the one with id `only`, or those with these ids);
    with `disabled_too`, the disabled ones as well (for the settings page)."""
    ids = None if only is None else [only] if isinstance(only, str) else list(only)
    rows = conn.execute(
        """SELECT id, name, channels, stores, email, phone, webhook_url, webhook_secret, apprise_url,
                  min_level, incident_types, quiet_start, quiet_end, max_per_hour, enabled, digest, timezone
           FROM alert_recipients WHERE (enabled OR %s) AND (%s::text[] IS NULL OR id = ANY(%s))
           ORDER BY id""",
        (disabled_too, ids, ids),
    ).fetchall()
    return [
        Recipient(
            **{
                **r,
                "channels": tuple(r["channels"]),
                "stores": tuple(r["stores"]),
                "incident_types": tuple(r["incident_types"]),
            }
        )
        for r in rows
    ]


def mute(conn: Connection, kind: str, target: str, minutes: float, by: str) -> datetime:
    """No alerts about this camera or store for `minutes`; returns when the mute ends."""
    if kind not in ("camera", "store") or minutes <= 0:
        msg = "mute a camera or a store, for a positive number of minutes"
        raise ValueError(msg)
    with conn.transaction():
        table = "cameras" if kind == "camera" else "stores"
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = %s", (target,)).fetchone() is None:  # noqa: S608
            msg = f"no {kind} {target!r}"
            raise ValueError(msg)
        row = conn.execute(
            """INSERT INTO alert_mutes (kind, target, until, muted_by) VALUES (%s, %s, now() + %s, %s)
               ON CONFLICT (kind, target) DO UPDATE SET until = EXCLUDED.until, muted_by = EXCLUDED.muted_by,
                   created_at = now()
               RETURNING until""",
            (kind, target, timedelta(minutes=minutes), by),
        ).fetchone()
    assert row is not None
    until: datetime = row["until"]
    return until


def muted(conn: Connection, now: datetime) -> set[tuple[str, str]]:
    """(kind, target) of the mutes in force at `now`."""
    rows = conn.execute("SELECT kind, target FROM alert_mutes WHERE until > %s", (now,)).fetchall()
    return {(r["kind"], r["target"]) for r in rows}


def active_mutes(conn: Connection) -> list[dict[str, Any]]:
    """The mutes in force now (kind, target, until, muted_by), the first to end first."""
    return conn.execute(
        "SELECT kind, target, until, muted_by FROM alert_mutes WHERE until > now() ORDER BY until"
    ).fetchall()
