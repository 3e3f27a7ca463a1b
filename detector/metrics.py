"""The camera readers' Prometheus metrics (docs/OPERATIONS.md, "Metrics"), served by
`shrinkwatch detect` (shrinkwatch.metrics, role `detect`).

Per camera (labels `store`, `camera`):
- `shrinkwatch_camera_frames_analysed_total`: frames the reader took and published (the model
  ran on them, or the motion gate kept the last frame's objects): its rate is the analysed fps,
  and it equals the camera's messages on sw.detections unless some were dropped (below);
- `shrinkwatch_camera_frames_dropped_total{reason}`: `publisher_queue`, analysed frames the
  publisher's bounded buffer dropped, oldest first, while Kafka was away (detector.publisher);
  `behind`, ticks of the camera's fps a live camera's reader missed because analysis was
  behind (the newest frame was taken late, those in between were never looked at);
- `shrinkwatch_camera_inference_seconds`: the model's time per analysed frame (frames the motion
  gate skipped are not in it);
- `shrinkwatch_camera_publish_lag_seconds`: from the frame's capture (a live camera's arrival;
  a file's frame when it was read) to Kafka acknowledging its message;
- `shrinkwatch_camera_up`: 1 while the camera is connected and reading (health online or
  degraded), 0 while offline, before its first report, and once it has ended.

Cheap on the hot path: a camera's label children are bound once (`CameraMetrics.of`), so a
frame costs a few locked additions, never a label lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

LABELS = ("store", "camera")

FRAMES_ANALYSED = Counter(
    "shrinkwatch_camera_frames_analysed",
    "Frames a camera reader took and published to sw.detections (rate: analysed fps).",
    LABELS,
)
FRAMES_DROPPED = Counter(
    "shrinkwatch_camera_frames_dropped",
    "Frames lost: publisher_queue (the publisher's drop-oldest while Kafka was away), behind "
    "(ticks of the camera's fps a live camera's reader missed while analysis was behind).",
    (*LABELS, "reason"),
)
INFERENCE_SECONDS = Histogram(
    "shrinkwatch_camera_inference_seconds",
    "The model's time per analysed frame.",
    LABELS,
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5),
)
PUBLISH_LAG_SECONDS = Histogram(
    "shrinkwatch_camera_publish_lag_seconds",
    "From a frame's capture to Kafka acknowledging its message.",
    LABELS,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
CAMERA_UP = Gauge("shrinkwatch_camera_up", "1 while the camera is connected and reading, else 0.", LABELS)

# The dropped reasons (docs/OPERATIONS.md): the label values, fixed.
PUBLISHER_QUEUE = "publisher_queue"
BEHIND = "behind"


@dataclass(frozen=True)
class CameraMetrics:
    """One camera's metrics, their labels bound."""

    analysed: Counter
    dropped_queue: Counter
    dropped_behind: Counter
    inference: Histogram
    publish_lag: Histogram
    up: Gauge

    @classmethod
    def of(cls, store_id: str, camera_id: str) -> CameraMetrics:
        """The camera's metrics, every series made now (at 0) so a scrape lists the camera
        before its first frame."""
        labels = {"store": store_id, "camera": camera_id}
        metrics = cls(
            analysed=FRAMES_ANALYSED.labels(**labels),
            dropped_queue=FRAMES_DROPPED.labels(**labels, reason=PUBLISHER_QUEUE),
            dropped_behind=FRAMES_DROPPED.labels(**labels, reason=BEHIND),
            inference=INFERENCE_SECONDS.labels(**labels),
            publish_lag=PUBLISH_LAG_SECONDS.labels(**labels),
            up=CAMERA_UP.labels(**labels),
        )
        metrics.up.set(0)
        return metrics
