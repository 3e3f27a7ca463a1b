"""The alert outbox (migration 0015): exactly-once effect for alerts.

Enqueueing is idempotent: a message is keyed by (subject, recipient, channel, reason), so
reading an incident again (a restart, a replay of the topic) adds nothing. An incident gets
a `new` alert on its first version that meets a recipient's rule and, if that was below
high, one `escalated` alert when it becomes high; nothing else. Past a recipient's
`max_per_hour` on a channel, incidents are gathered into one `summary` message ("N more
incidents") sent when the hour is over, instead of silence.

Sending: a sender claims due rows as its PostgreSQL session (`sending`, `claimed_by` =
its backend pid, attempts + 1), sends each, then marks it `sent` in its own transaction
before the next. A failure goes back to `pending` with an exponential backoff, or to
`failed` when it cannot succeed (the channel refused it for good, or attempts ran out). A
sender that dies leaves its claims `sending`; once its session is gone from PostgreSQL,
any sender (another dispatcher, or this one restarted) puts them back to `pending`, and a
live sender's claims are never touched. A sender killed between the channel accepting a
message and marking it sent thus sends that one message again: that window (one message,
the time of one send) is the only way a recipient can get a message twice, and email
carries the same Message-ID both times so that mail systems can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from alerts.rules import Recipient, interested, quiet_until
from shrinkwatch.contracts import Incident
from shrinkwatch.logs import scrub
from warehouse.db import Connection

BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=30)


@dataclass(frozen=True)
class Outgoing:
    """A claimed message to send."""

    id: int
    subject: str
    recipient_id: str
    channel: str
    reason: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


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


def incident_payload(incident: Incident, store_name: str, store_timezone: str = "UTC") -> dict[str, Any]:
    """What a message about this incident says (rendered when it is sent)."""
    return {
        "incident_id": incident.incident_id,
        "version": incident.version,
        "incident_type": incident.incident_type,
        "risk_level": incident.risk_level,
        "risk_score": incident.risk_score,
        "status": incident.status,
        "store_id": incident.store_id,
        "store_name": store_name,
        "store_timezone": store_timezone,
        "camera_id": incident.camera_id,
        "started_at": incident.started_at.isoformat(),
        "zone_ids": list(incident.zone_ids),
        "signals": [s.model_dump() for s in incident.signals],
        "snapshot": incident.snapshot,
    }


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def enqueue_incident(
    conn: Connection,
    incident: Incident,
    recipients: list[Recipient],
    stores: dict[str, tuple[str, str]],
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> int:
    """Add the messages this incident version calls for (see the module docstring), in the
    caller's transaction; return how many rows were added or grew. `stores` maps a store id
    to (name, time zone). An incident last changed more than `max_age` ago is news to no one
    (a backlog, or a dispatcher's first start on a topic with history): nothing is queued."""
    now = now or datetime.now(UTC)
    latest = max(t for t in (incident.started_at, incident.updated_at, incident.ended_at) if t is not None)
    if max_age is not None and now - latest > max_age:
        return 0
    name, timezone = stores.get(incident.store_id, (incident.store_id, "UTC"))
    payload = incident_payload(incident, name, timezone)
    silenced = muted(conn, now)
    if ("camera", incident.camera_id) in silenced or ("store", incident.store_id) in silenced:
        return 0
    added = 0
    for recipient in recipients:
        if not interested(recipient, incident.store_id, incident.incident_type, incident.risk_level):
            continue
        not_before = quiet_until(recipient, now, timezone) or now
        for channel in recipient.channels:
            key = {"subject": incident.incident_id, "recipient": recipient.id, "channel": channel}
            first = conn.execute(
                """SELECT reason, payload ->> 'risk_level' AS level FROM alert_outbox
                   WHERE subject = %(subject)s AND recipient_id = %(recipient)s AND channel = %(channel)s
                     AND reason IN ('new', 'escalated')""",
                key,
            ).fetchall()
            reasons = {r["reason"]: r["level"] for r in first}
            summarised = conn.execute(
                """SELECT 1 FROM alert_outbox WHERE recipient_id = %(recipient)s AND channel = %(channel)s
                     AND reason = 'summary' AND payload -> 'incidents' ? %(subject)s""",
                key,
            ).fetchone()
            if summarised or "escalated" in reasons:
                continue
            if "new" in reasons:
                if incident.risk_level != "high" or reasons["new"] == "high":
                    continue
                reason = "escalated"
            else:
                reason = "new"
            recent = conn.execute(
                """SELECT count(*) AS n FROM alert_outbox
                   WHERE recipient_id = %(recipient)s AND channel = %(channel)s
                     AND reason IN ('new', 'escalated') AND created_at > %(since)s""",
                key | {"since": now - timedelta(hours=1)},
            ).fetchone()
            if recent is not None and recent["n"] >= recipient.max_per_hour:
                added += _add_to_summary(conn, recipient, channel, incident, name, now)
                continue
            added += conn.execute(
                """INSERT INTO alert_outbox
                       (subject, recipient_id, channel, reason, store_id, payload, not_before)
                   VALUES (%(subject)s, %(recipient)s, %(channel)s, %(reason)s, %(store)s, %(payload)s,
                           %(not_before)s)
                   ON CONFLICT (subject, recipient_id, channel, reason) DO NOTHING""",
                key
                | {
                    "reason": reason,
                    "store": incident.store_id,
                    "payload": Jsonb(payload),
                    "not_before": not_before,
                },
            ).rowcount
    return added


def _add_to_summary(
    conn: Connection, recipient: Recipient, channel: str, incident: Incident, store_name: str, now: datetime
) -> int:
    """Gather an incident past the hourly limit into the hour's one summary message."""
    hour = _hour(now)
    entry = {
        "incident_id": incident.incident_id,
        "incident_type": incident.incident_type,
        "risk_level": incident.risk_level,
        "store_name": store_name,
        "camera_id": incident.camera_id,
    }
    return conn.execute(
        """INSERT INTO alert_outbox (subject, recipient_id, channel, reason, payload, not_before)
           VALUES (%(subject)s, %(recipient)s, %(channel)s, 'summary',
                   jsonb_build_object('hour', %(hour)s::text, 'incidents', jsonb_build_array(%(id)s::text),
                                      'entries', jsonb_build_array(%(entry)s::jsonb)),
                   %(due)s)
           ON CONFLICT (subject, recipient_id, channel, reason) DO UPDATE SET payload =
               jsonb_set(jsonb_set(alert_outbox.payload, '{incidents}',
                                   (alert_outbox.payload -> 'incidents') || to_jsonb(%(id)s::text)),
                         '{entries}', (alert_outbox.payload -> 'entries') || %(entry)s::jsonb)
           WHERE NOT (alert_outbox.payload -> 'incidents' ? %(id)s) AND alert_outbox.status = 'pending'""",
        {
            "subject": f"summary:{hour.isoformat()}",
            "recipient": recipient.id,
            "channel": channel,
            "hour": hour.isoformat(),
            "id": incident.incident_id,
            "entry": Jsonb(entry),
            "due": hour + timedelta(hours=1),
        },
    ).rowcount


def recover_interrupted(conn: Connection) -> int:
    """Messages a dead sender left `sending` (its session is gone): back to `pending`, to be
    sent again (see above). A live sender's claims stay as they are."""
    with conn.transaction():
        return conn.execute(
            """UPDATE alert_outbox SET status = 'pending', claimed_by = NULL
               WHERE status = 'sending'
                 AND (claimed_by IS NULL OR claimed_by NOT IN (SELECT pid FROM pg_stat_activity))"""
        ).rowcount


def in_flight(conn: Connection, within: timedelta = timedelta(seconds=1)) -> bool:
    """Is any message being sent (claimed and not yet marked), or due `within` from now (one
    waiting a moment for its snapshot; not one waiting out a backoff)?"""
    with conn.transaction():
        row = conn.execute(
            """SELECT 1 FROM alert_outbox
               WHERE status = 'sending' OR (status = 'pending' AND not_before <= now() + %s) LIMIT 1""",
            (within,),
        ).fetchone()
    return row is not None


def claim_due(conn: Connection, limit: int = 20) -> list[Outgoing]:
    """Claim up to `limit` due messages for sending (others' claims are skipped)."""
    with conn.transaction():
        rows = conn.execute(
            """UPDATE alert_outbox
               SET status = 'sending', attempts = attempts + 1, claimed_by = pg_backend_pid()
               WHERE id IN (SELECT id FROM alert_outbox WHERE status = 'pending' AND not_before <= now()
                            ORDER BY not_before, id LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING id, subject, recipient_id, channel, reason, payload, attempts, created_at""",
            (limit,),
        ).fetchall()
    return [Outgoing(**r) for r in sorted(rows, key=lambda r: r["id"])]


def claim_ids(conn: Connection, ids: list[int]) -> list[Outgoing]:
    """Claim these pending messages (for sending now)."""
    with conn.transaction():
        rows = conn.execute(
            """UPDATE alert_outbox
               SET status = 'sending', attempts = attempts + 1, claimed_by = pg_backend_pid()
               WHERE id = ANY(%s) AND status = 'pending'
               RETURNING id, subject, recipient_id, channel, reason, payload, attempts, created_at""",
            (ids,),
        ).fetchall()
    return [Outgoing(**r) for r in sorted(rows, key=lambda r: r["id"])]


def defer(conn: Connection, message: Outgoing, until: datetime) -> None:
    """Put a claimed message back until `until`, as if it had not been tried (it was not)."""
    with conn.transaction():
        conn.execute(
            """UPDATE alert_outbox SET status = 'pending', attempts = attempts - 1, not_before = %s,
                   claimed_by = NULL
               WHERE id = %s AND status = 'sending' AND claimed_by = pg_backend_pid()""",
            (until, message.id),
        )


def mark_sent(conn: Connection, message: Outgoing) -> None:
    """The channel took it: `sent` (true whoever holds the row now; a row already `sent` or
    `failed` keeps its record)."""
    with conn.transaction():
        conn.execute(
            """UPDATE alert_outbox SET status = 'sent', sent_at = now(), last_error = NULL, claimed_by = NULL
               WHERE id = %s AND status IN ('sending', 'pending')""",
            (message.id,),
        )


def mark_failed(
    conn: Connection, message: Outgoing, error: str, *, permanent: bool, max_attempts: int
) -> str:
    """Record a failed send: retried later with backoff, or `failed` for good, if the row is
    still this sender's claim (never over another sender's result). The error is kept scrubbed
    as a log line is (no secret this process has read). Returns the new status."""
    final = permanent or message.attempts >= max_attempts
    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (message.attempts - 1))
    with conn.transaction():
        conn.execute(
            """UPDATE alert_outbox
               SET status = %s, last_error = %s, not_before = now() + %s, claimed_by = NULL
               WHERE id = %s AND status = 'sending' AND claimed_by = pg_backend_pid()""",
            ("failed" if final else "pending", scrub(error)[:2000], delay, message.id),
        )
    return "failed" if final else "pending"


def enqueue_test(conn: Connection, recipient: Recipient) -> list[int]:
    """One test message per channel of the recipient, due now; returns their outbox ids."""
    subject = f"test:{datetime.now(UTC).isoformat()}"
    ids = []
    with conn.transaction():
        for channel in recipient.channels:
            row = conn.execute(
                """INSERT INTO alert_outbox (subject, recipient_id, channel, reason, payload)
                   VALUES (%s, %s, %s, 'test', %s) RETURNING id""",
                (subject, recipient.id, channel, Jsonb({"name": recipient.name})),
            ).fetchone()
            assert row is not None
            ids.append(int(row["id"]))
    return ids


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


def enqueue_camera_problems(
    conn: Connection, recipients: list[Recipient], after: timedelta, now: datetime | None = None
) -> int:
    """A camera offline or degraded for longer than `after` alerts its store's recipients
    (those with any rule for the store) once per episode, and once more when it recovers.
    Keyed by the episode's start, so every check can ask again without repeating itself."""
    now = now or datetime.now(UTC)
    silenced = muted(conn, now)
    added = 0
    health = conn.execute(
        """SELECT h.camera_id, h.store_id, h.status, h.status_since, h.error, c.name, s.name AS store_name
           FROM camera_health h JOIN cameras c ON c.id = h.camera_id JOIN stores s ON s.id = h.store_id"""
    ).fetchall()
    for row in health:
        if ("camera", row["camera_id"]) in silenced or ("store", row["store_id"]) in silenced:
            continue
        payload = {
            "camera_id": row["camera_id"],
            "camera_name": row["name"],
            "store_id": row["store_id"],
            "store_name": row["store_name"],
            "status": row["status"],
            "since": row["status_since"].isoformat(),
            "error": row["error"],
        }
        for recipient in recipients:
            if not recipient.enabled or row["store_id"] not in recipient.stores:
                continue
            for channel in recipient.channels:
                if row["status"] in ("offline", "degraded") and now - row["status_since"] >= after:
                    subject, reason = (
                        f"camera:{row['camera_id']}:{row['status_since'].isoformat()}",
                        "camera_problem",
                    )
                elif row["status"] == "online":
                    # Recovered: answer the last problem this recipient heard of, if unanswered.
                    last = conn.execute(
                        """SELECT subject FROM alert_outbox WHERE recipient_id = %s AND channel = %s
                             AND reason = 'camera_problem' AND subject LIKE %s ORDER BY id DESC LIMIT 1""",
                        (recipient.id, channel, f"camera:{row['camera_id']}:%"),
                    ).fetchone()
                    if last is None:
                        continue
                    subject, reason = last["subject"], "camera_recovered"
                else:
                    continue
                added += conn.execute(
                    """INSERT INTO alert_outbox (subject, recipient_id, channel, reason, store_id, payload)
                       VALUES (%s, %s, %s, %s, %s, %s)
                       ON CONFLICT (subject, recipient_id, channel, reason) DO NOTHING""",
                    (subject, recipient.id, channel, reason, row["store_id"], Jsonb(payload)),
                ).rowcount
    return added


def recent_problems(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Failed messages and ones still being retried, newest first (for the dashboard)."""
    return conn.execute(
        """SELECT id, created_at, recipient_id, channel, reason, subject, status, attempts, not_before,
                  last_error
           FROM alert_outbox WHERE status = 'failed' OR (status = 'pending' AND attempts > 0)
           ORDER BY created_at DESC LIMIT %s""",
        (limit,),
    ).fetchall()


def retry(conn: Connection, ids: list[int]) -> int:
    """Send failed messages again (now)."""
    with conn.transaction():
        return conn.execute(
            """UPDATE alert_outbox SET status = 'pending', not_before = now(), attempts = 0
               WHERE id = ANY(%s) AND status = 'failed'""",
            (ids,),
        ).rowcount


def active_mutes(conn: Connection) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT kind, target, until, muted_by FROM alert_mutes WHERE until > now() ORDER BY until"
    ).fetchall()
