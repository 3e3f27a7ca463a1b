"""No credential reaches a log line."""

from __future__ import annotations

import logging

import pytest

from shrinkwatch.logs import ScrubSecretsFilter, hide, scrub
from shrinkwatch.placeholders import resolve_secret


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("opening rtsp://admin:hunter2@10.0.0.5:554/stream1", "hunter2"),
        ("cannot open http://user:p%40ss@cam.local/video.mjpg", "p%40ss"),
        ("postgresql://sw:topsecret@db:5432/sw", "topsecret"),
        ("dsn host=db password=topsecret user=sw", "topsecret"),
        ("sasl.password: 'abc123'", "abc123"),
        ("token=xyz987&x=1", "xyz987"),
        (f"Authorization: Bearer swt_0123456789ab_{'f0' * 32}", "f0" * 32),
        (f"GET /v1/stores swt_0123456789ab_{'9a' * 32} 401", "9a" * 32),
        (f"GET /v1/stores?token%3Dswt_0123456789ab_{'7b' * 32}", "7b" * 32),
    ],
)
def test_scrub_removes_secrets(text: str, secret: str) -> None:
    assert secret not in scrub(text)


def test_an_api_tokens_id_stays_readable() -> None:
    assert scrub(f"token swt_0123456789ab_{'f0' * 32} refused") == "token swt_0123456789ab_*** refused"


def test_scrub_keeps_plain_urls() -> None:
    assert scrub("rtsp://10.0.0.5/stream1") == "rtsp://10.0.0.5/stream1"


def test_filter_scrubs_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.scrub")
    logger.addFilter(ScrubSecretsFilter())
    with caplog.at_level(logging.INFO, logger="test.scrub"):
        logger.info("camera %s failed", "rtsp://admin:hunter2@10.0.0.5/s")
        try:
            raise ValueError("rtsp://admin:hunter2@10.0.0.5/s")  # noqa: EM101
        except ValueError:
            logger.exception("boom")
    assert "hunter2" not in caplog.text
    assert "rtsp://***@10.0.0.5/s" in caplog.text


def test_a_secret_read_from_the_environment_never_reaches_a_later_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = resolve_secret("${HOOK}", "webhook_secret", {"HOOK": "9f8e-7d6c-hook"})
    assert value == "9f8e-7d6c-hook"
    logger = logging.getLogger("test.scrub.known")
    logger.addFilter(ScrubSecretsFilter())
    with caplog.at_level(logging.INFO, logger="test.scrub.known"):
        logger.info("the receiver answered %r", "bad signature for key 9f8e-7d6c-hook")
    assert "9f8e-7d6c-hook" not in caplog.text and "bad signature for key ***" in caplog.text
    hide("abc")  # too short to hide without blanking out ordinary words
    assert scrub("abcdef") == "abcdef"
