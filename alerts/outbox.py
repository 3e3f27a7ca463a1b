"""The alert outbox's policy: what an incident or a camera calls for, the hourly limit and
its summaries, and retries with backoff (the outbox itself, its keys and claims, is
warehouse.alert_outbox).

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

from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.rules import Recipient, interested, quiet_until
from shrinkwatch.contracts import Incident
from warehouse.alert_outbox import (
    Outgoing,
    add_message,
    add_to_summary,
    alerts_since,
    first_alerts,
    in_a_summary,
    last_camera_problem,
    record_failure,
)
from warehouse.alert_recipients import muted
from warehouse.camera_health import latest_health
from warehouse.db import Connection

BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=30)


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
            reasons = first_alerts(conn, incident.incident_id, recipient.id, channel)
            summarised = in_a_summary(conn, incident.incident_id, recipient.id, channel)
            if summarised or "escalated" in reasons:
                continue
            if "new" in reasons:
                if incident.risk_level != "high" or reasons["new"] == "high":
                    continue
                reason = "escalated"
            else:
                reason = "new"
            recent = alerts_since(conn, recipient.id, channel, now - timedelta(hours=1))
            if recent >= recipient.max_per_hour:
                added += _add_to_summary(conn, recipient, channel, incident, name, now)
                continue
            added += add_message(
                conn,
                incident.incident_id,
                recipient.id,
                channel,
                reason,
                payload,
                store_id=incident.store_id,
                not_before=not_before,
            )
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
    return add_to_summary(
        conn, recipient.id, channel, hour, hour + timedelta(hours=1), incident.incident_id, entry
    )


def mark_failed(
    conn: Connection, message: Outgoing, error: str, *, permanent: bool, max_attempts: int
) -> str:
    """Record a failed send: retried later with backoff, or `failed` for good, if the row is
    still this sender's claim (never over another sender's result). The error is kept scrubbed
    as a log line is (no secret this process has read). Returns the new status."""
    final = permanent or message.attempts >= max_attempts
    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (message.attempts - 1))
    record_failure(conn, message, error, status="failed" if final else "pending", retry_in=delay)
    return "failed" if final else "pending"


def enqueue_camera_problems(
    conn: Connection, recipients: list[Recipient], after: timedelta, now: datetime | None = None
) -> int:
    """A camera offline or degraded for longer than `after` alerts its store's recipients
    (those with any rule for the store) once per episode, and once more when it recovers.
    Keyed by the episode's start, so every check can ask again without repeating itself."""
    now = now or datetime.now(UTC)
    silenced = muted(conn, now)
    added = 0
    health = latest_health(conn)
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
                    last = last_camera_problem(conn, recipient.id, channel, row["camera_id"])
                    if last is None:
                        continue
                    subject, reason = last, "camera_recovered"
                else:
                    continue
                added += add_message(
                    conn, subject, recipient.id, channel, reason, payload, store_id=row["store_id"]
                )
    return added
