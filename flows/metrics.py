"""The dataflows' Prometheus metrics (docs/OPERATIONS.md, "Metrics"), served by each
`shrinkwatch flows run NAME` process (shrinkwatch.metrics, the flow's role; with
`--processes M`, each process on its own port, for the partitions its workers read).

- `shrinkwatch_flow_messages_total{flow,topic}`: messages the flow consumed (parsed, or
  dead-lettered): its throughput;
- `shrinkwatch_flow_dead_letters_total{flow}`: messages that broke their contract or came with
  a Kafka error (the occupancy flow counts them too, and leaves sw.dlq to the incidents flow);
- `shrinkwatch_flow_consumer_lag_messages{flow,topic,partition}`: the partition's high
  watermark minus the next offset the flow will read (a position before the oldest message
  kept counts from that message), asked by a background thread (`LagWatch`) every
  LAG_EVERY_S on a consumer of its own; the next offset is the one the flow's source keeps for
  its recovery snapshots (flows.kafka_io), so it is exact, not a snapshot behind. While Kafka
  does not answer, the last figure stays.

All three are counted where the topic is read (flows.kafka_io.TopicSource), per batch, under
the flow's name (`FLOW.name`, set by flows.run before the flow starts).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Counter, Gauge

from shrinkwatch.kafka_admin import client_config

log = logging.getLogger(__name__)

LAG_EVERY_S = 5.0

MESSAGES = Counter(
    "shrinkwatch_flow_messages",
    "Messages a dataflow consumed (parsed or dead-lettered), by topic.",
    ("flow", "topic"),
)
DEAD_LETTERS = Counter(
    "shrinkwatch_flow_dead_letters",
    "Messages a dataflow could not use: broke their contract, or came with a Kafka error.",
    ("flow",),
)
CONSUMER_LAG = Gauge(
    "shrinkwatch_flow_consumer_lag_messages",
    "Messages of a partition the dataflow has not read yet: high watermark minus its next offset.",
    ("flow", "topic", "partition"),
)


@dataclass
class FlowName:
    """The name this process's dataflow is counted under."""

    name: str = "flow"


FLOW = FlowName()

Position = Callable[[], int | None]  # the next offset the flow will read (negative or None: none yet)


def lag(low: int, high: int, position: int | None) -> int:
    """Messages from `position` to the high watermark; a position unset or before the oldest
    message kept (`low`) counts from `low`."""
    start = position if position is not None and position >= low else low
    return max(0, high - start)


@dataclass
class LagWatch:
    """Asks Kafka for the high watermark of each partition this process reads, every
    `every_s`, and sets each one's consumer-lag gauge."""

    every_s: float = LAG_EVERY_S
    _parts: dict[tuple[str, int], Position] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, topic: str, partition: int, position: Position) -> None:
        """Follow a partition the flow reads, from `position`."""
        with self._lock:
            self._parts[(topic, partition)] = position

    def start(self, kafka: Mapping[str, Any]) -> None:
        """Start asking (a daemon thread; one consumer of its own, no group membership)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(dict(kafka),), name="flow-lag", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop asking, and forget the partitions (a flow run in-process again builds its own)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            self._parts.clear()

    def _run(self, kafka: dict[str, Any]) -> None:
        consumer = Consumer(client_config(kafka, log_level=0, **{"group.id": "shrinkwatch-flow-lag"}))
        try:
            while True:
                self.measure(consumer)
                if self._stop.wait(self.every_s):
                    return
        finally:
            consumer.close()

    def measure(self, consumer: Consumer) -> None:
        """One round: every followed partition's lag, from its high watermark now."""
        with self._lock:
            parts = list(self._parts.items())
        for (topic, partition), position in parts:
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=2.0, cached=False
                )
            except KafkaException:
                continue  # Kafka away: the last figure stays (the flow says the outage)
            gauge = CONSUMER_LAG.labels(flow=FLOW.name, topic=topic, partition=str(partition))
            gauge.set(lag(low, high, position()))


LAG = LagWatch()
