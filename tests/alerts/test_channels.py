"""SMS through the real twilio client (pointed at a local server that answers like Twilio's
Messages API), signed webhooks and Apprise, end to end through the dispatcher; their secrets
stored as ${VAR} and read when a message is sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime

import pytest

from alerts.dispatcher import run
from alerts.rules import Recipient
from shrinkwatch.contracts import encode
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.alerts.local_servers import ACCOUNT_SID, AUTH_TOKEN, twilio_api, webhook_receiver
from tests.factories import incident
from tests.support import produce
from warehouse.alert_recipients import save_recipient
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SITE = "stores: [{id: store-001, name: Leeds, timezone: Europe/London}]"


def outbox(settings: Settings) -> list[dict[str, object]]:
    with connect(settings.database_dsn) as conn:
        return conn.execute(
            "SELECT recipient_id, channel, status, last_error FROM alert_outbox ORDER BY id"
        ).fetchall()


def test_sms_and_webhook(settings: Settings) -> None:
    with twilio_api() as twilio, webhook_receiver() as hook:
        ready = settings.model_copy(
            update={
                "twilio_account_sid": ACCOUNT_SID,
                "twilio_auth_token": AUTH_TOKEN,
                "twilio_from": "+441130000000",
                "twilio_api_base": twilio.url,
                "dashboard_public_url": "https://sw.example.com",
            }
        )
        with connect(ready.database_dsn) as conn:
            apply_site_config(conn, parse_site_config(SITE))
            save_recipient(
                conn,
                Recipient(
                    id="mo", name="Mo", phone="+447700900123", channels=("sms",), stores=("store-001",)
                ),
            )
            save_recipient(
                conn,
                Recipient(
                    id="bad-number",
                    name="Typo",
                    phone="07700 900123",
                    channels=("sms",),
                    stores=("store-001",),
                ),
            )
            save_recipient(
                conn,
                Recipient(
                    id="feed",
                    name="Ops feed",
                    webhook_url=f"{hook.url}/hooks/sw",
                    webhook_secret="s3cret",
                    channels=("webhook",),
                    stores=("store-001",),
                ),
            )
        produce(
            ready,
            ready.topic("incidents"),
            [(b"i1", encode(incident(1, incident_id="i1", risk_level="high", started_at=datetime.now(UTC))))],
        )
        done = run(ready, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)

    assert (done.sent, done.failed) == (2, 1)
    [sms] = twilio.requests
    assert sms["To"] == "+447700900123" and sms["From"] == "+441130000000"
    assert (
        sms["Body"]
        == "Shrinkwatch HIGH: loitering high value at Leeds (cam-1) https://sw.example.com/review?id=i1"
    )
    states = {r["recipient_id"]: (r["status"], r["last_error"]) for r in outbox(ready)}
    assert states["mo"] == ("sent", None) and states["feed"] == ("sent", None)
    assert states["bad-number"][0] == "failed" and "code 21211" in str(states["bad-number"][1])  # for good

    [call] = hook.requests
    body = call["body"]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert call["path"] == "/hooks/sw" and call["headers"]["X-Shrinkwatch-Signature"] == expected
    assert call["headers"]["X-Shrinkwatch-Event"] == "alert.new"
    sent = json.loads(body)
    assert sent["schema"] == "shrinkwatch.alert/1" and sent["reason"] == "new"
    assert sent["incident"]["incident_id"] == "i1" and sent["link"] == "https://sw.example.com/review?id=i1"
    assert call["headers"]["Idempotency-Key"] == sent["id"]


def test_apprise_one_target_per_message_retried_until_delivered_once(settings: Settings) -> None:
    with webhook_receiver() as chat:
        ready = settings.model_copy(update={"dashboard_public_url": "https://sw.example.com"})
        port = chat.url.rsplit(":", 1)[1]
        with connect(ready.database_dsn) as conn:
            apply_site_config(conn, parse_site_config(SITE))
            save_recipient(
                conn,
                Recipient(
                    id="team-chat",
                    name="Store team chat",
                    apprise_url=f"json://127.0.0.1:{port}/chat",  # Apprise's generic JSON target
                    channels=("apprise",),
                    stores=("store-001",),
                ),
            )
        produce(
            ready,
            ready.topic("incidents"),
            [(b"a1", encode(incident(1, incident_id="a1", risk_level="high", started_at=datetime.now(UTC))))],
        )
        chat.status = 500
        first = run(ready, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)
        assert (first.sent, first.retried) == (0, 1) and len(chat.requests) == 1
        [row] = outbox(ready)
        assert row["status"] == "pending" and str(row["last_error"]).startswith("Apprise json://:")
        assert f"127.0.0.1:{port}/chat" not in str(row["last_error"])  # the URL is a secret

        chat.status = 200
        with connect(ready.database_dsn) as conn:
            conn.execute("UPDATE alert_outbox SET not_before = now() - interval '1 second'")
            conn.commit()
        second = run(ready, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)
        third = run(ready, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)
    assert (second.sent, third.sent) == (1, 0) and len(chat.requests) == 2
    posted = json.loads(chat.requests[-1]["body"])
    assert posted["title"] == "Shrinkwatch: High risk: loitering high value at Leeds"
    assert posted["message"].endswith("https://sw.example.com/review?id=a1")
    assert outbox(ready)[0]["status"] == "sent"


def test_secrets_are_read_when_sent_and_one_not_set_is_retried(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database holds `${VAR}`; each send reads the environment it has then (a rotated
    secret needs no new apply); a variable that is not set is a failure on the row, retried."""
    with webhook_receiver() as hook, webhook_receiver() as chat:
        ready = settings.model_copy(update={"dashboard_public_url": "https://sw.example.com"})
        site = SITE + (
            "\nalerts:\n  recipients:\n"
            f"    - {{id: feed, name: Feed, channels: [webhook], stores: [store-001],\n"
            f"       webhook_url: '{hook.url}/in', webhook_secret: '${{FEED_SECRET}}'}}\n"
            "    - {id: chat, name: Chat, channels: [apprise], stores: [store-001],\n"
            "       apprise_url: '${FEED_CHAT}'}\n"
        )
        chat_url = f"json://{chat.url.removeprefix('http://')}/chat"
        with connect(ready.database_dsn) as conn:
            apply_site_config(
                conn, parse_site_config(site), {"FEED_SECRET": "at-apply", "FEED_CHAT": chat_url}
            )
            stored = conn.execute(
                "SELECT webhook_secret, apprise_url FROM alert_recipients ORDER BY id"
            ).fetchall()
        assert stored == [
            {"webhook_secret": None, "apprise_url": "${FEED_CHAT}"},
            {"webhook_secret": "${FEED_SECRET}", "apprise_url": None},
        ]
        monkeypatch.delenv("FEED_SECRET", raising=False)
        monkeypatch.delenv("FEED_CHAT", raising=False)
        produce(
            ready,
            ready.topic("incidents"),
            [(b"s1", encode(incident(1, incident_id="s1", risk_level="high", started_at=datetime.now(UTC))))],
        )
        first = run(ready, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)
        assert (first.sent, first.retried, first.failed) == (0, 2, 0)
        assert hook.requests == [] and chat.requests == []
        assert {r["recipient_id"]: (r["status"], r["last_error"]) for r in outbox(ready)} == {
            "feed": (
                "pending",
                "recipient feed: webhook_secret names ${FEED_SECRET}, not set in this process's environment",
            ),
            "chat": (
                "pending",
                "recipient chat: apprise_url names ${FEED_CHAT}, not set in this process's environment",
            ),
        }

        monkeypatch.setenv("FEED_SECRET", "rotated-since-apply")
        monkeypatch.setenv("FEED_CHAT", chat_url)
        with connect(ready.database_dsn) as conn:
            conn.execute("UPDATE alert_outbox SET not_before = now() - interval '1 second'")  # backoff over
            conn.commit()
        second = run(ready, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)
    assert second.sent == 2 and {r["status"] for r in outbox(ready)} == {"sent"}
    [call] = hook.requests
    expected = "sha256=" + hmac.new(b"rotated-since-apply", call["body"], hashlib.sha256).hexdigest()
    assert call["headers"]["X-Shrinkwatch-Signature"] == expected
    assert json.loads(chat.requests[0]["body"])["title"].startswith("Shrinkwatch: High risk")
