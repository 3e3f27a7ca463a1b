"""The fault suite's driver: synthetic cameras publishing live detections, and knowing what it sent.

Each camera sends frames at `fps` in real time (timestamps are the wall clock, as a camera
reader's are), with shoppers walking between the zones of the fault site (tests.faults.site),
stopping a while at shelves, some lingering at the high-value shelf long enough to open
loitering incidents, leaving through the checkout or straight out. Camera-health reports go
out every few seconds, as a reader's do.

The producer is idempotent and keeps a message for up to 10 minutes while the broker is
away (like the detector's buffer, bounded by time rather than dropped), so a Kafka outage
delays frames and loses none: the verifier checks that every frame the driver counted as
delivered is in the topic exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message, Producer

from shrinkwatch.contracts import CameraHealth, DetectedObject, Detection, encode
from shrinkwatch.settings import Settings

# Zone centres of tests.faults.site (normalised feet positions).
ENTRANCE, SHELF, HIGH_VALUE, CHECKOUT, EXIT = (0.05, 0.75), (0.3, 0.6), (0.3, 0.85), (0.6, 0.75), (0.93, 0.75)


@dataclass
class Walker:
    """One shopper: a track id, where they stand, and the plan ahead: (target, dwell seconds)."""

    track_id: int
    x: float
    y: float
    plan: list[tuple[tuple[float, float], float]]
    dwell_left: float = 0.0


def _plan(rng: random.Random) -> list[tuple[tuple[float, float], float]]:
    stops: list[tuple[tuple[float, float], float]] = [(SHELF, rng.uniform(0, 6))]
    if rng.random() < 0.6:
        # Long enough, often enough, to open loitering incidents (the site's threshold: 8 s).
        stops.append((HIGH_VALUE, rng.choice((2.0, 5.0, 12.0, 20.0))))
    if rng.random() < 0.7:
        stops.append((CHECKOUT, rng.uniform(2, 6)))
    stops.append((EXIT, 0.0))
    return stops


@dataclass
class Camera:
    """A synthetic camera's walkers and counters."""

    camera_id: str
    rng: random.Random
    walkers: list[Walker] = field(default_factory=list)
    next_track: int = 1
    frame_id: int = 0

    def frame(self, store_id: str, fps: float, people: int) -> Detection:
        while len(self.walkers) < people:
            x, y = ENTRANCE
            self.walkers.append(Walker(self.next_track, x, y, _plan(self.rng)))
            self.next_track += 1
        step = 0.25 / fps  # a quarter of the view's width per second
        objects = []
        for w in self.walkers:
            (tx, ty), dwell = w.plan[0]
            dx, dy = tx - w.x, ty - w.y
            if abs(dx) <= step and abs(dy) <= step:
                w.x, w.y = tx, ty
                w.dwell_left = dwell if w.dwell_left <= 0 and dwell > 0 else w.dwell_left - 1 / fps
                if w.dwell_left <= 0:
                    w.plan.pop(0)
                    w.dwell_left = 0.0
            else:
                w.x += max(-step, min(step, dx))
                w.y += max(-step, min(step, dy))
            jitter = self.rng.uniform(-0.002, 0.002)
            objects.append(
                DetectedObject(
                    track_id=w.track_id,
                    class_name="person",
                    class_id=0,
                    conf=0.85,
                    box=(
                        max(0.0, w.x - 0.03 + jitter),
                        max(0.0, w.y - 0.2),
                        min(1.0, w.x + 0.03 + jitter),
                        w.y,
                    ),
                )
            )
        self.walkers = [w for w in self.walkers if w.plan]
        self.frame_id += 1
        return Detection(
            camera_id=self.camera_id,
            store_id=store_id,
            frame_id=self.frame_id,
            ts=datetime.now(UTC),
            frame_w=768,
            frame_h=576,
            objects=objects,
        )


class Driver:
    """Publishes the cameras' frames in real time on a thread until `stop()`."""

    def __init__(
        self,
        settings: Settings,
        cameras: list[str],
        store_id: str,
        *,
        fps: float = 5.0,
        people: int = 3,
        seed: int = 19,
    ) -> None:
        self.settings, self.store_id, self.fps, self.people = settings, store_id, fps, people
        rng = random.Random(seed)
        self.cameras = [Camera(c, random.Random(rng.random())) for c in cameras]
        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka_servers,
                "enable.idempotence": True,
                "linger.ms": 20,
                "message.timeout.ms": 600_000,
                "reconnect.backoff.max.ms": 1000,
                "log_level": 0,
            }
        )
        self.sent = 0  # frames
        self.delivered = 0  # frames the broker acknowledged
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-driver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _delivery(self, error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            self.failed.append(str(error))
        elif msg.topic() == self.settings.topic("detections"):
            self.delivered += 1

    def _run(self) -> None:
        topic, health = self.settings.topic("detections"), self.settings.topic("camera-health")
        period = 1.0 / self.fps
        next_tick = time.monotonic()
        next_health = 0.0
        while not self._stop.is_set():
            for camera in self.cameras:
                frame = camera.frame(self.store_id, self.fps, self.people)
                self.producer.produce(
                    topic, key=camera.camera_id.encode(), value=encode(frame), on_delivery=self._delivery
                )
                self.sent += 1
            if time.monotonic() >= next_health:
                now = datetime.now(UTC)
                for camera in self.cameras:
                    report = CameraHealth(
                        camera_id=camera.camera_id,
                        store_id=self.store_id,
                        ts=now,
                        status="online",
                        fps_in=self.fps,
                        fps_analysed=self.fps,
                        last_frame_ts=now,
                    )
                    self.producer.produce(
                        health,
                        key=camera.camera_id.encode(),
                        value=encode(report),
                        on_delivery=self._delivery,
                    )
                next_health = time.monotonic() + 5.0
            self.producer.poll(0)
            next_tick += period
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def stop(self, flush_s: float = 660.0) -> None:
        """Stop sending; wait until every frame is delivered (or has failed)."""
        self._stop.set()
        self._thread.join()
        remaining = self.producer.flush(flush_s)
        if remaining:
            self.failed.append(f"{remaining} message(s) still undelivered after {flush_s:g} s")
