"""Webhook signatures in the Standard Webhooks form (https://www.standardwebhooks.com, spec
1.0.0, symmetric `v1`): how a webhook is signed, and how a receiver checks one.

Every webhook carries three headers besides the body:

- `webhook-id`: the message's id, the same on every retry of it (the outbox's
  `alert-<id>`, also sent as `Idempotency-Key`): a receiver drops one it has seen;
- `webhook-timestamp`: when this attempt was made, whole seconds since the Unix epoch
  (a retry has a new one);
- `webhook-signature`: `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the
  body as the exact bytes sent. The header is a space-separated list: a receiver accepts
  the message when any `v1` entry matches (entries of other versions are skipped).

The key comes from the recipient's `webhook_secret`: a secret written `whsec_<base64>` (the
spec's form) is the bytes that base64 stands for; any other secret is its UTF-8 bytes. So a
receiver using the `standardwebhooks` package with a plain secret passes it
`"whsec_" + base64(secret)` (or the secret's bytes), and one written `whsec_...` as it is.

`verify` is what a receiver runs: it raises SignatureError, saying what is wrong, for a
missing header, a timestamp that is not whole seconds, a signature that does not match, or a
timestamp outside the replay window (older, or further ahead, than `tolerance_s`, 5 minutes
by default). The signature is checked before the window, so "too old" is said only of a
message we did sign: a replay, or one held up on the way.

This module uses the standard library only: a receiver may copy it as it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"
TOLERANCE_S = 300
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_SECONDS = re.compile(r"[0-9]{1,12}")


class SignatureError(ValueError):
    """A webhook that fails verification; the message says why."""


def signing_key(secret: str) -> bytes:
    """The HMAC key for a webhook secret: `whsec_<base64>` decoded, any other secret's UTF-8
    bytes. ValueError for an empty secret, or a `whsec_` one whose rest is not base64."""
    if not secret:
        msg = "the webhook secret is empty"
        raise ValueError(msg)
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret.removeprefix(SECRET_PREFIX)
    if not encoded:
        msg = f"the webhook secret is {SECRET_PREFIX} with no key after it"
        raise ValueError(msg)
    not_base64 = f"the webhook secret starts with {SECRET_PREFIX} but the rest is not base64"
    if not _BASE64.fullmatch(encoded):
        raise ValueError(not_base64)
    try:  # padding may be left out, as the spec's libraries allow
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError(not_base64) from None


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `webhook-signature` entry: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def standard_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for this body, sent at `timestamp` (Unix seconds).
    ValueError for an id with a full stop in it (the spec forbids one: it would let the id and
    the timestamp trade characters) or a secret `signing_key` refuses."""
    if not msg_id or "." in msg_id:
        msg = f"a webhook id must be non-empty and have no full stop: {msg_id!r}"
        raise ValueError(msg)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(signing_key(secret), msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a received webhook: its headers (any letter case) and the exact bytes of its body,
    with the recipient's secret, at `now` (Unix seconds; default the clock). Returns nothing
    when the message is genuine and within `tolerance_s` of now either way; SignatureError
    (why, in words) when it is not; ValueError for a secret `signing_key` refuses."""
    found = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not found.get(name)]
    if missing:
        msg = f"missing header{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
        raise SignatureError(msg)
    msg_id, stamp = found[ID_HEADER], found[TIMESTAMP_HEADER].strip()
    if not _SECONDS.fullmatch(stamp):
        msg = f"{TIMESTAMP_HEADER} is not whole seconds since the epoch: {stamp[:40]!r}"
        raise SignatureError(msg)
    timestamp = int(stamp)
    expected = sign(signing_key(secret), msg_id, timestamp, body).encode("ascii")
    offered = [entry.encode("utf-8", "replace") for entry in found[SIGNATURE_HEADER].split()]
    # Each entry compared in constant time, and all of them: the time taken tells nothing.
    if not any([hmac.compare_digest(expected, entry) for entry in offered]):
        msg = f"no {SIGNATURE_HEADER} matches this body, id and timestamp with this secret"
        raise SignatureError(msg)
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance_s:
        msg = f"{TIMESTAMP_HEADER} is {math.ceil(age)} s old, older than the replay window of {tolerance_s} s"
        raise SignatureError(msg)
    if -age > tolerance_s:
        msg = (
            f"{TIMESTAMP_HEADER} is {math.ceil(-age)} s ahead of this clock, "
            f"further than the replay window of {tolerance_s} s"
        )
        raise SignatureError(msg)
