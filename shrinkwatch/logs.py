"""Logging set-up with a filter that keeps credentials out of every log line: credentials in
URLs, `password=...` values, API tokens (`swt_<id>_<secret>`: the secret part), and every
secret this process has read from its environment (`hide`, called by shrinkwatch.placeholders
when a `${VAR}` secret is used)."""

from __future__ import annotations

import logging
import re

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@")
_KEY_VALUE_SECRETS = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|token|secret|api_key|apikey|sasl\.password)\s*[=:]\s*)"
    r"(?P<q>['\"]?)[^\s'\"&,;]+(?P=q)",
    re.IGNORECASE,
)
# An API token (warehouse.api_tokens): its public id stays readable, its secret does not.
_API_TOKEN = re.compile(r"(?P<id>swt_[0-9a-f]{12}_)[0-9a-f]{8,}")
_HIDDEN_MIN = 4  # shorter values would blank out ordinary words
_hidden: tuple[str, ...] = ()  # longest first: a longer secret may hold a shorter one


def hide(secret: str) -> None:
    """Show this value as `***` wherever `scrub` (and so every log line) meets it from now on."""
    global _hidden  # one list for the process, read by every log record
    if len(secret) >= _HIDDEN_MIN and secret not in _hidden:
        _hidden = tuple(sorted({*_hidden, secret}, key=len, reverse=True))


def scrub(text: str) -> str:
    """Replace URL credentials (`rtsp://user:pass@`), `password=...` values, an API token's
    secret part and the secrets given to `hide` with `***`."""
    for secret in _hidden:
        text = text.replace(secret, "***")
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    text = _API_TOKEN.sub(r"\g<id>***", text)
    return _KEY_VALUE_SECRETS.sub(r"\g<key>\g<q>***\g<q>", text)


class ScrubSecretsFilter(logging.Filter):
    """Rewrites each record's final message so that no credential reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with timestamps, through the secret-scrubbing filter."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(ScrubSecretsFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("ultralytics", "urllib3", "streamlit"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
