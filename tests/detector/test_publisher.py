"""The publish buffer's bound: past it, the oldest messages are dropped and counted."""

from __future__ import annotations

import time

from detector.publisher import Publisher
from shrinkwatch.settings import load_settings
from tests.factories import frame


def test_drops_oldest_past_the_bound_without_blocking() -> None:
    settings = load_settings(None, kafka_bootstrap="127.0.0.1:1")  # nothing listens there
    publisher = Publisher(settings, buffer_messages=5, inflight=1)
    try:
        time.sleep(0.3)  # the pump hands the first message to the producer
        started = time.monotonic()
        for i in range(20):
            publisher.publish(frame("cam-1", i, i * 0.2, []))
            time.sleep(0.01)
        assert time.monotonic() - started < 2.0  # never blocks on the broker
        assert publisher.dropped == 14
        assert publisher.backlog == 6
        assert publisher.delivered == 0
    finally:
        assert publisher.close(timeout_s=1) == 6
