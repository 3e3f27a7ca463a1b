"""`alerts run` end to end: incidents on Kafka -> the outbox -> a real SMTP server; what
the email says; SMTP down, then back; a replay sends nothing twice; kill -9 in the middle of
a batch; `alerts test`."""

from __future__ import annotations

import asyncio
import email
import signal
import threading
from collections import Counter
from datetime import UTC, datetime
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiosmtpd.controller import Controller

from alerts.dispatcher import Counts, run
from alerts.rules import Recipient
from shrinkwatch.contracts import Incident, Signal, encode
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.alerts.conftest import Mailbox
from tests.factories import incident
from tests.support import cli_env, free_port, produce, run_cli, spawn_cli, wait_for
from warehouse.alert_recipients import save_recipient
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SITE = "stores: [{id: store-001, name: Leeds, timezone: Europe/London}]"


def configured(settings: Settings, mailbox: Mailbox, **extra: object) -> Settings:
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": mailbox.port, "smtp_security": "none"}
    ready = settings.model_copy(update={**smtp, "dashboard_public_url": "https://sw.example.com", **extra})
    with connect(ready.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        save_recipient(
            conn,
            Recipient(
                id="ana",
                name="Ana",
                email="ana@example.com",
                channels=("email",),
                stores=("store-001",),
                min_level="high",
            ),
        )
    return ready


def publish(settings: Settings, *versions: Incident) -> None:
    produce(settings, settings.topic("incidents"), [(v.incident_id.encode(), encode(v)) for v in versions])


def dispatch(settings: Settings, group_id: str | None = None) -> Counts:
    return run(
        settings, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True, group_id=group_id
    )


def test_a_high_risk_incident_is_emailed_once_with_its_evidence(
    settings: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    ready = configured(settings, mailbox)
    reference = "cam-1/i1.jpg"
    snapshot = ready.evidence_dir() / reference
    snapshot.parent.mkdir(parents=True)
    cv2.imwrite(str(snapshot), np.full((48, 64, 3), 90, np.uint8))
    now = datetime.now(UTC)
    signals = [
        Signal(name="dwell_high_value_s", value=41.0, contribution=0.55),
        Signal(name="skipped_checkout", value=1.0, contribution=0.3),
    ]
    publish(
        ready,
        incident(1, incident_id="i1", risk_level="medium", started_at=now),
        incident(
            2,
            incident_id="i1",
            risk_level="high",
            risk_score=0.85,
            signals=signals,
            snapshot=reference,
            started_at=now,
        ),
        incident(1, incident_id="i2", risk_level="low", started_at=now),
    )
    done = dispatch(ready)
    assert (done.incidents, done.sent, done.failed) == (3, 1, 0)
    [(recipients, message)] = mailbox.received
    assert recipients == ["ana@example.com"]
    assert message["Subject"] == "[Shrinkwatch] High risk: loitering high value at Leeds (cam-1)"
    assert now.replace(microsecond=0) <= parsedate_to_datetime(message["Date"]) <= datetime.now(UTC)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "https://sw.example.com/review?id=i1" in text and "https://sw.example.com/review?id=i1" in html
    assert "dwell high value: 41 (adds 0.55)" in text
    images = [p for p in message.walk() if p.get_content_type() == "image/jpeg"]
    assert len(images) == 1 and f"cid:{images[0]['Content-ID'][1:-1]}" in html
    # Read again from the start (a new run of the same group re-reads nothing; a replay with a
    # fresh group re-reads everything): nothing is sent twice.
    assert dispatch(ready).incidents == 0
    assert dispatch(ready, group_id="a-fresh-group").incidents == 3
    assert len(mailbox.received) == 1


def test_smtp_down_is_retried_and_delivered_once_when_it_returns(
    settings: Settings, mailbox: Mailbox
) -> None:
    down = configured(settings, mailbox, smtp_port=free_port())  # nothing listens there
    publish(down, incident(1, incident_id="i9", risk_level="high", started_at=datetime.now(UTC)))
    first = dispatch(down)
    assert (first.sent, first.retried) == (0, 1)
    with connect(down.database_dsn) as conn:
        row = conn.execute("SELECT status, attempts, last_error FROM alert_outbox").fetchone()
        assert row is not None and row["status"] == "pending" and row["attempts"] == 1
        assert "Connection refused" in row["last_error"]
        conn.execute("UPDATE alert_outbox SET not_before = now() - interval '1 second'")  # its backoff, over
        conn.commit()
    up = down.model_copy(update={"smtp_port": mailbox.port})
    second = dispatch(up)
    assert second.sent == 1
    assert len(mailbox.received) == 1
    dispatch(up)
    assert len(mailbox.received) == 1


def test_alerts_test_says_what_worked(settings: Settings, mailbox: Mailbox, tmp_path: Path) -> None:
    ready = configured(settings, mailbox)
    ok = run_cli(["alerts", "test", "--recipient", "ana"], env=cli_env(ready, tmp_path))
    assert ok.returncode == 0 and ok.stdout == "email: sent\n"
    assert mailbox.received[-1][1]["Subject"] == "[Shrinkwatch] Test alert"
    broken = run_cli(
        ["alerts", "test", "--recipient", "ana"],
        env=cli_env(ready.model_copy(update={"smtp_port": free_port()}), tmp_path),
    )
    assert broken.returncode == 1 and broken.stdout.startswith("email: FAILED: SMTP 127.0.0.1:")
    unknown = run_cli(["alerts", "test", "--recipient", "nobody"], env=cli_env(ready, tmp_path))
    assert unknown.returncode == 2 and "no enabled recipient 'nobody'" in unknown.stderr


def test_check_sends_nothing_and_says_what_would_fail(
    settings: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    ready = configured(settings, mailbox)
    with connect(ready.database_dsn) as conn:
        save_recipient(
            conn,
            Recipient(
                id="bo",
                name="Bo",
                email="bo@example.com",
                phone="+447700900123",
                channels=("email", "sms"),
                stores=("store-001",),
            ),
        )
    env, down = (
        cli_env(ready, tmp_path),
        cli_env(ready.model_copy(update={"smtp_port": free_port()}), tmp_path),
    )
    ok = run_cli(["alerts", "test", "--recipient", "ana", "--check"], env=env)
    assert (ok.returncode, ok.stdout) == (0, "email: ready\n")
    two = run_cli(["alerts", "test", "--recipient", "bo", "--check"], env=down)
    assert two.returncode == 1
    email, sms = two.stdout.splitlines()
    assert email.startswith("email: FAILED: SMTP 127.0.0.1:") and "refused" in email
    assert sms == "sms: FAILED: settings not set: twilio_account_sid, twilio_auth_token, twilio_from"
    running = run_cli(["alerts", "run", "--check"], env=env)
    assert running.returncode == 0 and "2 recipient(s); SMTP 127.0.0.1:" in running.stdout, running.stderr
    assert run_cli(["alerts", "run", "--check"], env=down).returncode == 1
    assert mailbox.received == []


def test_a_message_a_killed_run_left_half_sent_goes_out_on_restart(
    settings: Settings, mailbox: Mailbox
) -> None:
    from alerts.outbox import enqueue_incident
    from warehouse.alert_outbox import claim_due
    from warehouse.alert_recipients import load_recipients

    ready = configured(settings, mailbox)
    with connect(ready.database_dsn) as conn:
        with conn.transaction():
            enqueue_incident(
                conn,
                incident(1, incident_id="k1", risk_level="high"),
                load_recipients(conn),
                {"store-001": ("Leeds", "Europe/London")},
            )
        assert len(claim_due(conn)) == 1  # claimed ... and the run is killed here (no send, no mark)
    done = dispatch(ready)
    assert done.sent == 1 and len(mailbox.received) == 1
    with connect(ready.database_dsn) as conn:
        assert conn.execute("SELECT status, attempts FROM alert_outbox").fetchone() == {
            "status": "sent",
            "attempts": 2,
        }


class HoldingMailbox:
    """An SMTP server that holds the `hold_at`-th message it is given without answering
    until the client goes away, and then does not accept it (as a real server that never
    said 250 does not deliver)."""

    def __init__(self, hold_at: int) -> None:
        self.port, self.hold_at, self.given = free_port(), hold_at, 0
        self.accepted: list[str] = []
        self.holding = threading.Event()
        self.dropped = threading.Event()

    async def handle_DATA(self, server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.given += 1
        if self.given == self.hold_at:
            self.holding.set()
            try:
                while server.transport is not None:
                    await asyncio.sleep(0.05)
            finally:  # the client went away (aiosmtpd cancels this handler when it does)
                self.dropped.set()
            return "421 closing"
        parsed = email.message_from_bytes(envelope.content, policy=default)
        self.accepted.append(str(parsed["Subject"]))
        return "250 OK"


def test_kill_9_in_the_middle_of_a_batch_loses_nothing_and_sends_nothing_twice(
    settings: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    holding = HoldingMailbox(hold_at=4)
    server = Controller(holding, hostname="127.0.0.1", port=holding.port)
    server.start()
    try:
        ready = configured(settings, mailbox, smtp_port=holding.port)
        now = datetime.now(UTC)
        publish(
            ready,
            *[
                incident(1, incident_id=f"k{n}", camera_id=f"cam-{n}", risk_level="high", started_at=now)
                for n in range(8)
            ],
        )
        env = cli_env(ready, tmp_path)
        first = spawn_cli(["alerts", "run"], env, tmp_path / "first.log")
        try:
            assert holding.holding.wait(120), (tmp_path / "first.log").read_text()
            assert len(holding.accepted) == 3  # three went out; the fourth is on the wire
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        assert holding.dropped.wait(30)
        with connect(ready.database_dsn) as conn:
            states = Counter(r["status"] for r in conn.execute("SELECT status FROM alert_outbox"))
        # Three sent; the fourth (and whatever else its batch claimed) left claimed; what was not
        # read yet stays in Kafka, uncommitted.
        assert states["sent"] == 3 and states["sending"] >= 1 and states["sent"] + states["sending"] <= 8

        second = spawn_cli(["alerts", "run"], env, tmp_path / "second.log")
        try:
            wait_for(lambda: len(holding.accepted) >= 8, 120, what="the rest of the alerts")
            with connect(ready.database_dsn) as conn:
                wait_for(
                    lambda: (
                        conn.execute(
                            "SELECT count(*) AS n FROM alert_outbox WHERE status = 'sent'"
                        ).fetchone()["n"]
                        == 8
                    ),
                    60,
                    what="every alert marked sent",
                )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0
        cameras = Counter(subject.rsplit("(", 1)[1].rstrip(")") for subject in holding.accepted)
        assert cameras == {f"cam-{n}": 1 for n in range(8)}
        assert (
            "alert(s) a stopped sender left half-sent go out again" in (tmp_path / "second.log").read_text()
        )
    finally:
        server.stop()


def test_a_live_senders_claims_are_left_alone(settings: Settings, mailbox: Mailbox) -> None:
    from alerts.outbox import enqueue_incident
    from warehouse.alert_outbox import claim_due, recover_interrupted
    from warehouse.alert_recipients import load_recipients

    ready = configured(settings, mailbox)
    with connect(ready.database_dsn) as other, connect(ready.database_dsn) as conn:
        with conn.transaction():
            enqueue_incident(
                conn,
                incident(1, incident_id="l1", risk_level="high", started_at=datetime.now(UTC)),
                load_recipients(conn),
                {"store-001": ("Leeds", "Europe/London")},
            )
        assert len(claim_due(other)) == 1  # another dispatcher, alive, is sending it
        assert recover_interrupted(conn) == 0
        other.close()  # ... and now it is gone
        wait_for(lambda: recover_interrupted(conn) == 1, 30, 0.1, what="its claim to come back")
        assert conn.execute("SELECT status FROM alert_outbox").fetchone() == {"status": "pending"}


class Refusing:
    """An SMTP server that refuses whoever connects (554 in its greeting), counting them."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            client.sendall(b"554 no service here\r\n")
            client.close()


class Greylisting(Mailbox):
    """Accepts everyone but grey@example.com, whom it asks to try later (450)."""

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's name)
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address == "grey@example.com":
            return "450 4.2.0 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refusing_server_is_tried_once_per_batch_and_a_greylisted_address_again_later(
    settings: Settings, mailbox: Mailbox
) -> None:
    refusing = Refusing()
    down = configured(settings, mailbox, smtp_port=refusing.port)
    with connect(down.database_dsn) as conn:
        save_recipient(
            conn,
            Recipient(
                id="grey",
                name="Grey",
                email="grey@example.com",
                channels=("email",),
                stores=("store-001",),
                min_level="high",
            ),
        )
    now = datetime.now(UTC)
    publish(
        down,
        *[
            incident(1, incident_id=f"g{n}", camera_id=f"cam-{n}", risk_level="high", started_at=now)
            for n in range(3)
        ],
    )
    first = dispatch(down)
    assert (first.sent, first.retried, first.failed) == (0, 6, 0)  # 3 incidents x 2 recipients
    assert refusing.connections == 1  # one try for the whole batch, not one time-out per message
    refusing.sock.close()
    with connect(down.database_dsn) as conn:
        errors = {r["last_error"] for r in conn.execute("SELECT last_error FROM alert_outbox")}
        assert len(errors) == 1 and "554" in errors.pop()
        conn.execute("UPDATE alert_outbox SET not_before = now() - interval '1 second'")
        conn.commit()

    grey = Greylisting(free_port())
    server = Controller(grey, hostname="127.0.0.1", port=grey.port)
    server.start()
    try:
        second = dispatch(down.model_copy(update={"smtp_port": grey.port}))
    finally:
        server.stop()
    assert (second.sent, second.retried, second.failed) == (3, 3, 0)  # grey's wait, Ana's went
    assert sorted(to for (to,), _m in grey.received) == ["ana@example.com"] * 3
    with connect(down.database_dsn) as conn:
        states = Counter(
            (r["recipient_id"], r["status"])
            for r in conn.execute("SELECT recipient_id, status FROM alert_outbox")
        )
    assert states == {("ana", "sent"): 3, ("grey", "pending"): 3}


def test_an_alert_waits_for_the_snapshot_the_detector_is_saving(settings: Settings, mailbox: Mailbox) -> None:
    from warehouse.incidents import upsert_incidents

    ready = configured(settings, mailbox, alerts_snapshot_wait_s=30)
    opened = incident(1, incident_id="w1", risk_level="high", started_at=datetime.now(UTC))
    with connect(ready.database_dsn) as conn:
        upsert_incidents(conn, [opened])
    publish(ready, opened)
    sender = threading.Thread(target=dispatch, args=(ready,))
    sender.start()
    try:
        with connect(ready.database_dsn) as conn:
            wait_for(
                lambda: conn.execute("SELECT 1 FROM alert_outbox").fetchone(),
                60,
                0.1,
                what="the queued alert",
            )
            assert mailbox.received == []  # waiting for the picture
            snapshot = ready.evidence_dir() / "cam-1" / "w1.jpg"
            snapshot.parent.mkdir(parents=True)
            cv2.imwrite(str(snapshot), np.full((48, 64, 3), 200, np.uint8))
    finally:
        sender.join(timeout=60)
    [(_to, message)] = mailbox.received
    assert [p.get_content_type() for p in message.walk() if p.get_content_maintype() == "image"] == [
        "image/jpeg"
    ]


def test_an_alert_whose_snapshot_never_comes_goes_without_it(settings: Settings, mailbox: Mailbox) -> None:
    ready = configured(settings, mailbox, alerts_snapshot_wait_s=0.5)
    publish(ready, incident(1, incident_id="n1", risk_level="high", started_at=datetime.now(UTC)))
    done = dispatch(ready)
    assert (done.sent, done.retried, done.failed) == (1, 0, 0)
    [(_to, message)] = mailbox.received
    assert [p for p in message.walk() if p.get_content_maintype() == "image"] == []
    assert (
        "No snapshot was saved for this incident." in message.get_body(preferencelist=("html",)).get_content()
    )
    with connect(ready.database_dsn) as conn:
        assert conn.execute("SELECT attempts FROM alert_outbox").fetchone() == {
            "attempts": 1
        }  # waits don't count


def test_check_names_a_secret_not_set_and_warns_of_one_stored_as_a_value(
    settings: Settings, mailbox: Mailbox, tmp_path: Path
) -> None:
    ready = configured(settings, mailbox)
    feed = (
        "\nalerts:\n  recipients:\n"
        "    - {id: feed, name: Feed, channels: [webhook], stores: [store-001],\n"
        "       webhook_url: 'https://soc.example.com/in', webhook_secret: '${FEED_SECRET}'}\n"
    )
    with connect(ready.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE + feed), {"FEED_SECRET": "set-when-applied"})
        # As an earlier version stored it: the secret itself.
        save_recipient(
            conn,
            Recipient(
                id="old-hook",
                name="Old hook",
                channels=("webhook",),
                stores=("store-001",),
                webhook_url="https://soc.example.com/old",
                webhook_secret="old-literal-secret",
            ),
        )
        save_recipient(
            conn,
            Recipient(
                id="gone",
                name="Gone",
                channels=("apprise",),
                stores=("store-001",),
                apprise_url="json://127.0.0.1/old",
                enabled=False,  # disabled, but the secret is still at rest
            ),
        )
    env = cli_env(ready, tmp_path)
    env.pop("FEED_SECRET", None)
    unset = "recipient feed: webhook_secret names ${FEED_SECRET}, not set in this process's environment"
    literal = [
        f"  warning: recipient {who}: {name} is stored as a value, not as a ${{VAR}} reference; "
        "write it as ${VAR} (site file or Alert settings) so that the database holds no secret"
        for who, name in (("gone", "apprise_url"), ("old-hook", "webhook_secret"))
    ]
    running = run_cli(["alerts", "run", "--check"], env=env)
    assert running.returncode == 1, running.stderr
    assert running.stdout.splitlines()[1:] == [f"  {unset}", *literal]
    tested = run_cli(["alerts", "test", "--recipient", "feed", "--check"], env=env)
    assert (tested.returncode, tested.stdout) == (1, f"webhook: FAILED: {unset}\n")

    env["FEED_SECRET"] = "whsec_not-base64!"  # would fail every send
    malformed = (
        "recipient feed: webhook_secret: the webhook secret starts with whsec_ but the rest is not base64"
    )
    running = run_cli(["alerts", "run", "--check"], env=env)
    assert running.returncode == 1, running.stderr
    assert running.stdout.splitlines()[1:] == [f"  {malformed}", *literal]
    tested = run_cli(["alerts", "test", "--recipient", "feed", "--check"], env=env)
    assert (tested.returncode, tested.stdout) == (1, f"webhook: FAILED: {malformed}\n")

    env["FEED_SECRET"] = "set-now"
    running = run_cli(["alerts", "run", "--check"], env=env)
    assert running.returncode == 0 and running.stdout.splitlines()[1:] == literal
    assert run_cli(["alerts", "test", "--recipient", "feed", "--check"], env=env).stdout == "webhook: ready\n"
    assert (
        run_cli(["alerts", "test", "--recipient", "old-hook", "--check"], env=env).stdout
        == "webhook: ready\n"
    )
    assert mailbox.received == []
