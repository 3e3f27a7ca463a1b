"""Publishing to Kafka from the camera readers: never blocks, never loses order.

Messages go into a bounded local buffer first; a pump thread hands them to an idempotent,
compressed producer as fast as the broker takes them. While Kafka is unreachable the
readers keep analysing, the buffer fills, and past its bound the *oldest* messages are
dropped and counted. When the broker returns, the backlog drains in order.

No message is larger than `max_message_bytes` (1,000,000: the producer's message.max.bytes,
under the broker's default of 1 MiB) less `OVERHEAD_BYTES` for the key and Kafka's framing.
A frame whose detections would not fit is capped: its most confident objects that fit are
published, and the frame is counted for its camera (`capped`; the camera's health says so,
and the log once per camera). Any other message over the bound, or one the producer refuses,
is dropped and counted (`too_large`, `failed`); one the broker refuses (a topic with a smaller
max.message.bytes) comes back as a failed delivery, counted. None of them stops the pump.

A frame published with its camera's metrics (detector.metrics) counts for that camera in
`shrinkwatch_camera_frames_dropped_total{reason="publisher_queue"}` when the buffer drops it,
and its publish lag (capture to the broker's acknowledgement) is observed when it is delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from detector.metrics import CameraMetrics
from shrinkwatch.contracts import MAX_MESSAGE_BYTES, CameraHealth, Detection, encode
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)

OVERHEAD_BYTES = 1024  # the key and the record's framing, within message.max.bytes
# A buffered message: topic, key, value, and for a frame its camera's metrics and capture time
# (unix seconds), else None.
Queued = tuple[str, bytes, bytes, CameraMetrics | None, float | None]


def fit_objects(detection: Detection, limit: int) -> tuple[Detection, bytes]:
    """The detection with as many of its most confident objects as fit in `limit` bytes
    (in their order), and its encoding."""
    by_conf = sorted(range(len(detection.objects)), key=lambda i: -detection.objects[i].conf)

    def first(count: int) -> Detection:
        keep = set(by_conf[:count])
        return detection.model_copy(
            update={"objects": [o for i, o in enumerate(detection.objects) if i in keep]}
        )

    low, high = 0, len(by_conf)  # the answer lies in [low, high]; with none, it fits
    while low < high:
        middle = (low + high + 1) // 2
        if len(encode(first(middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    result = first(low)
    return result, encode(result)


class Publisher:
    """One producer shared by every camera thread of the process."""

    def __init__(
        self,
        settings: Settings,
        buffer_messages: int = 5000,
        inflight: int = 1000,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.detections_topic = settings.topic("detections")
        self.health_topic = settings.topic("camera-health")
        self._producer = Producer(
            {
                **settings.kafka_config(),
                "enable.idempotence": True,
                "compression.type": "lz4",
                # A store's cameras send tens of messages a second: waiting longer to batch
                # them would only add latency to every frame.
                "linger.ms": 5,
                "queue.buffering.max.messages": inflight,
                "message.max.bytes": max_message_bytes,
                "message.timeout.ms": 0,  # never expire: the drop policy is ours (oldest first)
                "reconnect.backoff.max.ms": 2000,
                "error_cb": self._on_error,
                "log_level": 0,
            }
        )
        self._buffer: deque[Queued] = deque()
        self._bound = buffer_messages
        self.limit = max_message_bytes - OVERHEAD_BYTES
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set when a message is queued
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.too_large = 0
        self.capped: dict[str, int] = {}  # camera id -> frames published with fewer objects
        self.last_error: str | None = None
        self.broker_down = False
        self._pump = threading.Thread(target=self._run, name="kafka-pump", daemon=True)
        self._pump.start()

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            if not self.broker_down:
                log.warning("Kafka unreachable (%s); buffering locally", err.str())
            self.broker_down = True
        self.last_error = err.str()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
            if self.broker_down:
                log.warning("Kafka reachable again; sending the backlog")
            self.broker_down = False
        else:
            self._refused(msg.topic() or "?", err)

    def _on_frame_delivery(
        self, metrics: CameraMetrics, captured_at: float, err: KafkaError | None, msg: Message
    ) -> None:
        if err is None:
            metrics.publish_lag.observe(max(0.0, time.time() - captured_at))
        self._on_delivery(err, msg)

    def _refused(self, topic: str, err: KafkaError | Exception) -> None:
        self.failed += 1
        self.last_error = err.str() if isinstance(err, KafkaError) else str(err)
        log.warning("Kafka refused a message to %s (%s): dropped", topic, self.last_error)

    def _enqueue(
        self,
        topic: str,
        key: str,
        value: bytes,
        metrics: CameraMetrics | None = None,
        captured_at: float | None = None,
    ) -> None:
        if len(value) > self.limit:
            self.too_large += 1
            log.warning(
                "a %d-byte message to %s is over the %d-byte bound: dropped", len(value), topic, self.limit
            )
            return
        with self._lock:
            if len(self._buffer) >= self._bound:
                oldest = self._buffer.popleft()[3]
                self.dropped += 1
                if oldest is not None:
                    oldest.dropped_queue.inc()
            self._buffer.append((topic, key.encode(), value, metrics, captured_at))
        self._wake.set()

    def publish(
        self, detection: Detection, metrics: CameraMetrics | None = None, captured_at: float | None = None
    ) -> None:
        """Queue one analysed frame (key = camera_id); returns at once. Capped to fit (above).
        With its camera's `metrics` and its capture time (`captured_at`, unix seconds; default
        now), a drop and the publish lag are recorded for the camera."""
        value = encode(detection)
        if len(value) > self.limit:
            fitted, value = fit_objects(detection, self.limit)
            camera = detection.camera_id
            if camera not in self.capped:
                log.warning(
                    "camera %s: a frame's %d objects do not fit in a Kafka message; publishing the %d "
                    "most confident (said once; the camera's health counts them)",
                    camera,
                    len(detection.objects),
                    len(fitted.objects),
                )
            self.capped[camera] = self.capped.get(camera, 0) + 1
        if metrics is not None and captured_at is None:
            captured_at = time.time()
        self._enqueue(self.detections_topic, detection.camera_id, value, metrics, captured_at)

    def publish_health(self, health: CameraHealth) -> None:
        """Queue one camera-health event (key = camera_id)."""
        self._enqueue(self.health_topic, health.camera_id, encode(health))

    def _move(self) -> None:
        while True:
            with self._lock:
                if not self._buffer:
                    return
                topic, key, value, metrics, captured_at = self._buffer[0]
                delivered = (
                    self._on_delivery
                    if metrics is None or captured_at is None
                    else partial(self._on_frame_delivery, metrics, captured_at)
                )
                try:
                    self._producer.produce(topic, value=value, key=key, on_delivery=delivered)
                except BufferError:
                    return  # the producer is full (the broker is slow or away): keep it here
                except KafkaException as exc:  # refused for good (too large, ...): never retried
                    self._refused(topic, exc.args[0] if exc.args else exc)
                self._buffer.popleft()

    def _run(self) -> None:
        # A message is handed to the producer as soon as it is queued (`_wake`), not at the
        # pump's next turn: waiting in poll(0.05) held each frame up to 50 ms before Kafka.
        while not self._stop.is_set():
            self._wake.clear()
            self._move()
            self._producer.poll(0)
            self._wake.wait(0.05)

    @property
    def backlog(self) -> int:
        """Messages not yet acknowledged by the broker (buffered here or in the producer)."""
        return len(self._buffer) + len(self._producer)

    def close(self, timeout_s: float = 30.0) -> int:
        """Send what is buffered (up to timeout_s); return how many messages were left unsent."""
        deadline = time.monotonic() + timeout_s
        while self._buffer and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._pump.join(timeout=5)
        self._move()
        remaining: int = self._producer.flush(max(0.0, deadline - time.monotonic()))
        left = remaining + len(self._buffer)
        if left:
            log.warning("%d messages not delivered to Kafka before shutdown", left)
        return left
