"""The other channels: SMS through Twilio's client library, signed webhooks, and whatever
the Apprise library speaks (Slack, Microsoft Teams, Discord, Telegram, ...).

SMS: a short text with the link, sent with the `twilio` client (`twilio_account_sid`,
`twilio_auth_token`, `twilio_from`); `twilio_api_base` points the same client at another
server speaking Twilio's API (the tests' local one). Twilio's 4xx answers (a bad number, an
unsubscribed recipient) are permanent; anything else is retried, as is a token whose
`${VAR}` is not set.

Webhook: `POST` of the JSON body below to the recipient's URL, signed twice with the
recipient's secret: `X-Shrinkwatch-Signature: sha256=<hex HMAC-SHA256 of the body, the
secret's UTF-8 bytes as the key>` (as ever: receivers rely on it), and in the Standard
Webhooks form (`webhook-id`, `webhook-timestamp`, `webhook-signature`: alerts/webhook_signing,
whose `verify` a receiver can use), so that an off-the-shelf verifier checks it too, with a
replay window. With them `X-Shrinkwatch-Event: alert.<reason>` and `Idempotency-Key:
alert-<outbox id>`, which is also the `webhook-id`: the same on a retry, so a receiver can
drop a repeat; the `webhook-timestamp` is the time of each attempt. A 2xx answer is success;
4xx other than 408/429 is permanent; the rest is retried, as is a `whsec_` secret that is not
base64 (its `${VAR}` can be put right meanwhile).

    {"schema": "shrinkwatch.alert/1", "id": "alert-42", "reason": "new", "sent_at": "...",
     "recipient": "ops-feed", "incident": {... the incident as alerts/outbox.incident_payload
     says ...}, "link": "https://.../review?id=..."}

Apprise: the recipient's one Apprise URL (`slack://...`, `msteams://...`, `json://...`), sent
the SMS's short text under a title. One target per call: Apprise answers one yes/no for all
the targets it was given, so with two a failure of one would have the outbox resend to the
other. A URL Apprise cannot use is permanent; a failed notification is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import requests

from alerts.errors import SendError
from alerts.webhook_signing import standard_headers
from shrinkwatch.placeholders import UnsetVariable
from shrinkwatch.recipients import quiet_apprise
from shrinkwatch.settings import Settings
from shrinkwatch.wording import alert_headline, incident_phrase, review_link, text_headline, utc_minutes

SIGNATURE_HEADER = "X-Shrinkwatch-Signature"


def sms_text(settings: Settings, reason: str, payload: dict[str, Any]) -> str:
    """At most about 160 characters: what, where, and the link."""
    if reason == "test":
        return "Shrinkwatch: test message. Alerts for your stores will reach this number."
    if reason == "summary":
        count = len(payload.get("entries") or [])
        return f"Shrinkwatch: {count} more incidents this hour; see your email or the dashboard."
    if reason == "camera_problem":
        return (
            f"Shrinkwatch: camera {payload['camera_name']} at {payload['store_name']} is {payload['status']}."
        )
    if reason == "digest":
        since = utc_minutes(payload["start"])
        return (
            f"Shrinkwatch digest: {payload['total']} incidents since {since} UTC; "
            "the details are in your email and on the dashboard."
        )
    if reason == "camera_recovered":
        return f"Shrinkwatch: camera {payload['camera_name']} at {payload['store_name']} is back online."
    prefix = text_headline(reason, payload["risk_level"])
    what = incident_phrase(payload["incident_type"], payload["store_name"], payload["camera_id"])
    return f"Shrinkwatch {prefix}: {what} {review_link(settings, payload['incident_id'])}"


def missing_sms_settings(settings: Settings) -> list[str]:
    """The Twilio settings SMS needs that are not set."""
    return [
        name
        for name in ("twilio_account_sid", "twilio_auth_token", "twilio_from")
        if not getattr(settings, name)
    ]


def twilio_token(settings: Settings) -> str:
    """The Twilio auth token as it is used now (its `${VAR}` read); SendError, to be retried,
    naming the variable when it is not set."""
    try:
        return settings.secret("twilio_auth_token") or ""
    except UnsetVariable as exc:
        raise SendError(str(exc), permanent=False) from None


def send_sms(settings: Settings, to: str, body: str) -> str:
    """Send through Twilio's client; return the message SID."""
    from twilio.base.exceptions import TwilioRestException
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    if missing_sms_settings(settings):
        msg = "SMS is not set up (twilio_account_sid, twilio_auth_token, twilio_from)"
        raise SendError(msg, permanent=True)
    base = settings.twilio_api_base

    class _Http(TwilioHttpClient):  # the same requests, to `twilio_api_base` when it is set
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base:
                url = url.replace("https://api.twilio.com", base.rstrip("/"), 1)
            return super().request(method, url, *args, **kwargs)

    client = Client(settings.twilio_account_sid, twilio_token(settings), http_client=_Http(timeout=20))
    try:
        message = client.messages.create(to=to, from_=settings.twilio_from, body=body)
    except TwilioRestException as exc:
        msg = f"Twilio {exc.status} (code {exc.code}): {exc.msg}"
        raise SendError(msg, permanent=400 <= exc.status < 500 and exc.status != 429) from None
    except requests.RequestException as exc:
        msg = f"Twilio unreachable: {exc}"
        raise SendError(msg, permanent=False) from None
    return str(message.sid)


def webhook_body(
    outbox_id: int, recipient_id: str, reason: str, payload: dict[str, Any], link: str | None
) -> bytes:
    """The JSON a webhook receives (see the module docstring)."""
    body = {
        "schema": "shrinkwatch.alert/1",
        "id": f"alert-{outbox_id}",
        "reason": reason,
        "sent_at": datetime.now(UTC).isoformat(),
        "recipient": recipient_id,
        "incident" if reason in ("new", "escalated") else "detail": payload,
        "link": link,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """The X-Shrinkwatch-Signature header's value for this body (the whole secret's UTF-8 bytes
    as the key, whatever its form)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def send_webhook(url: str, secret: str | None, outbox_id: int, reason: str, body: bytes) -> None:
    """POST the body, signed; SendError as the module docstring says."""
    if not secret:
        msg = "the recipient's webhook has no secret to sign with"
        raise SendError(msg, permanent=True)
    msg_id = f"alert-{outbox_id}"
    try:
        standard = standard_headers(secret, msg_id, int(time.time()), body)
    except ValueError as exc:
        raise SendError(str(exc), permanent=False) from None
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, body),
        "X-Shrinkwatch-Event": f"alert.{reason}",
        "Idempotency-Key": msg_id,
        **standard,
    }
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as exc:
        msg = f"webhook {url}: {exc}"
        raise SendError(msg, permanent=False) from None
    if answer.status_code >= 300:
        msg = f"webhook {url} answered {answer.status_code}"
        raise SendError(
            msg, permanent=400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
        )


def _scrub(text: str, url: str) -> str:
    """Apprise's words without the URL or any piece of it (its tokens)."""
    scheme, _, rest = url.partition("://")
    for piece in sorted({rest, *re.split(r"[/:@?&=#,]+", rest)}, key=len, reverse=True):
        if len(piece) >= 4:
            text = text.replace(piece, "***")
    return " ".join(text.split())[:500]


def send_apprise(url: str, title: str, body: str) -> None:
    """Notify the one target this Apprise URL names; SendError (with what Apprise said, the
    URL and its pieces left out: they hold the service's token) when it fails."""
    import apprise

    quiet_apprise()
    scheme = url.split("://", 1)[0]
    notifier = apprise.Apprise()
    with apprise.LogCapture(level=apprise.logging.WARNING, fmt="%(message)s") as said:
        added = notifier.add(url)
        sent = added and bool(notifier.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT))
    reason = _scrub(said.getvalue(), url)
    if not added:
        msg = f"Apprise cannot use this {scheme}:// URL{': ' + reason if reason else ''}"
        raise SendError(msg, permanent=True)
    if not sent:
        msg = f"Apprise {scheme}://: {reason or 'the notification failed'}"
        raise SendError(msg, permanent=False)


def apprise_title(reason: str, payload: dict[str, Any]) -> str:
    """A title for an Apprise notification."""
    if reason in ("new", "escalated"):
        what = incident_phrase(payload["incident_type"], payload["store_name"])
        return f"{alert_headline(reason, payload['risk_level'])}: {what}"
    return {
        "summary": "More incidents this hour",
        "camera_problem": "A camera needs attention",
        "camera_recovered": "A camera is back",
        "digest": "Digest",
        "test": "Test",
    }.get(reason, "Shrinkwatch")
