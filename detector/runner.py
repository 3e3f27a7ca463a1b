"""`shrinkwatch detect`: one thread per camera feeding one shared model, publishing every frame.

A camera's privacy zones (zone kind `privacy`) are blacked out on each frame before anything
looks at it (the motion gate, the model, the ring that keeps evidence and the live view), so
nothing inside them is analysed, stored or shown. A person the model still finds standing in
one (their foot point inside it) is not published, and is blurred whole on the frame: they are
part of the zone. How evidence and the live view are shown (heads blurred or not) is the
camera's store's `privacy.blur_heads`, read when `detect` starts.

What is published is what the tracker confirmed. Every other person the model found in the
frame (new, not yet confirmed; or dropped out of the tracker for a frame) is kept for
redaction only, without a track id (detector.tracking.untracked): the ring and the live view
get them with the published objects, so their heads are blurred and they are in the evidence's
tracks file, but they are never published. A tracked person's published box is the tracker's
estimate, which lags a moving person by a few pixels; the ring gets them at the box the model
found in that very frame (detector.tracking.CameraTracker.update_seen), so what is blurred,
drawn and kept for access requests and erasure is where they are. When the motion gate skips
the model, the last frame's objects, redaction-only ones and those in privacy zones are used
again. People the model finds below `conf` but at `redact_conf` (0.1) or more are redaction-only
too: privacy errs on blurring more.

With more than one camera and `infer_batch` 1 (the default), each camera's thread runs its
frame on an OpenVINO stream of its own (Detector.infer_faint_on_stream: one stream per core,
`infer_streams`), so frames of different cameras run at once and none waits for another's
whole inference; with `infer_streams` 1, or a model that is not OpenVINO, one at a time.
With `infer_batch` above 1, the cameras' frames go through the model together
(detector.scheduler): each camera's thread hands its frame to the scheduler where it would
have called the model, and does the rest (tracker, untracked people, pose, privacy zones:
`track_frame`) itself, in the same order as one by one (`analyse_frame`).

At the end, each camera's thread gets `JOIN_S` to finish once the stop is set; the publisher
then delivers what was published, and the evidence recorder finishes the incidents it was
handed — all within about `STOP_BUDGET_S` of a stop asked by a signal (with the floors of its
last waits, under the supervisor's 20 s before SIGKILL), or `FINISH_S` when the cameras ended
by themselves; then the models are closed (detector.model.Detector.close: OpenVINO's objects
let go in order, while no call runs). A thread still running then (a camera worker, its
source's reading or decoding thread, the evidence recorder) may be inside C++ (FFmpeg,
OpenVINO), and letting the interpreter finalise under it can abort the process ("terminate
called without an active exception"): such threads are named in the log, the publisher is
closed (what was published is delivered), the models are left as they are, and `shrinkwatch
detect` leaves with os._exit(its exit code) (`run_detect(exit_if_stuck=True)`); a caller
in-process (a test) gets the exit code back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import numpy as np

from detector.evidence import EvidenceRecorder, FrameRing
from detector.export import BACKEND_NAMES, resolve_model_path
from detector.health import Observation, Sample, assess
from detector.metrics import CameraMetrics
from detector.model import Boxes, Detector
from detector.motion import MotionGate
from detector.pose import attach_keypoints
from detector.publisher import Publisher
from detector.scheduler import InferScheduler, SchedulerStopped
from detector.sources import FileSource, LiveSource, SourceError, open_source
from detector.tracking import CameraTracker, untracked
from privacy.redact import black_out, blur_people, in_zones
from shrinkwatch.contracts import DetectedObject, Detection
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.logs import scrub
from shrinkwatch.settings import Settings
from shrinkwatch.shutdown import stop_event_on_signals
from shrinkwatch.site_file import Camera, Store, placeholders

log = logging.getLogger(__name__)

JOIN_S = 15.0  # how long each camera's thread has to end once detect stops
# Asked to stop (a signal), detect is done within this: the supervisor SIGKILLs a service 20 s
# after its SIGTERM (infra.supervisor.STOP_TIMEOUT_S), and what is published must be delivered
# by then. When its cameras end by themselves (files), the evidence encoder gets FINISH_S.
STOP_BUDGET_S = 15.0  # (+ the 1 s floors of the last two waits and the models' close: < 20 s)
FINISH_S = 60.0


@dataclass(frozen=True)
class DetectOptions:
    """What to read and how."""

    camera_ids: list[str] | None = None
    realtime: bool = True
    loop: bool = False
    max_frames: int | None = None
    motion_gating: bool = True


@dataclass
class CameraStats:
    """Counters of one camera reader."""

    frames: int = 0
    objects: int = 0
    started: float = field(default_factory=time.monotonic)
    last_frame_ts: datetime | None = None
    error: str | None = None
    done: bool = False


Analysed = tuple[list[DetectedObject], list[DetectedObject], list[DetectedObject]]
Polygons = list[list[tuple[float, float]]]


def analyse_frame(
    detector: Detector, tracker: CameraTracker, image: np.ndarray, privacy: Polygons
) -> Analysed:
    """One frame through the model, the tracker and the pose model: (the tracked objects to
    publish, the people as seen in this frame (the tracked ones at their detection's box,
    and those the tracker did not return: redaction only), those standing in a privacy
    zone). Whoever stands in a privacy zone by either box, the one seen in this frame or the
    tracker's (which would be published), is hidden."""
    return track_frame(detector, tracker, image, detector.infer_faint(image), privacy)


def track_frame(
    detector: Detector,
    tracker: CameraTracker,
    image: np.ndarray,
    found: tuple[Boxes, Boxes],
    privacy: Polygons,
) -> Analysed:
    """analyse_frame after the model: `found` is the model's answer for `image` (its boxes at
    `conf` or more, and the faint ones), however it was run (alone or in a batch)."""
    height, width = image.shape[:2]
    boxes, faint = found
    objects, seen = tracker.update_seen(boxes, width, height)
    unseen = untracked(boxes, seen, detector.names, width, height)
    unseen += untracked(faint, [], detector.names, width, height)  # blurred, never tracked
    if detector.pose is not None and any(o.class_name == "person" for o in seen + unseen):
        everyone = attach_keypoints(seen + unseen, *detector.pose.poses(image))
        seen, unseen = everyone[: len(seen)], everyone[len(seen) :]
        objects = [
            o.model_copy(update={"keypoints": s.keypoints}) for o, s in zip(objects, seen, strict=True)
        ]
    if not privacy:
        return objects, seen + unseen, []
    # Hidden when either box stands in a zone: the one seen, or the tracker's, which is published.
    inside = {id(o) for o in in_zones(seen, privacy)[1]} | {id(o) for o in in_zones(objects, privacy)[1]}
    pairs = list(zip(objects, seen, strict=True))
    hidden = [s for o, s in pairs if id(o) in inside or id(s) in inside]
    kept = [(o, s) for o, s in pairs if id(o) not in inside and id(s) not in inside]
    unseen, hidden_unseen = in_zones(unseen, privacy)
    return [o for o, _s in kept], [s for _o, s in kept] + unseen, hidden + hidden_unseen


class CameraWorker(threading.Thread):
    """Reads one camera, runs the shared model and its own tracker, publishes each frame."""

    def __init__(
        self,
        camera: Camera,
        detector: Detector,
        publisher: Publisher,
        options: DetectOptions,
        stop: threading.Event,
        gate: MotionGate | None = None,
        ring: FrameRing | None = None,
        environ: Mapping[str, str] | None = None,
        infer: Callable[[np.ndarray], tuple[Boxes, Boxes]] | None = None,
    ) -> None:
        super().__init__(name=f"camera-{camera.id}", daemon=True)
        gate = gate or MotionGate(enabled=False)
        self.camera, self.detector, self.publisher = camera, detector, publisher
        self.options, self.stop = options, stop
        self.stats = CameraStats()
        self.source: FileSource | LiveSource | None = None
        self.gate = gate
        self.ring = ring
        self.environ = environ or {}  # for the stream URL's ${VAR} placeholders
        self.privacy = privacy_zones(camera)
        # The model, called alone (the detector's own lock) or through an InferScheduler.
        self.infer = infer or detector.infer_faint
        self.metrics = CameraMetrics.of(camera.store_id, camera.id)

    def run(self) -> None:
        cam = self.camera
        try:
            self.source = open_source(
                cam.stream_url,
                cam.fps,
                realtime=self.options.realtime,
                loop=self.options.loop,
                environ=self.environ,
            )
            tracker = CameraTracker(self.detector.names)
            objects: list[DetectedObject] = []  # published
            shown: list[DetectedObject] = []  # everyone as seen in the frame: for the ring (redaction)
            hidden: list[DetectedObject] = []  # standing in a privacy zone
            live = self.source if isinstance(self.source, LiveSource) else None
            behind = 0  # the live source's missed ticks, counted so far
            metrics = self.metrics
            for frame in self.source.frames(self.stop):
                # Capture time: a live frame's arrival; a file's frame (stamped with the
                # file's own clock) when it was read.
                captured_at = frame.ts.timestamp() if live is not None else time.time()
                height, width = frame.image.shape[:2]
                black_out(frame.image, self.privacy)
                # Nothing moved: the objects are where they were, and the tracks stay alive.
                if self.gate.should_infer(frame.image):
                    objects, shown, hidden = self.analyse(tracker, frame.image)
                if hidden:  # blurred whole, and the zone black again where the blur reached it
                    black_out(blur_people(frame.image, hidden), self.privacy)
                self.publisher.publish(
                    Detection(
                        camera_id=cam.id,
                        store_id=cam.store_id,
                        frame_id=self.stats.frames,
                        ts=frame.ts,
                        frame_w=width,
                        frame_h=height,
                        objects=objects,
                    ),
                    metrics,
                    captured_at,
                )
                metrics.analysed.inc()
                if live is not None and live.behind != behind:
                    metrics.dropped_behind.inc(live.behind - behind)
                    behind = live.behind
                if self.ring is not None:
                    self.ring.add(frame.image, frame.ts, shown)
                self.stats.frames += 1
                self.stats.objects += len(objects)
                self.stats.last_frame_ts = frame.ts
                if self.options.max_frames and self.stats.frames >= self.options.max_frames:
                    break
        except SchedulerStopped:
            pass  # detect is stopping
        except SourceError as exc:
            self.stats.error = str(exc)
            log.error("camera %s: %s", cam.id, exc)
        except Exception as exc:  # a camera must never take the others down
            self.stats.error = scrub(f"{type(exc).__name__}: {exc}")
            log.exception("camera %s failed", cam.id)
        finally:
            self.stats.done = True
            self.metrics.up.set(0)

    def analyse(self, tracker: CameraTracker, image: np.ndarray) -> Analysed:
        """One frame through the model (timed: the camera's inference seconds), the tracker
        and the pose model (analyse_frame)."""
        started = time.perf_counter()
        found = self.infer(image)
        self.metrics.inference.observe(time.perf_counter() - started)
        return track_frame(self.detector, tracker, image, found, self.privacy)

    def running(self) -> list[str]:
        """The names of this camera's threads that are still running: the worker, and the
        reading or decoding threads of its source."""
        threads = [self, *(self.source.threads if self.source else [])]
        return [t.name for t in threads if t.is_alive()]

    def sample(self) -> Sample:
        """Counters now, for the health monitor."""
        read = self.source.frames_read if self.source else 0
        return Sample(time.monotonic(), read, self.stats.frames)

    def observe(
        self, previous: Sample, current: Sample, broker_down: bool, dropped: int, capped: int = 0
    ) -> Observation:
        """What the health monitor needs to judge this camera."""
        source = self.source
        connected = bool(source and source.connected) and not (self.stats.done and self.stats.error)
        since_new = time.monotonic() - source.last_new_at if source else current.at - self.stats.started
        return Observation(
            camera_id=self.camera.id,
            store_id=self.camera.store_id,
            target_fps=self.camera.fps,
            previous=previous,
            current=current,
            seconds_since_new_frame=since_new,
            source_connected=connected,
            live=isinstance(source, LiveSource) or bool(self.options.realtime),
            uptime_s=current.at - self.stats.started,
            last_frame_ts=self.stats.last_frame_ts,
            error=self.stats.error or (source.last_error if source else None),
            broker_down=broker_down,
            dropped_since_last=dropped,
            capped_since_last=capped,
        )


class HealthMonitor:
    """Publishes each camera's health every `every_s` and logs every change of status."""

    def __init__(self, workers: list[CameraWorker], publisher: Publisher, every_s: float = 2.0) -> None:
        self.workers, self.publisher, self.every_s = workers, publisher, every_s
        self._samples = {w.camera.id: w.sample() for w in workers}
        self._status: dict[str, str] = {}
        self._dropped = publisher.dropped
        self._capped = dict(publisher.capped)
        self._next = time.monotonic() + every_s

    def tick(self) -> None:
        """Report if it is time to."""
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every_s
        dropped = self.publisher.dropped - self._dropped
        self._dropped = self.publisher.dropped
        for worker in self.workers:
            if worker.stats.done and not worker.stats.error:
                continue  # a file that ended: nothing to report
            current = worker.sample()
            camera = worker.camera.id
            capped = self.publisher.capped.get(camera, 0)
            health = assess(
                worker.observe(
                    self._samples[camera],
                    current,
                    self.publisher.broker_down,
                    dropped,
                    capped - self._capped.get(camera, 0),
                )
            )
            self._capped[camera] = capped
            self._samples[worker.camera.id] = current
            self.publisher.publish_health(health)
            worker.metrics.up.set(1 if health.status in ("online", "degraded") else 0)
            if worker.stats.done:  # ended meanwhile: the worker set 0 after marking itself done
                worker.metrics.up.set(0)
            before = self._status.get(worker.camera.id)
            if before != health.status:
                self._status[worker.camera.id] = health.status
                level = logging.INFO if health.status == "online" else logging.WARNING
                log.log(
                    level,
                    "camera %s is %s%s",
                    worker.camera.id,
                    health.status,
                    f" ({health.error})" if health.error and health.status != "online" else "",
                )


def privacy_zones(camera: Camera) -> Polygons:
    """The polygons of the camera's privacy zones (normalised)."""
    return [list(z.polygon) for z in camera.zones if z.kind == "privacy"]


def _load_site(settings: Settings, camera_ids: list[str] | None) -> tuple[list[Camera], dict[str, Store]]:
    """The cameras to read, and the stores by id."""
    from warehouse.db import connect
    from warehouse.site_tables import load_cameras, load_stores

    with connect(settings.database_dsn) as conn:
        cameras = load_cameras(conn, camera_ids)
        stores = {store.id: store for store in load_stores(conn)}
    missing = sorted(set(camera_ids or []) - {c.id for c in cameras})
    if missing:
        msg = f"no enabled camera with id {', '.join(missing)}; apply a site file (shrinkwatch sites apply)"
        raise ShrinkwatchError(msg)
    if not cameras:
        msg = "no cameras are configured; apply a site file first (shrinkwatch sites apply FILE)"
        raise ShrinkwatchError(msg)
    return cameras, stores


def blurs_heads(stores: dict[str, Store], store_id: str) -> bool:
    """The store's `privacy.blur_heads`; on for a store that is not in the site file."""
    store = stores.get(store_id)
    return True if store is None else store.privacy.blur_heads


def run_detect(
    settings: Settings,
    options: DetectOptions,
    *,
    check_only: bool = False,
    progress: Callable[[str], None] = print,
    progress_every_s: float = 5.0,
    environ: Mapping[str, str] | None = None,
    exit_if_stuck: bool = False,
) -> int:
    """Run every camera until its source ends or a signal arrives; exit code 1 if any failed.
    `environ` resolves the `${VAR}` placeholders of stream URLs (the process's environment).
    With `exit_if_stuck` (the command), a thread still running at the end makes the process
    leave at once with that exit code (os._exit; the module's policy)."""
    environ = os.environ if environ is None else environ
    cameras, stores = _load_site(settings, options.camera_ids)
    if check_only:
        where = resolve_model_path(settings.model)
        progress(f"model: {where or settings.model}; cameras: {', '.join(c.id for c in cameras)}")
        unset = {c.id: [v for v in placeholders(c.stream_url) if v not in environ] for c in cameras}
        unset = {camera: names for camera, names in unset.items() if names}
        if unset:
            listed = "; ".join(f"camera {c}: {', '.join(names)}" for c, names in unset.items())
            msg = f"stream_url placeholders without an environment variable: {listed}"
            raise ShrinkwatchError(msg)
        checked = Detector(settings, progress)
        progress(f"ok: {Path(checked.source).name} with {BACKEND_NAMES[checked.backend]}")
        checked.close()
        return 0
    stop = stop_event_on_signals()
    detector = Detector(settings, progress)
    publisher = Publisher(settings)
    rings = {
        cam.id: FrameRing(
            cam.id,
            cam.fps,
            settings.evidence_before_s + settings.evidence_after_s + 5 if settings.evidence else 0,
            settings.live_dir(),
            blur_heads=blurs_heads(stores, cam.store_id),
            privacy=privacy_zones(cam),
        )
        for cam in cameras
    }
    scheduler = scheduler_for(detector, settings.infer_batch, len(cameras))
    # Several cameras and one frame per call: each camera's frame on a stream of its own.
    on_streams = scheduler is None and len(cameras) > 1 and detector.streams > 1
    workers = [
        CameraWorker(
            cam,
            detector,
            publisher,
            options,
            stop,
            MotionGate(
                min_area=settings.motion_min_area,
                max_skip_s=settings.motion_max_skip_s,
                enabled=options.motion_gating and cam.motion_gating,
            ),
            rings[cam.id],
            environ,
            scheduler.infer if scheduler else (detector.infer_faint_on_stream if on_streams else None),
        )
        for cam in cameras
    ]
    recorder = None
    if settings.evidence:
        recorder = EvidenceRecorder(
            settings, rings, stop, settings.evidence_before_s, settings.evidence_after_s
        )
        recorder.start()
    for worker in workers:
        worker.start()
    monitor = HealthMonitor(workers, publisher)
    batched = f", up to {scheduler.most} frames per model call" if scheduler else ""
    batched += f", frames on {detector.streams} streams at once" if on_streams else ""
    progress(
        f"analysing {len(workers)} camera(s) with {detector.source} ({BACKEND_NAMES[detector.backend]}) "
        f"at imgsz {detector.imgsz}{batched}; "
        f"publishing to {publisher.detections_topic}"
    )
    last_report = time.monotonic()
    while any(w.is_alive() for w in workers) and not stop.is_set():
        time.sleep(0.2)
        monitor.tick()
        if time.monotonic() - last_report >= progress_every_s:
            last_report = time.monotonic()
            progress(_report(workers, publisher, scheduler))
    deadline = time.monotonic() + (STOP_BUDGET_S if stop.is_set() else FINISH_S)
    stop.set()
    if scheduler is not None:
        scheduler.stop()
    for worker in workers:
        worker.join(timeout=max(0.0, min(JOIN_S, deadline - time.monotonic())))
    # What was published is delivered first, while the evidence encoder (a thread of its own)
    # goes on writing what it was handed; then it gets what is left of the time.
    publisher.close(timeout_s=max(1.0, deadline - time.monotonic()))
    if recorder is not None:
        recorder.join(timeout=max(1.0, deadline - time.monotonic()))
        if recorder.saved:
            progress(f"evidence saved for {recorder.saved} incident(s) in {settings.evidence_dir()}")
    progress(_report(workers, publisher, scheduler))
    failed = [w for w in workers if w.stats.error]
    for worker in failed:
        progress(f"camera {worker.camera.id}: {worker.stats.error}")
    status = 1 if failed else 0
    running = [name for w in workers for name in w.running()]
    running += [recorder.name] if recorder is not None and recorder.is_alive() else []
    if not running:
        detector.close()
        return status
    # One of them may be inside the model: it stays open.
    log.error("still running %.0f s after the stop: %s", JOIN_S, ", ".join(running))
    if exit_if_stuck:
        leave(status)
    return status


def leave(status: int) -> NoReturn:
    """End the process now with `status`, what was logged and printed flushed first, without
    the interpreter's teardown (threads still in C++: the module's policy)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def scheduler_for(detector: Detector, infer_batch: int, cameras: int) -> InferScheduler | None:
    """A started InferScheduler when frames of several cameras can share a model call
    (`infer_batch` above 1 and more than one camera), else None: each camera calls the model."""
    most = min(infer_batch, cameras)
    return InferScheduler(detector.infer_faint_batch, most).start() if most > 1 else None


def _report(
    workers: list[CameraWorker], publisher: Publisher, scheduler: InferScheduler | None = None
) -> str:
    parts = []
    for w in workers:
        elapsed = max(time.monotonic() - w.stats.started, 1e-6)
        state = "error" if w.stats.error else ("done" if w.stats.done else "live")
        gated = f", {w.gate.skipped} skipped (no motion)" if w.gate.skipped else ""
        gated += f", {w.gate.paused} unexamined (gating did not pay)" if w.gate.paused else ""
        parts.append(
            f"{w.camera.id}: {w.stats.frames} frames {w.stats.frames / elapsed:.1f} fps "
            f"{w.stats.objects} objects{gated} ({state})"
        )
    return (
        "; ".join(parts)
        + f" | delivered {publisher.delivered}"
        + (f", failed {publisher.failed}" if publisher.failed else "")
        + (f", dropped {publisher.dropped}" if publisher.dropped else "")
        + (f", capped {sum(publisher.capped.values())}" if publisher.capped else "")
        + (f", too large {publisher.too_large}" if publisher.too_large else "")
        + (f", backlog {publisher.backlog} (Kafka unreachable)" if publisher.broker_down else "")
        + (
            f" | {scheduler.stats.frames} frames in {scheduler.stats.calls} model calls "
            f"(largest batch {scheduler.stats.largest})"
            if scheduler and scheduler.stats.calls
            else ""
        )
    )
