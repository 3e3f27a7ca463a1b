"""`shrinkwatch detect`: one thread per camera feeding one shared model, publishing every frame."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from detector.model import Detector, resolve_model_path
from detector.publisher import DetectionPublisher
from detector.sources import SourceError, open_source
from detector.tracking import CameraTracker
from shrinkwatch.contracts import Detection
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.logs import scrub
from shrinkwatch.settings import Settings
from shrinkwatch.shutdown import stop_event_on_signals
from shrinkwatch.sites import Camera

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectOptions:
    """What to read and how."""

    camera_ids: list[str] | None = None
    realtime: bool = True
    loop: bool = False
    max_frames: int | None = None


@dataclass
class CameraStats:
    """Counters of one camera reader."""

    frames: int = 0
    objects: int = 0
    started: float = field(default_factory=time.monotonic)
    error: str | None = None
    done: bool = False


class CameraWorker(threading.Thread):
    """Reads one camera, runs the shared model and its own tracker, publishes each frame."""

    def __init__(
        self,
        camera: Camera,
        detector: Detector,
        publisher: DetectionPublisher,
        options: DetectOptions,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"camera-{camera.id}", daemon=True)
        self.camera, self.detector, self.publisher = camera, detector, publisher
        self.options, self.stop = options, stop
        self.stats = CameraStats()

    def run(self) -> None:
        cam = self.camera
        try:
            source = open_source(
                cam.stream_url, cam.fps, realtime=self.options.realtime, loop=self.options.loop
            )
            tracker = CameraTracker(self.detector.names)
            for frame in source.frames(self.stop):
                height, width = frame.image.shape[:2]
                boxes = self.detector.infer(frame.image)
                objects = tracker.update(boxes, width, height)
                self.publisher.publish(
                    Detection(
                        camera_id=cam.id,
                        store_id=cam.store_id,
                        frame_id=self.stats.frames,
                        ts=frame.ts,
                        frame_w=width,
                        frame_h=height,
                        objects=objects,
                    )
                )
                self.stats.frames += 1
                self.stats.objects += len(objects)
                if self.options.max_frames and self.stats.frames >= self.options.max_frames:
                    break
        except SourceError as exc:
            self.stats.error = str(exc)
            log.error("camera %s: %s", cam.id, exc)
        except Exception as exc:  # a camera must never take the others down
            self.stats.error = scrub(f"{type(exc).__name__}: {exc}")
            log.exception("camera %s failed", cam.id)
        finally:
            self.stats.done = True


def _load_cameras(settings: Settings, camera_ids: list[str] | None) -> list[Camera]:
    from warehouse.db import connect
    from warehouse.sites import load_cameras

    with connect(settings.database_dsn) as conn:
        cameras = load_cameras(conn, camera_ids)
    missing = sorted(set(camera_ids or []) - {c.id for c in cameras})
    if missing:
        msg = f"no enabled camera with id {', '.join(missing)}; apply a site file (shrinkwatch sites apply)"
        raise ShrinkwatchError(msg)
    if not cameras:
        msg = "no cameras are configured; apply a site file first (shrinkwatch sites apply FILE)"
        raise ShrinkwatchError(msg)
    return cameras


def run_detect(
    settings: Settings,
    options: DetectOptions,
    *,
    check_only: bool = False,
    progress: Callable[[str], None] = print,
    progress_every_s: float = 5.0,
) -> int:
    """Run every camera until its source ends or a signal arrives; exit code 1 if any failed."""
    cameras = _load_cameras(settings, options.camera_ids)
    if check_only:
        where = resolve_model_path(settings.model)
        progress(f"model: {where or settings.model}; cameras: {', '.join(c.id for c in cameras)}")
        Detector(settings)
        progress("ok")
        return 0
    stop = stop_event_on_signals()
    detector = Detector(settings)
    publisher = DetectionPublisher(settings)
    workers = [CameraWorker(cam, detector, publisher, options, stop) for cam in cameras]
    for worker in workers:
        worker.start()
    progress(
        f"analysing {len(workers)} camera(s) with {detector.source} at imgsz {settings.imgsz}; "
        f"publishing to {publisher.topic}"
    )
    last_report = time.monotonic()
    while any(w.is_alive() for w in workers) and not stop.is_set():
        time.sleep(0.2)
        if time.monotonic() - last_report >= progress_every_s:
            last_report = time.monotonic()
            progress(_report(workers, publisher))
    stop.set()
    for worker in workers:
        worker.join(timeout=15)
    publisher.flush()
    progress(_report(workers, publisher))
    failed = [w for w in workers if w.stats.error]
    for worker in failed:
        progress(f"camera {worker.camera.id}: {worker.stats.error}")
    return 1 if failed else 0


def _report(workers: list[CameraWorker], publisher: DetectionPublisher) -> str:
    parts = []
    for w in workers:
        elapsed = max(time.monotonic() - w.stats.started, 1e-6)
        state = "error" if w.stats.error else ("done" if w.stats.done else "live")
        parts.append(
            f"{w.camera.id}: {w.stats.frames} frames {w.stats.frames / elapsed:.1f} fps "
            f"{w.stats.objects} objects ({state})"
        )
    return (
        "; ".join(parts)
        + f" | delivered {publisher.delivered}"
        + (f", failed {publisher.failed}" if publisher.failed else "")
        + (f", dropped {publisher.dropped}" if publisher.dropped else "")
    )
