"""The alert outbox (owner of `alert_outbox`, migrations 0015 and 0016): every message that
must be sent, once, and where its sending stands.

alerts/ decides what to send and when (alerts.outbox: who hears of an incident, the hourly
limit and its summaries, retries and their backoff; alerts.digest: digests); the statements
that make those decisions safe to repeat and to crash in are here, each as it was written for
its guarantee, with its transaction boundary and locking:

- adding is keyed by (subject, recipient, channel, reason) and a conflict adds nothing, so
  reading an incident twice (a restart, a replay of the topic) queues nothing twice; the
  `add_*` functions run in the caller's transaction (the dispatcher's batch);
- a sender claims due rows as its PostgreSQL session (`sending`, `claimed_by` = its backend
  pid, attempts + 1; `FOR UPDATE SKIP LOCKED`, so two senders never claim one row), marks
  each one `sent` in a transaction of its own before the next, and a failure goes back to
  `pending` or to `failed` only while the row is still its claim;
- claims of a sender whose session is gone go back to `pending` (`recover_interrupted`); a
  live sender's claims are never touched.

So the only way a recipient gets a message twice is a sender killed between the channel
accepting it and `mark_sent` (docs/ALERTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from shrinkwatch.logs import scrub
from shrinkwatch.recipients import Recipient
from warehouse.db import Connection


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


def first_alerts(conn: Connection, subject: str, recipient_id: str, channel: str) -> dict[str, str | None]:
    """The `new` and `escalated` messages queued about this subject for this recipient and
    channel: {reason: the risk level it said}."""
    key = {"subject": subject, "recipient": recipient_id, "channel": channel}
    first = conn.execute(
        """SELECT reason, payload ->> 'risk_level' AS level FROM alert_outbox
           WHERE subject = %(subject)s AND recipient_id = %(recipient)s AND channel = %(channel)s
             AND reason IN ('new', 'escalated')""",
        key,
    ).fetchall()
    return {r["reason"]: r["level"] for r in first}


def in_a_summary(conn: Connection, subject: str, recipient_id: str, channel: str) -> bool:
    """Whether an hour's summary for this recipient and channel lists this incident already."""
    key = {"subject": subject, "recipient": recipient_id, "channel": channel}
    summarised = conn.execute(
        """SELECT 1 FROM alert_outbox WHERE recipient_id = %(recipient)s AND channel = %(channel)s
             AND reason = 'summary' AND payload -> 'incidents' ? %(subject)s""",
        key,
    ).fetchone()
    return summarised is not None


def alerts_since(conn: Connection, recipient_id: str, channel: str, since: datetime) -> int:
    """How many `new` and `escalated` messages were queued for this recipient and channel
    after `since` (what the hourly limit counts)."""
    recent = conn.execute(
        """SELECT count(*) AS n FROM alert_outbox
           WHERE recipient_id = %(recipient)s AND channel = %(channel)s
             AND reason IN ('new', 'escalated') AND created_at > %(since)s""",
        {"recipient": recipient_id, "channel": channel, "since": since},
    ).fetchone()
    return int(recent["n"]) if recent is not None else 0


def add_message(
    conn: Connection,
    subject: str,
    recipient_id: str,
    channel: str,
    reason: str,
    payload: dict[str, Any],
    *,
    store_id: str | None = None,
    not_before: datetime | None = None,
) -> int:
    """Queue a message (about an incident, a camera, a digest), due at `not_before` (None:
    now), unless its key (subject, recipient, channel, reason) is queued already; returns 1
    when added, 0 when not."""
    return conn.execute(
        """INSERT INTO alert_outbox
               (subject, recipient_id, channel, reason, store_id, payload, not_before)
           VALUES (%(subject)s, %(recipient)s, %(channel)s, %(reason)s, %(store)s, %(payload)s,
                   COALESCE(%(not_before)s, now()))
           ON CONFLICT (subject, recipient_id, channel, reason) DO NOTHING""",
        {
            "subject": subject,
            "recipient": recipient_id,
            "channel": channel,
            "reason": reason,
            "store": store_id,
            "payload": Jsonb(payload),
            "not_before": not_before,
        },
    ).rowcount


def add_to_summary(
    conn: Connection,
    recipient_id: str,
    channel: str,
    hour: datetime,
    due: datetime,
    incident_id: str,
    entry: dict[str, Any],
) -> int:
    """Add an incident (`entry`, what the summary says of it) to the hour's one summary
    message for this recipient and channel, created if need be, due at `due`; an incident
    listed already, or a summary no longer pending, is left as it is. Returns 1 when the
    summary was created or grew."""
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
            "recipient": recipient_id,
            "channel": channel,
            "hour": hour.isoformat(),
            "id": incident_id,
            "entry": Jsonb(entry),
            "due": due,
        },
    ).rowcount


def last_camera_problem(conn: Connection, recipient_id: str, channel: str, camera_id: str) -> str | None:
    """The subject of the last camera problem this recipient heard of about this camera on
    this channel, or None."""
    last = conn.execute(
        """SELECT subject FROM alert_outbox WHERE recipient_id = %s AND channel = %s
             AND reason = 'camera_problem' AND subject LIKE %s ORDER BY id DESC LIMIT 1""",
        (recipient_id, channel, f"camera:{camera_id}:%"),
    ).fetchone()
    return last["subject"] if last is not None else None


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


def keep_claims_with_this_session(conn: Connection) -> None:
    """Have PostgreSQL notice within about a minute, not TCP's two hours, when the machine of
    this connection is lost: its claims are its own while its session lives (see above)."""
    with conn.transaction():
        for name, value in (("idle", 30), ("interval", 10), ("count", 3)):
            conn.execute(f"SET tcp_keepalives_{name} = {value}")


def recover_interrupted(conn: Connection) -> int:
    """Messages a dead sender left `sending` (its session is gone): back to `pending`, to be
    sent again (see above). A live sender's claims stay as they are."""
    with conn.transaction():
        return conn.execute(
            """UPDATE alert_outbox SET status = 'pending', claimed_by = NULL
               WHERE status = 'sending'
                 AND (claimed_by IS NULL OR claimed_by NOT IN (SELECT pid FROM pg_stat_activity))"""
        ).rowcount


def database_clock(conn: Connection) -> datetime:
    """The database's time now, the clock every `created_at` and `not_before` is read from
    (the read ends here: nothing is left open for the caller)."""
    row = conn.execute("SELECT now() AS now").fetchone()
    conn.commit()
    return row["now"] if row else datetime.now(UTC)


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


def queued_by_channel(conn: Connection) -> dict[str, int]:
    """How many messages wait to be sent, per channel: `pending` (due or not) and `sending`
    (claimed, not yet marked); a channel with none is absent. (The metrics' outbox depth.)"""
    rows = conn.execute(
        """SELECT channel, count(*) AS n FROM alert_outbox
           WHERE status IN ('pending', 'sending') GROUP BY channel"""
    ).fetchall()
    return {r["channel"]: int(r["n"]) for r in rows}


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


def record_failure(
    conn: Connection, message: Outgoing, error: str, *, status: str, retry_in: timedelta
) -> None:
    """Record a failed send as `status` (`pending`, to be tried again in `retry_in`, or
    `failed`), if the row is still this sender's claim (never over another sender's result).
    The error is kept scrubbed as a log line is (no secret this process has read)."""
    with conn.transaction():
        conn.execute(
            """UPDATE alert_outbox
               SET status = %s, last_error = %s, not_before = now() + %s, claimed_by = NULL
               WHERE id = %s AND status = 'sending' AND claimed_by = pg_backend_pid()""",
            (status, scrub(error)[:2000], retry_in, message.id),
        )


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


def purge_finished(conn: Connection, keep: timedelta) -> int:
    """Delete messages sent or given up (`failed`) more than `keep` ago; returns how many.

    A row is what stops an incident from alerting twice (its key is unique), so `keep` must
    outlast the age past which an incident no longer alerts at all (alerts_max_age_s: the
    caller, warehouse.jobs, sees to it). Pending and half-sent messages always stay."""
    with conn.transaction():
        return conn.execute(
            """DELETE FROM alert_outbox
               WHERE status IN ('sent', 'failed') AND created_at < now() - %(keep)s""",
            {"keep": keep},
        ).rowcount
