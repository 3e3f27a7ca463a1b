"""The outage policy: said once when a dependency goes, once when it is back; backoff grows and resets."""

from __future__ import annotations

import threading

from shrinkwatch.outage import Outage


def test_says_once_per_outage_with_growing_then_reset_backoff() -> None:
    said: list[str] = []
    outage = Outage("PostgreSQL", said.append, first_wait_s=0.5, longest_wait_s=4.0)
    waits = [outage.failed(OSError("connection refused")) for _ in range(6)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert said == ["PostgreSQL is not reachable (connection refused); retrying until it is back"]
    assert outage.down
    outage.back()
    outage.back()  # already up: nothing more to say
    assert len(said) == 2
    assert said[1].startswith("PostgreSQL is back after ")
    assert not outage.down
    assert outage.failed("again") == 0.5  # a new outage starts from the shortest wait
    assert outage.outages == 2
    assert len(said) == 3


def test_the_message_is_scrubbed_and_one_line() -> None:
    said: list[str] = []
    outage = Outage("PostgreSQL", said.append)
    outage.failed('cannot connect to postgresql://shop:hunter22@db/sw:\n  "password=hunter22"')
    assert "hunter22" not in said[0]
    assert "\n" not in said[0]


def test_wait_is_cut_short_by_stop() -> None:
    stop = threading.Event()
    stop.set()
    outage = Outage("Kafka", lambda _m: None, first_wait_s=3600)
    outage.wait("down", stop)  # returns at once: the event is set
    assert outage.down
