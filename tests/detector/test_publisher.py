"""The publish buffer's bound: past it, the oldest messages are dropped and counted."""

from __future__ import annotations

from detector.publisher import Publisher
from shrinkwatch.contracts import encode
from shrinkwatch.settings import load_settings
from tests.factories import frame
from tests.support import wait_for


def test_drops_oldest_past_the_bound_without_blocking() -> None:
    settings = load_settings(None, kafka_bootstrap="127.0.0.1:1")  # nothing listens there
    publisher = Publisher(settings, buffer_messages=5, inflight=1)
    try:
        # The pump hands the first message to the producer, which then holds its one message
        # in flight; nothing listens, so a publish that waited for the broker would never
        # return, and the test would hang instead of counting.
        publisher.publish(frame("cam-1", 0, 0.0, []))
        wait_for(lambda: publisher.backlog == 1 and not publisher._buffer, 60, what="the first hand-over")
        for i in range(1, 20):
            publisher.publish(frame("cam-1", i, i * 0.2, []))
        assert publisher.dropped == 14
        # The producer's length counts its events too (the broker's error, until the pump
        # serves it): the five newest here and the one in flight, once it has.
        wait_for(lambda: publisher.backlog == 6, 60, what="a backlog of 6")
        assert [m[2] for m in publisher._buffer] == [
            encode(frame("cam-1", i, i * 0.2, [])) for i in range(15, 20)
        ]
        assert publisher.delivered == 0
    finally:
        assert publisher.close(timeout_s=1) == 6
