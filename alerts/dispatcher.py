"""`shrinkwatch alerts run`: sw.incidents -> the outbox -> email (and the other channels).

One loop: read a batch of incident versions (consumer group `<prefix>alerts`), enqueue what
they call for in one transaction (alerts.outbox: idempotent, so the offsets are committed
after it and a replay adds nothing), then send whatever is due. Messages a sender left
half-sent when it died (this one before a restart, or another dispatcher) go back to the
queue once its PostgreSQL session is gone (warehouse.alert_outbox). SIGINT/SIGTERM stop it
between two batches. While it runs it serves its Prometheus metrics (alerts.metrics: the
outbox depth, messages sent and failed sends) on the `alerts` role's port.

Outages (shrinkwatch.outage: said once when it goes, once when it is back) never end it:

- PostgreSQL gone (a connection lost, or refused): both sessions are closed, the digest
  scheduler stops (its lock went with its session), and the dispatcher connects again with
  backoff. Then, before anything else, what a channel took and could not be marked sent is
  marked sent (it is not sent again), and the rest of what the lost session had claimed goes
  back to the queue as a dead sender's does (`recover_interrupted`); the digest lock is
  taken again (or left to the dispatcher that took it meanwhile). Incidents read from Kafka
  and not yet queued are kept and queued first; their offsets are committed only then.
- Kafka gone: what is queued goes on being sent; a commit Kafka cannot take is tried again
  with backoff (the outbox's keys absorb a re-read), and librdkafka reconnects by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from alerts.channels import (
    apprise_title,
    missing_sms_settings,
    send_apprise,
    send_sms,
    send_webhook,
    sms_text,
    webhook_body,
)
from alerts.digest import FIRST_MANUAL, queue_digest, start_scheduler
from alerts.email.smtp import Mailer
from alerts.email.templates import camera_email, digest_email, incident_email, summary_email, test_email
from alerts.errors import SendError
from alerts.metrics import SEND_FAILURES, SENT, serve_metrics
from alerts.outbox import enqueue_camera_problems, enqueue_incident, mark_failed
from alerts.rules import Recipient
from alerts.webhook_signing import signing_key
from shrinkwatch.contracts import ContractError, Incident, decode, snapshot_name
from shrinkwatch.kafka_admin import ensure_topics, wait_for_kafka
from shrinkwatch.outage import Outage
from shrinkwatch.paths import evidence_file
from shrinkwatch.placeholders import UnsetVariable
from shrinkwatch.recipients import (
    SECRET_FIELDS,
    SECRET_OF_CHANNEL,
    literal_secrets,
    recipient_problems,
    with_secret,
)
from shrinkwatch.settings import Settings
from shrinkwatch.wording import review_link
from warehouse.alert_digests import take_scheduler_lock, watermark
from warehouse.alert_outbox import (
    Outgoing,
    claim_due,
    claim_ids,
    database_clock,
    defer,
    enqueue_test,
    in_flight,
    keep_claims_with_this_session,
    mark_sent,
    recover_interrupted,
)
from warehouse.alert_recipients import load_recipients, recipient_counts
from warehouse.db import Connection, DatabaseUnreachable, connect
from warehouse.migrate import require_current_schema
from warehouse.site_tables import store_names

log = logging.getLogger(__name__)
CAMERA_CHECK_S = 5.0  # how often camera health is looked at for problems
SEND_SLICE_S = 1.0  # the longest the sender keeps new incidents waiting in Kafka
RECOVERY_S = 1.0  # how often dead senders' claims are looked for
# PostgreSQL went away (not running, restarting, the network down): ride it out.
DATABASE_DOWN = (DatabaseUnreachable, psycopg.OperationalError)


@dataclass
class Counts:
    """What a run did, for its progress lines."""

    incidents: int = 0
    enqueued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    unmarked: list[Outgoing] = field(default_factory=list)  # sent; PostgreSQL went before it was marked


def _secret(recipient: Recipient, name: str, environ: Mapping[str, str] | None) -> str | None:
    """The recipient's secret as its channel uses it now: its `${VAR}` read from `environ`
    (default: this process's environment). Not set: a failure naming the recipient and the
    variable, retried (it may be set meanwhile)."""
    try:
        return with_secret(recipient, name, os.environ if environ is None else environ)
    except UnsetVariable as exc:
        raise SendError(str(exc), permanent=False) from None


def deliver(
    settings: Settings,
    message: Outgoing,
    mailer: Mailer,
    recipient: Recipient | None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send one claimed message on its channel to its recipient as they are now (None: gone
    or disabled), with the incident's snapshot if its file is saved by now, the recipient's
    secrets read from `environ` (default: this process's environment); SendError when it fails."""
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
    if message.channel == "apprise":
        url = _secret(recipient, "apprise_url", environ)
        if not url:
            msg = f"recipient {recipient.id} has no Apprise URL"
            raise SendError(msg, permanent=True)
        text = sms_text(settings, reason, payload)
        send_apprise(url, f"Shrinkwatch: {apprise_title(reason, payload)}", text)
        return
    if message.channel == "webhook":
        if not recipient.webhook_url:
            msg = f"recipient {recipient.id} has no webhook URL"
            raise SendError(msg, permanent=True)
        link = review_link(settings, payload["incident_id"]) if "incident_id" in payload else None
        body = webhook_body(message.id, recipient.id, reason, payload, link)
        secret = _secret(recipient, "webhook_secret", environ)
        send_webhook(recipient.webhook_url, secret, message.id, reason, body)
        return
    if not recipient.email:
        msg = f"recipient {recipient.id} has no email address"
        raise SendError(msg, permanent=True)
    if reason == "summary":
        email = summary_email(settings, message.id, recipient.email, payload)
    elif reason in ("camera_problem", "camera_recovered"):
        email = camera_email(settings, message.id, recipient.email, reason, payload)
    elif reason == "digest":
        email = digest_email(
            settings,
            message.id,
            recipient.email,
            recipient.name,
            payload,
            lambda ref: evidence_file(settings.evidence_dir(), ref),
        )
    elif reason == "test":
        email = test_email(settings, message.id, recipient.email, recipient.name)
    else:
        picture = evidence_file(settings.evidence_dir(), _snapshot(payload))
        email = incident_email(settings, message.id, recipient.email, reason, payload, picture)
    mailer.send(email)


def send_test(settings: Settings, conn: Connection, recipient: Recipient) -> list[tuple[str, str | None]]:
    """`alerts test`: a test message on each of the recipient's channels, now; (channel,
    error or None) for each."""
    conn.commit()  # end the caller's reads: the queued test messages commit on their own
    results: list[tuple[str, str | None]] = []
    with Mailer(settings) as mailer:
        for message in claim_ids(conn, enqueue_test(conn, recipient)):
            results.append((message.channel, _send_one(settings, conn, message, mailer, recipient)))
    return results


def check_channels(
    settings: Settings, recipient: Recipient, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str | None]]:
    """`--check`: can each of the recipient's channels be used, sending nothing? (channel,
    problem or None) for each. The recipient must have what the channel needs (an address, a
    number, a URL), its secrets' `${VAR}` set in `environ` (default: this process's
    environment) to values that work; email also logs in to the SMTP server and leaves, SMS
    needs the Twilio settings. A webhook or an Apprise target is not called."""
    environ = os.environ if environ is None else environ
    needs = {"email": "email:", "sms": "phone:", "webhook": "webhook_url:", "apprise": "apprise_url:"}
    used: dict[str, Any] = {}
    unset: dict[str, str] = {}
    for name in SECRET_FIELDS:
        try:
            used[name] = with_secret(recipient, name, environ)
        except UnsetVariable as exc:
            unset[name] = str(exc)
    found = recipient_problems(replace(recipient, **used))
    results: list[tuple[str, str | None]] = []
    for channel in recipient.channels:
        problem = (
            unset.get(SECRET_OF_CHANNEL.get(channel, ""))
            or next((p for p in found if p.startswith(needs.get(channel, "?"))), None)
            or (_bad_webhook_secret(recipient, used.get("webhook_secret")) if channel == "webhook" else None)
        )
        if problem is None and channel == "email":
            try:
                Mailer(settings).check()
            except SendError as exc:
                problem = str(exc)
        elif problem is None and channel == "sms":
            if missing := missing_sms_settings(settings):
                problem = f"settings not set: {', '.join(missing)}"
            else:
                problem = _unset_twilio_token(settings, environ)
        results.append((channel, problem))
    return results


def secret_report(
    settings: Settings, recipients: list[Recipient], environ: Mapping[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """`alerts run --check` on secrets, reading nothing but `environ` (default: this process's
    environment): (problems, warnings). A problem: a `${VAR}` that a channel in use needs and
    that is not set (a recipient's webhook secret or Apprise URL; the Twilio token when anyone
    gets SMS; the SMTP password is the SMTP check's), for the enabled recipients. A warning:
    each recipient secret, disabled recipients' too, stored as a value, from before references
    were required: it works, but it is a secret at rest."""
    environ = os.environ if environ is None else environ
    problems, warnings = [], []
    for recipient in recipients:
        for channel, name in SECRET_OF_CHANNEL.items():
            if recipient.enabled and channel in recipient.channels:
                try:
                    value = with_secret(recipient, name, environ)
                except UnsetVariable as exc:
                    problems.append(str(exc))
                    continue
                if channel == "webhook" and (bad := _bad_webhook_secret(recipient, value)):
                    problems.append(bad)
        warnings += [
            f"recipient {recipient.id}: {name} is stored as a value, not as a ${{VAR}} reference; "
            "write it as ${VAR} (site file or Alert settings) so that the database holds no secret"
            for name in literal_secrets(recipient)
        ]
    sms_in_use = any(r.enabled and "sms" in r.channels for r in recipients)
    if sms_in_use and not missing_sms_settings(settings):
        unset = _unset_twilio_token(settings, environ)
        if unset is not None:
            problems.append(unset)
    return problems, warnings


def _bad_webhook_secret(recipient: Recipient, secret: str | None) -> str | None:
    """What is wrong with a webhook secret as read now (None: it signs): a `whsec_` secret
    whose key is not base64 would fail every send."""
    if not secret:
        return None
    try:
        signing_key(secret)
    except ValueError as exc:
        return f"recipient {recipient.id}: webhook_secret: {exc}"
    return None


def _unset_twilio_token(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """What is wrong with the Twilio token's `${VAR}` in `environ` (None: it is set)."""
    try:
        settings.secret("twilio_auth_token", environ)
    except UnsetVariable as exc:
        return str(exc)
    return None


def prepare_run(settings: Settings) -> tuple[int, int]:
    """Before `alerts run`: wait for Kafka, make the topics, check the schema; (enabled
    recipients, those of them who get email)."""
    wait_for_kafka(settings.kafka_config(), timeout_s=30)
    ensure_topics(settings)
    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)
        return recipient_counts(conn)


def check_run(settings: Settings) -> tuple[list[str], bool]:
    """`alerts run --check`, sending nothing: what to say (the first line the summary), and
    whether all is well: Kafka and PostgreSQL answer, the SMTP login works when anyone gets
    email, and every `${VAR}` the recipients' channels need is set."""
    count, by_email = prepare_run(settings)
    with connect(settings.database_dsn) as conn:
        problems, warnings = secret_report(settings, load_recipients(conn, disabled_too=True))
    ok = not problems
    try:
        smtp = "SMTP not checked: no recipient gets email"
        if by_email:
            Mailer(settings).check()
            smtp = f"SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security}) answers"
        summary = (
            f"alerts: Kafka {settings.kafka_servers} and PostgreSQL answer; {count} recipient(s); {smtp}"
        )
    except SendError as exc:
        summary = f"alerts: Kafka and PostgreSQL answer; {count} recipient(s); but {exc}"
        ok = False
    return [summary, *(f"  {line}" for line in [*problems, *(f"warning: {w}" for w in warnings)])], ok


def send_digests_now(
    settings: Settings, conn: Connection, recipients: list[Recipient], moment: datetime
) -> Counts:
    """`alerts digest --now`: queue each recipient's digest from its last one (or the last
    day) up to `moment`, and send everything due."""
    conn.commit()  # end the caller's reads: each queued digest commits on its own
    for person in recipients:
        with conn.transaction():
            queue_digest(conn, person, watermark(conn, person.id) or moment - FIRST_MANUAL, moment)
    counts = Counts()
    while send_due(settings, conn, counts):
        pass
    return counts


def _send_one(
    settings: Settings, conn: Connection, message: Outgoing, mailer: Mailer, recipient: Recipient
) -> str | None:
    """`alerts test`'s send: no retries, the error said at once."""
    try:
        deliver(settings, message, mailer, recipient)
    except Exception as exc:  # noqa: BLE001 (whatever it was, the row must not stay claimed)
        SEND_FAILURES.labels(message.channel).inc()
        error = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {exc}"
        mark_failed(conn, message, error, permanent=True, max_attempts=1)
        return error
    SENT.labels(message.channel).inc()
    mark_sent(conn, message)
    return None


def send_due(settings: Settings, conn: Connection, counts: Counts, limit: int = 20) -> int:
    """Send what is due now (one SMTP connection for the batch); return how many were claimed."""
    claimed = claim_due(conn, limit)
    if not claimed:
        return 0
    wanted = sorted({m.recipient_id for m in claimed})
    recipients = {r.id: r for r in load_recipients(conn, only=wanted)}
    conn.commit()  # end the read's transaction: each message's outcome below commits on its own
    ready = _without_waiting(settings, conn, claimed)
    with Mailer(settings) as mailer:
        _send_batch(settings, conn, ready, counts, mailer, recipients)
    return len(claimed)


SNAPSHOT_POLL_S = 0.25  # how often a message waiting for its snapshot looks again


def _snapshot(payload: dict[str, Any]) -> str | None:
    """The incident's snapshot name, by the rule the flow named it with (payloads queued by
    earlier versions carry None). Never the name a message carries, as the camera reader
    never writes one: a forged message on sw.incidents cannot have another store's file
    attached to an email."""
    if "camera_id" in payload and "incident_id" in payload:
        return snapshot_name(str(payload["camera_id"]), str(payload["incident_id"]))
    return None


def _without_waiting(settings: Settings, conn: Connection, claimed: list[Outgoing]) -> list[Outgoing]:
    """The messages to send now. An incident email whose snapshot file is not there yet waits
    for it (the camera reader saves one within a second of the incident), looking again every
    SNAPSHOT_POLL_S, for at most `alerts_snapshot_wait_s` after it was queued; then it goes
    without. The others go now. The file is the only thing looked at: the incident names it
    from the start."""
    root = settings.evidence_dir()
    waiting = [
        m
        for m in claimed
        if m.reason in ("new", "escalated")
        and m.channel == "email"
        and evidence_file(root, _snapshot(m.payload)) is None
    ]
    if not waiting:
        return claimed
    now = database_clock(conn)  # the clock created_at was read from
    deferred = set()
    for message in waiting:
        give_up = message.created_at + timedelta(seconds=settings.alerts_snapshot_wait_s)
        if now < give_up:
            defer(conn, message, min(give_up, now + timedelta(seconds=SNAPSHOT_POLL_S)))
            deferred.add(message.id)
    return [m for m in claimed if m.id not in deferred]


def _send_batch(
    settings: Settings,
    conn: Connection,
    claimed: list[Outgoing],
    counts: Counts,
    mailer: Mailer,
    recipients: dict[str, Recipient],
) -> None:
    for message in claimed:
        try:
            try:
                deliver(settings, message, mailer, recipients.get(message.recipient_id))
            except SendError:
                raise
            except Exception as exc:
                # A message we cannot even build (a bug, a payload from an older version) must
                # not stop every alert behind it: retried like a failed send, then failed.
                log.exception("alert %s: could not be sent", message.id)
                msg = f"could not be sent: {type(exc).__name__}: {exc}"
                raise SendError(msg, permanent=False) from exc
        except SendError as exc:
            SEND_FAILURES.labels(message.channel).inc()
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
        SENT.labels(message.channel).inc()
        counts.unmarked.append(message)  # until it is marked: a lost session must not send it again
        mark_sent(conn, message)
        counts.unmarked.remove(message)
        counts.sent += 1


KAFKA_DOWN = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT}  # noqa: SLF001 (confluent-kafka's constants)


@dataclass
class _Reading:
    """Where the loop stands with Kafka; kept across a PostgreSQL outage, so that what was
    read before it is queued after it (its offsets are committed only then)."""

    unqueued: list[Incident] = field(default_factory=list)  # read, not yet in the outbox
    to_commit: bool = False  # offsets read past and not yet committed
    next_kafka_try: float = 0.0  # when to try the commit (or a Kafka probe) again
    at_end: set[int] = field(default_factory=set)
    kafka_errors: list[KafkaError] = field(default_factory=list)  # from librdkafka's error callback


def _consumer(settings: Settings, group_id: str | None, reading: _Reading) -> Consumer:
    return Consumer(
        {
            **settings.kafka_config(),
            "group.id": group_id or f"{settings.topic_prefix}alerts",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            # librdkafka's own lines about a broker it cannot reach come once per reconnect
            # (level 3): the error callback hands them to the outage, said once instead.
            "log_level": 2,
            "error_cb": reading.kafka_errors.append,
            # A dispatcher killed without leaving the group holds its partitions until the
            # broker gives up on it; restarted, it waits that long for new incidents. 10 s,
            # not librdkafka's 45 s (the broker's floor is 6 s).
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
            # Sending a batch can take long when channels time out (each is bounded, and an SMTP
            # server that is down is tried once per batch); not long enough to leave the group.
            "max.poll.interval.ms": 900_000,
        }
    )


def _close(conn: Connection) -> None:
    """Close a connection as it is (on a lost one, a rollback would only fail and be logged)."""
    with contextlib.suppress(Exception):
        conn.close()


@contextlib.contextmanager
def _sessions(settings: Settings, digests: bool) -> Iterator[tuple[Connection, Connection | None]]:
    """The dispatcher's PostgreSQL sessions: (the one its claims belong to, the one holding
    the digest scheduler's lock, or None when another dispatcher holds it or `digests` is
    off). The scheduler runs while the lock is held, and stops with the sessions."""
    conn = connect(settings.database_dsn)
    lock: Connection | None = None
    scheduler = None
    try:
        # Our claims are ours while this session lives (warehouse.alert_outbox): if this
        # machine is lost, PostgreSQL notices within about a minute, not TCP's two hours.
        keep_claims_with_this_session(conn)
        if digests:
            # One digest scheduler among all dispatchers: whoever holds the lock runs it.
            lock = connect(settings.database_dsn, autocommit=True)
            if take_scheduler_lock(lock):
                scheduler = start_scheduler(settings.database_dsn)
            else:
                _close(lock)
                lock = None
        yield conn, lock
        conn.commit()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        for each in (conn, lock):
            if each is not None:
                _close(each)


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
    read to its end and nothing is due (for tests and `--check`-like runs). An outage of
    PostgreSQL or Kafka is ridden out (see the module docstring), said once by `progress`
    when it starts and once when it ends."""
    counts, reading = Counts(), _Reading()
    database, kafka = Outage("PostgreSQL", progress), Outage("Kafka", progress)
    consumer = _consumer(settings, group_id, reading)
    consumer.subscribe([settings.topic("incidents")])
    metrics = serve_metrics(settings, progress)
    try:
        while not stop.is_set():
            try:
                with _sessions(settings, digests) as (conn, lock):
                    database.back()
                    if _serve(
                        settings,
                        stop,
                        consumer,
                        conn,
                        lock,
                        reading,
                        counts,
                        kafka,
                        progress,
                        until_idle,
                        poll_s,
                    ):
                        break
            except DATABASE_DOWN as exc:
                database.wait(exc, stop)
    finally:
        consumer.close()
        metrics.close()
    return counts


def _serve(
    settings: Settings,
    stop: threading.Event,
    consumer: Consumer,
    conn: Connection,
    lock: Connection | None,
    reading: _Reading,
    counts: Counts,
    kafka: Outage,
    progress: Callable[[str], None],
    until_idle: bool,
    poll_s: float,
) -> bool:
    """The loop on one pair of sessions, until `stop` (False) or, with `until_idle`, until
    there is nothing left to do (True). A lost session raises (DATABASE_DOWN)."""
    # What the channels took before the last session was lost is marked before anything is
    # recovered: sent once, not again (warehouse.alert_outbox: "sent" is true whoever holds it).
    while counts.unmarked:
        mark_sent(conn, counts.unmarked[0])
        counts.unmarked.pop(0)
    next_camera_check = next_recovery = 0.0
    while not stop.is_set():
        # Wait for the first message only, then take whatever else is already here:
        # an incident is enqueued as soon as it arrives, a burst in batches.
        first = consumer.poll(poll_s)
        batch = [] if first is None else [first, *consumer.consume(199, 0)]
        read = _read(batch, reading)
        _follow_kafka(consumer, reading, kafka)
        if reading.unqueued:
            with conn.transaction():
                recipients, stores = load_recipients(conn), store_names(conn)
                now = datetime.now(UTC)
                for incident in reading.unqueued:
                    counts.enqueued += enqueue_incident(
                        conn, incident, recipients, stores, now, timedelta(seconds=settings.alerts_max_age_s)
                    )
            counts.incidents += len(reading.unqueued)
            reading.unqueued = []
        _commit(consumer, reading, kafka)
        if time.monotonic() >= next_camera_check:
            with conn.transaction():
                after = timedelta(seconds=settings.alerts_camera_after_s)
                counts.enqueued += enqueue_camera_problems(conn, load_recipients(conn), after)
            next_camera_check = time.monotonic() + CAMERA_CHECK_S
        if time.monotonic() >= next_recovery:
            # Another dispatcher may have died with messages claimed.
            if recovered := recover_interrupted(conn):
                progress(f"{recovered} alert(s) a stopped sender left half-sent go out again")
            if lock is not None:
                lock.execute("SELECT 1")  # the digest lock is held only while its session lives
            next_recovery = time.monotonic() + RECOVERY_S
        # Send what is due, for at most a second before looking at Kafka again.
        claimed = 0
        busy_until = time.monotonic() + SEND_SLICE_S
        while (n := send_due(settings, conn, counts)) and time.monotonic() < busy_until:
            claimed += n
        claimed += n
        assigned = {p.partition for p in consumer.assignment()}
        idle = assigned and reading.at_end >= assigned and not claimed and not read and not reading.to_commit
        if until_idle and idle and not in_flight(conn):
            return True
    return False


def _read(batch: list[Message], reading: _Reading) -> int:
    """Take a batch from Kafka: its incidents go to `reading.unqueued`, and the partitions it
    read to the end are noted; returns how many messages it had (errors and EOF aside)."""
    read = 0
    for msg in batch:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 (confluent-kafka's constant)
                reading.at_end.add(msg.partition() or 0)
            continue
        read += 1
        reading.to_commit = True
        reading.at_end.discard(msg.partition() or 0)
        try:
            reading.unqueued.append(decode(msg.value(), Incident))
        except ContractError as exc:
            log.warning("skipping a malformed incident message: %s", exc)
    return read


def _follow_kafka(consumer: Consumer, reading: _Reading, kafka: Outage) -> None:
    """Note what librdkafka said of the brokers (no broker answers: an outage, said once);
    while they are away, ask now and then whether one answers again."""
    errors, reading.kafka_errors[:] = list(reading.kafka_errors), []
    for error in errors:
        if error.code() in KAFKA_DOWN:
            kafka.failed(error.str())
        else:
            log.warning("Kafka: %s", error.str())
    if kafka.down and not reading.to_commit and time.monotonic() >= reading.next_kafka_try:
        try:
            consumer.list_topics(timeout=1.0)
        except KafkaException as exc:
            reading.next_kafka_try = time.monotonic() + kafka.failed(exc)
        else:
            kafka.back()


def _commit(consumer: Consumer, reading: _Reading, kafka: Outage) -> None:
    """Commit the offsets read past, once everything read is in the outbox; a commit Kafka
    cannot take now is tried again after the outage's backoff (a crash meanwhile re-reads
    what the outbox's keys absorb)."""
    if not reading.to_commit or reading.unqueued or time.monotonic() < reading.next_kafka_try:
        return
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:  # noqa: SLF001 (nothing to commit)
            reading.next_kafka_try = time.monotonic() + kafka.failed(exc)
            return
    reading.to_commit = False
    kafka.back()
