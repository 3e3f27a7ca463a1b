"""`shrinkwatch alerts run`: sw.incidents -> the outbox -> email (and the other channels).

One loop: read a batch of incident versions (consumer group `<prefix>alerts`), enqueue what
they call for in one transaction (alerts.outbox: idempotent, so the offsets are committed
after it and a replay adds nothing), then send whatever is due. On start, messages a killed
run left half-sent go back to the queue. SIGINT/SIGTERM stop it between two batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer

from alerts.digest import DIGEST_LOCK, start_scheduler
from alerts.email import (
    SendError,
    camera_email,
    digest_email,
    incident_email,
    incident_link,
    send_email,
    summary_email,
    test_email,
)
from alerts.outbox import (
    Outgoing,
    claim_due,
    enqueue_camera_problems,
    enqueue_incident,
    load_recipients,
    mark_failed,
    mark_sent,
    recover_interrupted,
)
from alerts.rules import Recipient
from shrinkwatch.contracts import ContractError, Incident, decode
from shrinkwatch.paths import evidence_file
from shrinkwatch.settings import Settings
from warehouse.db import Connection, connect

log = logging.getLogger(__name__)
CAMERA_CHECK_S = 5.0  # how often camera health is looked at for problems


@dataclass
class Counts:
    """What a run did, for its progress lines."""

    incidents: int = 0
    enqueued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _stores(conn: Connection) -> dict[str, tuple[str, str]]:
    return {
        r["id"]: (r["name"], r["timezone"]) for r in conn.execute("SELECT id, name, timezone FROM stores")
    }


def deliver(settings: Settings, conn: Connection, message: Outgoing) -> None:
    """Send one claimed message on its channel (SendError when it fails)."""
    from alerts.channels import send_sms, send_webhook, sms_text, webhook_body

    found = load_recipients(conn, only=message.recipient_id)
    recipient = found[0] if found else None
    if recipient is None:
        msg = f"recipient {message.recipient_id} is gone or disabled"
        raise SendError(msg, permanent=True)
    payload, reason = message.payload, message.reason
    if message.channel == "sms":
        if not recipient.phone:
            msg = f"recipient {recipient.id} has no phone number"
            raise SendError(msg, permanent=True)
        send_sms(settings, recipient.phone, sms_text(settings, reason, payload))
        return
    if message.channel == "webhook":
        if not recipient.webhook_url:
            msg = f"recipient {recipient.id} has no webhook URL"
            raise SendError(msg, permanent=True)
        link = incident_link(settings, payload["incident_id"]) if "incident_id" in payload else None
        body = webhook_body(message.id, recipient.id, reason, payload, link)
        send_webhook(recipient.webhook_url, recipient.webhook_secret, message.id, reason, body)
        return
    if not recipient.email:
        msg = f"recipient {recipient.id} has no email address"
        raise SendError(msg, permanent=True)
    if reason == "summary":
        email = summary_email(settings, message.id, recipient.email, payload)
    elif reason in ("camera_problem", "camera_recovered"):
        email = camera_email(settings, message.id, recipient.email, reason, payload)
    elif reason == "digest":
        email = digest_email(settings, message.id, recipient.email, recipient.name, payload)
    elif reason == "test":
        email = test_email(settings, message.id, recipient.email, recipient.name)
    else:
        # The evidence is saved a few seconds after an incident opens: use what the row has now.
        row = conn.execute(
            "SELECT snapshot FROM incidents WHERE incident_id = %s", (payload.get("incident_id"),)
        ).fetchone()
        conn.commit()
        reference = (row["snapshot"] if row else None) or payload.get("snapshot")
        snapshot = evidence_file(settings.evidence_dir(), reference)
        email = incident_email(settings, message.id, recipient.email, reason, payload, snapshot)
    send_email(settings, email)


def send_test(settings: Settings, conn: Connection, recipient: Recipient) -> list[tuple[str, str | None]]:
    """`alerts test`: a test message on each of the recipient's channels, now; (channel,
    error or None) for each."""
    from alerts.outbox import claim_ids, enqueue_test

    results: list[tuple[str, str | None]] = []
    for message in claim_ids(conn, enqueue_test(conn, recipient)):
        try:
            deliver(settings, conn, message)
        except SendError as exc:
            mark_failed(conn, message, str(exc), permanent=True, max_attempts=1)
            results.append((message.channel, str(exc)))
            continue
        mark_sent(conn, message)
        results.append((message.channel, None))
    return results


def send_due(settings: Settings, conn: Connection, counts: Counts, limit: int = 20) -> int:
    """Send what is due now; return how many were claimed."""
    claimed = claim_due(conn, limit)
    for message in claimed:
        try:
            deliver(settings, conn, message)
        except SendError as exc:
            status = mark_failed(
                conn, message, str(exc), permanent=exc.permanent, max_attempts=settings.alerts_max_attempts
            )
            if status == "failed":
                counts.failed += 1
                counts.errors.append(f"{message.channel} to {message.recipient_id}: {exc}")
            else:
                counts.retried += 1
            log.warning(
                "alert %s to %s via %s: %s (%s)",
                message.reason,
                message.recipient_id,
                message.channel,
                exc,
                status,
            )
            continue
        mark_sent(conn, message)
        counts.sent += 1
    return len(claimed)


def run(
    settings: Settings,
    stop: threading.Event,
    *,
    progress: Callable[[str], None] = print,
    poll_s: float = 0.5,
    until_idle: bool = False,
    group_id: str | None = None,
    digests: bool = True,
) -> Counts:
    """The dispatcher loop (see the module docstring). `until_idle` returns once the topic is
    read to its end and nothing is due (for tests and `--check`-like runs)."""
    counts = Counts()
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": group_id or f"{settings.topic_prefix}alerts",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "log_level": 3,
        }
    )
    consumer.subscribe([settings.topic("incidents")])
    at_end: set[int] = set()
    next_camera_check = 0.0
    scheduler = None
    try:
        with connect(settings.database_dsn) as conn, connect(settings.database_dsn, autocommit=True) as lock:
            # One digest scheduler among all dispatchers: whoever holds the lock runs it.
            held = lock.execute("SELECT pg_try_advisory_lock(%s) AS ok", (DIGEST_LOCK,)).fetchone()
            if digests and held is not None and held["ok"]:
                scheduler = start_scheduler(settings.database_dsn)
            if recovered := recover_interrupted(conn):
                progress(f"{recovered} alert(s) a previous run left half-sent go out again")
            while not stop.is_set():
                batch = consumer.consume(200, poll_s)
                incidents: list[Incident] = []
                for msg in batch:
                    error = msg.error()
                    if error is not None:
                        if error.code() == error._PARTITION_EOF:  # noqa: SLF001 (confluent-kafka's constant)
                            at_end.add(msg.partition() or 0)
                        continue
                    at_end.discard(msg.partition() or 0)
                    try:
                        incidents.append(decode(msg.value(), Incident))
                    except ContractError as exc:
                        log.warning("skipping a malformed incident message: %s", exc)
                if incidents:
                    with conn.transaction():
                        recipients, stores = load_recipients(conn), _stores(conn)
                        now = datetime.now(UTC)
                        for incident in incidents:
                            counts.enqueued += enqueue_incident(
                                conn,
                                incident,
                                recipients,
                                stores,
                                now,
                                timedelta(seconds=settings.alerts_max_age_s),
                            )
                    counts.incidents += len(incidents)
                if any(msg.error() is None for msg in batch):
                    consumer.commit(asynchronous=False)
                if time.monotonic() >= next_camera_check:
                    with conn.transaction():
                        after = timedelta(seconds=settings.alerts_camera_after_s)
                        counts.enqueued += enqueue_camera_problems(conn, load_recipients(conn), after)
                    next_camera_check = time.monotonic() + CAMERA_CHECK_S
                claimed = send_due(settings, conn, counts)
                assigned = {p.partition for p in consumer.assignment()}
                if until_idle and assigned and at_end >= assigned and not claimed and not incidents:
                    break
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        consumer.close()
    return counts
