"""Webhook signatures in the Standard Webhooks form (alerts/webhook_signing.py), beside the
X-Shrinkwatch-Signature receivers rely on: what a real receiver gets from the dispatcher on
a first attempt and on its retry, checked by our `verify` and by the `standardwebhooks`
package (the off-the-shelf verifier a receiver would use); and the verifier's refusals,
each with its message, always at an explicit `now`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.dispatcher import run
from alerts.rules import Recipient
from alerts.webhook_signing import SignatureError, sign, signing_key, standard_headers, verify
from shrinkwatch.contracts import encode
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.alerts.local_servers import webhook_receiver
from tests.factories import incident
from tests.support import produce
from warehouse.alert_recipients import save_recipient
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SITE = "stores: [{id: store-001, name: Leeds, timezone: Europe/London}]"
PLAIN = "a plain secret, as recipients have had"
RAW_KEY = bytes(range(32))
WHSEC = "whsec_" + base64.b64encode(RAW_KEY).decode()
T = 1_765_000_000  # the Unix second a message below is signed at
BODY = b'{"schema":"shrinkwatch.alert/1","id":"alert-7"}'


def for_the_package(secret: str) -> str:
    """What a receiver passes `standardwebhooks.Webhook` for one of our secrets (docs/ALERTS.md)."""
    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode("utf-8")).decode()


@pytest.mark.parametrize("secret", [PLAIN, WHSEC, "ünïcode-secret"])
def test_signature_is_the_one_the_standardwebhooks_package_makes(secret: str) -> None:
    """Our signer and the package's agree on the key (whsec_ decoded, else the UTF-8 bytes)
    and on what is signed ("{id}.{timestamp}.{body}")."""
    theirs = Webhook(for_the_package(secret)).sign("alert-7", datetime.fromtimestamp(T, UTC), BODY.decode())
    assert sign(signing_key(secret), "alert-7", T, BODY) == theirs
    assert standard_headers(secret, "alert-7", T, BODY) == {
        "webhook-id": "alert-7",
        "webhook-timestamp": str(T),
        "webhook-signature": theirs,
    }


@pytest.mark.parametrize(
    ("secret", "key", "error"),
    [
        ("s3cret", b"s3cret", None),
        (WHSEC, RAW_KEY, None),
        (WHSEC.rstrip("="), RAW_KEY, None),  # unpadded base64, as the package also takes it
        ("whsec", b"whsec", None),  # no underscore: a plain secret
        ("", None, "the webhook secret is empty"),
        ("whsec_", None, "the webhook secret is whsec_ with no key after it"),
        ("whsec_not base64!", None, "the webhook secret starts with whsec_ but the rest is not base64"),
        ("whsec_a", None, "the webhook secret starts with whsec_ but the rest is not base64"),
        ("whsec_ab-_", None, "the webhook secret starts with whsec_ but the rest is not base64"),
    ],
)
def test_signing_key(secret: str, key: bytes | None, error: str | None) -> None:
    if error is None:
        assert signing_key(secret) == key
    else:
        with pytest.raises(ValueError, match=f"^{error}$"):
            signing_key(secret)


def test_an_id_with_a_full_stop_is_refused() -> None:
    with pytest.raises(ValueError, match="no full stop: 'alert.7'"):
        standard_headers(PLAIN, "alert.7", T, BODY)


GOOD = standard_headers(PLAIN, "alert-7", T, BODY)
OTHER = sign(signing_key("another secret"), "alert-7", T, BODY)


@pytest.mark.parametrize(
    ("headers", "body", "now", "error"),
    [
        (GOOD, BODY, T, None),
        ({k.upper(): v for k, v in GOOD.items()}, BODY, T, None),  # header names in any case
        (GOOD, BODY, T + 300, None),  # the window's edges are in it
        (GOOD, BODY, T - 300, None),
        ({**GOOD, "webhook-signature": f"{OTHER} {GOOD['webhook-signature']}"}, BODY, T, None),  # rotation
        (
            {**GOOD, "webhook-signature": f"v1a,{GOOD['webhook-signature'][3:]}"},
            BODY,
            T,
            "no webhook-signature",
        ),
        ({**GOOD, "webhook-signature": OTHER}, BODY, T, "no webhook-signature matches"),
        ({**GOOD, "webhook-id": "alert-8"}, BODY, T, "no webhook-signature matches"),
        ({**GOOD, "webhook-timestamp": str(T + 1)}, BODY, T, "no webhook-signature matches"),
        (GOOD, BODY + b" ", T, "no webhook-signature matches"),
        (GOOD, BODY, T + 301, "webhook-timestamp is 301 s old, older than the replay window of 300 s"),
        (GOOD, BODY, T - 301, "webhook-timestamp is 301 s ahead of this clock, further than the replay"),
        ({**GOOD, "webhook-timestamp": f"{T}.5"}, BODY, T, "webhook-timestamp is not whole seconds"),
        ({**GOOD, "webhook-timestamp": "-1"}, BODY, T, "webhook-timestamp is not whole seconds"),
        ({**GOOD, "webhook-id": ""}, BODY, T, "^missing header: webhook-id$"),
        ({"webhook-id": "alert-7"}, BODY, T, "^missing headers: webhook-timestamp, webhook-signature$"),
    ],
)
def test_verify(headers: dict[str, str], body: bytes, now: int, error: str | None) -> None:
    if error is None:
        verify(PLAIN, headers, body, now=now)
    else:
        with pytest.raises(SignatureError, match=error):
            verify(PLAIN, headers, body, now=now)


def test_the_replay_window_is_the_receivers_to_choose() -> None:
    verify(PLAIN, GOOD, BODY, now=T + 3600, tolerance_s=3600)
    with pytest.raises(SignatureError, match="is 61 s old, older than the replay window of 60 s"):
        verify(PLAIN, GOOD, BODY, now=T + 61, tolerance_s=60)


def test_a_bad_secret_is_the_receivers_error_not_the_messages() -> None:
    with pytest.raises(ValueError, match="not base64") as raised:
        verify("whsec_!!", GOOD, BODY, now=T)
    assert not isinstance(raised.value, SignatureError)


def _incident_to(settings: Settings, recipients: list[Recipient]) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        for recipient in recipients:
            save_recipient(conn, recipient)
    produce(
        settings,
        settings.topic("incidents"),
        [(b"w1", encode(incident(1, incident_id="w1", risk_level="high", started_at=datetime.now(UTC))))],
    )


def _attempt(settings: Settings) -> tuple[int, float, Any]:
    """One dispatcher pass, with the clock read just before and just after it."""
    before = int(time.time())
    done = run(settings, threading.Event(), progress=lambda _m: None, poll_s=0.2, until_idle=True)
    return before, time.time(), done


def test_a_retried_webhook_is_signed_both_ways_with_one_id(settings: Settings) -> None:
    """Two recipients, one with a plain secret and one with a whsec_ key; the receiver answers
    500 to the first attempt and 200 to the retry. Every request carries a valid
    X-Shrinkwatch-Signature and a valid Standard Webhooks signature (ours and the package's
    verifier agree); the webhook-id is the Idempotency-Key and the body's id on both attempts,
    and each attempt's webhook-timestamp is the time it was made."""
    with webhook_receiver() as hook:
        ready = settings.model_copy(update={"dashboard_public_url": "https://sw.example.com"})
        secrets = {"/plain": PLAIN, "/whsec": WHSEC}
        _incident_to(
            ready,
            [
                Recipient(
                    id=f"feed-{path[1:]}",
                    name=path[1:],
                    webhook_url=f"{hook.url}{path}",
                    webhook_secret=secret,
                    channels=("webhook",),
                    stores=("store-001",),
                )
                for path, secret in secrets.items()
            ],
        )
        hook.status = 500
        first_from, first_to, first = _attempt(ready)
        assert (first.sent, first.retried) == (0, 2) and len(hook.requests) == 2
        hook.status = 200
        with connect(ready.database_dsn) as conn:
            conn.execute("UPDATE alert_outbox SET not_before = now() - interval '1 second'")  # backoff over
            conn.commit()
        second_from, second_to, second = _attempt(ready)
    assert second.sent == 2 and len(hook.requests) == 4

    by_path: dict[str, list[dict[str, Any]]] = {}
    for call in hook.requests:
        by_path.setdefault(call["path"], []).append(call)
    assert sorted(by_path) == sorted(secrets)
    for path, calls in by_path.items():
        secret = secrets[path]
        assert len(calls) == 2
        ids = set()
        for call, (earliest, latest) in zip(
            calls, [(first_from, first_to), (second_from, second_to)], strict=True
        ):
            headers, body = call["headers"], call["body"]
            legacy = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Shrinkwatch-Signature"] == legacy
            assert headers["webhook-id"] == headers["Idempotency-Key"] == json.loads(body)["id"]
            ids.add(headers["webhook-id"])
            sent_at = int(headers["webhook-timestamp"])
            assert earliest <= sent_at <= latest  # the time of this attempt
            verify(secret, headers, body, now=sent_at)
            # The package checks the time against its own clock, with a 5-minute window: the
            # message was signed moments ago, in this test.
            assert Webhook(for_the_package(secret)).verify(body, headers) == json.loads(body)
        assert len(ids) == 1  # the retry has the first attempt's id: the receiver drops a repeat

    call = by_path["/plain"][-1]
    headers, body, sent_at = call["headers"], call["body"], int(call["headers"]["webhook-timestamp"])
    tampered = body.replace(b'"reason":"new"', b'"reason":"old"')
    assert tampered != body
    refusals = {
        "tampered body": lambda: verify(PLAIN, headers, tampered, now=sent_at),
        "wrong secret": lambda: verify("not the secret", headers, body, now=sent_at),
        "10 minutes old": lambda: verify(PLAIN, headers, body, now=sent_at + 600),
        "10 minutes ahead": lambda: verify(PLAIN, headers, body, now=sent_at - 600),
        "no signature": lambda: verify(
            PLAIN, {k: v for k, v in headers.items() if k != "webhook-signature"}, body, now=sent_at
        ),
    }
    said = {}
    for what, check in refusals.items():
        with pytest.raises(SignatureError) as raised:
            check()
        said[what] = str(raised.value)
    no_match = "no webhook-signature matches this body, id and timestamp with this secret"
    assert said == {
        "tampered body": no_match,
        "wrong secret": no_match,
        "10 minutes old": "webhook-timestamp is 600 s old, older than the replay window of 300 s",
        "10 minutes ahead": (
            "webhook-timestamp is 600 s ahead of this clock, further than the replay window of 300 s"
        ),
        "no signature": "missing header: webhook-signature",
    }

    package = Webhook(for_the_package(PLAIN))
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        package.verify(tampered, headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(for_the_package("not the secret")).verify(body, headers)
    # The same message as if it had been sent 10 minutes ago (signed then, correctly): the
    # package, on its own clock, refuses it as a replay.
    replayed = {**headers, **standard_headers(PLAIN, headers["webhook-id"], sent_at - 600, body)}
    verify(PLAIN, replayed, body, now=sent_at - 600)  # genuine in its time
    with pytest.raises(WebhookVerificationError, match="Message timestamp too old"):
        package.verify(body, replayed)
