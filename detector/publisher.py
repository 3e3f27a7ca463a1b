"""Publishing detections to Kafka: idempotent, compressed, with delivery accounting."""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaError, Message, Producer

from shrinkwatch.contracts import Detection, encode
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)


class DetectionPublisher:
    """One producer shared by every camera thread of the process."""

    def __init__(self, settings: Settings, buffer_messages: int = 20_000) -> None:
        self.topic = settings.topic("detections")
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_servers,
                "enable.idempotence": True,
                "compression.type": "lz4",
                "linger.ms": 20,
                "queue.buffering.max.messages": buffer_messages,
                "log_level": 3,
            }
        )
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        with self._lock:
            if err is None:
                self.delivered += 1
            else:
                self.failed += 1
                self.last_error = str(err)

    def publish(self, detection: Detection) -> None:
        """Queue one frame's message; never blocks for long (drops and counts when full)."""
        value = encode(detection)
        try:
            self._producer.produce(
                self.topic, value=value, key=detection.camera_id.encode(), on_delivery=self._on_delivery
            )
        except BufferError:
            self._producer.poll(0.1)
            try:
                self._producer.produce(
                    self.topic, value=value, key=detection.camera_id.encode(), on_delivery=self._on_delivery
                )
            except BufferError:
                with self._lock:
                    self.dropped += 1
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for queued messages; return how many are still undelivered."""
        remaining: int = self._producer.flush(timeout_s)
        if remaining:
            log.warning("%d detection messages not delivered after %.0f s", remaining, timeout_s)
        return remaining
