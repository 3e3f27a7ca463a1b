"""Batched inference across cameras (detector.scheduler, issue 21).

The batched path publishes, for each camera, what the one-by-one path publishes on the same
frames (the real model, the real tracker, the real broker); a frame the model fails on fails
its own camera only, the others get their detections; stopping ends the scheduler and frees
every camera still waiting.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detector.model import Boxes, Detector
from detector.motion import MotionGate
from detector.publisher import Publisher
from detector.runner import CameraWorker, DetectOptions
from detector.scheduler import InferScheduler, SchedulerStopped
from privacy import media
from shrinkwatch.contracts import Detection, decode
from shrinkwatch.site_file import Camera
from tests.support import VTEST, needs_footage, read_all, wait_for

CAMERAS = 3
FRAMES = 16


def clips(tmp_path: Path) -> list[Path]:
    """CAMERAS short clips of the sample video from different places in it, one per camera,
    every frame at 5 fps (so each is analysed)."""
    capture = cv2.VideoCapture(str(VTEST))
    images = []
    while len(images) < 2 * FRAMES * CAMERAS * 4:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    out = []
    for i in range(CAMERAS):
        start = i * 8 * FRAMES  # 12.8 s apart: other people, other places
        out.append(tmp_path / f"cam{i}.avi")
        media.write_frames(images[start : start + 2 * FRAMES : 2], 5.0, out[-1])
    return out


def run_cameras(
    detector: Detector,
    publisher: Publisher,
    videos: list[Path],
    prefix: str,
    scheduler: InferScheduler | None,
) -> list[CameraWorker]:
    workers = [
        CameraWorker(
            Camera(id=f"{prefix}-{i}", store_id="store-1", name=f"Camera {i}", stream_url=str(video), fps=5),
            detector,
            publisher,
            DetectOptions(realtime=False),
            threading.Event(),
            MotionGate(enabled=False),
            infer=scheduler.infer if scheduler else None,
        )
        for i, video in enumerate(videos)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not [w for w in workers if w.is_alive()]
    return workers


def published(settings: Any) -> dict[str, list[Detection]]:
    by_camera: dict[str, list[Detection]] = defaultdict(list)
    for message in read_all(settings, settings.topic("detections")):
        detection = decode(message.value(), Detection)
        by_camera[detection.camera_id].append(detection)
    return {camera: sorted(frames, key=lambda d: d.frame_id) for camera, frames in by_camera.items()}


@pytest.mark.slow
@needs_footage
def test_the_batched_path_publishes_what_the_one_by_one_path_does(settings: Any, tmp_path: Path) -> None:
    videos = clips(tmp_path)
    detector = Detector(settings.model_copy(update={"pose_model": None}))
    publisher = Publisher(settings)
    alone = run_cameras(detector, publisher, videos, "alone", None)
    scheduler = InferScheduler(detector.infer_faint_batch, CAMERAS).start()
    try:
        batched = run_cameras(detector, publisher, videos, "batched", scheduler)
    finally:
        scheduler.stop()
    publisher.close()
    assert not [w.stats.error for w in alone + batched if w.stats.error]
    # Every frame went through the scheduler, and frames of several cameras shared calls.
    assert scheduler.stats.frames == CAMERAS * FRAMES
    assert scheduler.stats.calls < scheduler.stats.frames

    frames = published(settings)
    people = 0
    for i in range(CAMERAS):
        one, many = frames[f"alone-{i}"], frames[f"batched-{i}"]
        assert [d.frame_id for d in many] == [d.frame_id for d in one] == list(range(FRAMES))
        for a, b in zip(one, many, strict=True):
            assert b.ts - many[0].ts == a.ts - one[0].ts  # a file's clock starts when it is opened
            assert [o.track_id for o in b.objects] == [o.track_id for o in a.objects], a.frame_id
            assert [o.class_name for o in b.objects] == [o.class_name for o in a.objects]
            for oa, ob in zip(a.objects, b.objects, strict=True):
                assert ob.box == pytest.approx(oa.box, abs=1e-3)  # a pixel is 1.3e-3 of the width
            people += len(a.objects)
    assert people > CAMERAS * FRAMES  # the clips have people in them: the comparison compared boxes


def none() -> Boxes:
    return Boxes(xyxy=np.zeros((0, 4), np.float32), conf=np.zeros(0, np.float32), cls=np.zeros(0, np.int32))


def one_box(image: np.ndarray) -> tuple[Boxes, Boxes]:
    """A stand-in model's answer that says which frame it was for: a box as wide as its grey level."""
    level = float(image[0, 0, 0])
    box = Boxes(
        xyxy=np.array([[0, 0, level, 10]], np.float32),
        conf=np.array([0.9], np.float32),
        cls=np.zeros(1, np.int32),
    )
    return box, none()


class FailsOnBlack:
    """A stand-in model: fails any call that holds a black frame; records each call's frames."""

    names = {0: "person"}
    pose = None

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def infer_faint(self, image: np.ndarray) -> tuple[Boxes, Boxes]:
        return self.infer_faint_batch([image])[0]

    def infer_faint_batch(self, images: list[np.ndarray]) -> list[tuple[Boxes, Boxes]]:
        self.calls.append([int(i[0, 0, 0]) for i in images])
        if any(not i.any() for i in images):
            msg = "cannot analyse a black frame"
            raise ValueError(msg)
        return [one_box(i) for i in images]


def grey(level: int) -> np.ndarray:
    return np.full((48, 64, 3), level, np.uint8)


def test_a_frame_the_model_fails_on_fails_its_own_camera_only() -> None:
    model = FailsOnBlack()
    scheduler = InferScheduler(model.infer_faint_batch, 3)
    answers: dict[int, Any] = {}

    def camera(level: int) -> None:
        try:
            answers[level] = scheduler.infer(grey(level))
        except ValueError as exc:
            answers[level] = exc

    threads = [threading.Thread(target=camera, args=(level,)) for level in (40, 0, 80)]
    for thread in threads:
        thread.start()
    # The three frames wait together, so the first call holds all three (the black one too).
    wait_for(lambda: scheduler.waiting == 3, timeout_s=30, interval_s=0.01, what="three frames waiting")
    scheduler.start()
    for thread in threads:
        thread.join(timeout=30)
    scheduler.stop()
    assert sorted(model.calls[0]) == [0, 40, 80]  # tried as a batch, then one by one
    assert sorted(model.calls[1:]) == [[0], [40], [80]]
    assert isinstance(answers[0], ValueError)
    for level in (40, 80):
        boxes, faint = answers[level]
        assert boxes.xyxy.tolist() == [[0, 0, level, 10]] and len(faint) == 0


@needs_footage
def test_a_camera_that_fails_does_not_stall_the_others(settings: Any, tmp_path: Path) -> None:
    """Camera readers over the scheduler: the one whose frames the model fails on ends with the
    error; the others publish every frame."""
    sizes = {"good-1": 40, "bad": 0, "good-2": 80}
    videos = {}
    for camera, level in sizes.items():
        videos[camera] = tmp_path / f"{camera}.avi"
        media.write_frames([grey(level)] * FRAMES, 5.0, videos[camera])
    model = FailsOnBlack()
    scheduler = InferScheduler(model.infer_faint_batch, 3).start()
    publisher = Publisher(settings)
    workers = [
        CameraWorker(
            Camera(id=camera, store_id="store-1", name=camera, stream_url=str(video), fps=5),
            model,  # type: ignore[arg-type]
            publisher,
            DetectOptions(realtime=False),
            threading.Event(),
            MotionGate(enabled=False),
            infer=scheduler.infer,
        )
        for camera, video in videos.items()
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    scheduler.stop()
    publisher.close()
    assert not [w for w in workers if w.is_alive()]
    errors = {w.camera.id: w.stats.error for w in workers}
    assert errors == {"good-1": None, "bad": "ValueError: cannot analyse a black frame", "good-2": None}
    frames = published(settings)
    assert sorted(frames) == ["good-1", "good-2"]
    for camera in ("good-1", "good-2"):
        assert [d.frame_id for d in frames[camera]] == list(range(FRAMES))
        assert all(len(d.objects) <= 1 for d in frames[camera])


def test_stop_ends_the_running_call_and_frees_whoever_waits() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(images: list[np.ndarray]) -> list[tuple[Boxes, Boxes]]:
        entered.set()
        release.wait(30)
        return [one_box(i) for i in images]

    scheduler = InferScheduler(slow, 1).start()
    answers: dict[str, Any] = {}

    def camera(name: str, level: int) -> None:
        try:
            answers[name] = scheduler.infer(grey(level))
        except SchedulerStopped as exc:
            answers[name] = exc

    running = threading.Thread(target=camera, args=("running", 40))
    running.start()
    assert entered.wait(30)
    waiting = threading.Thread(target=camera, args=("waiting", 80))
    waiting.start()
    wait_for(lambda: scheduler.waiting == 1, timeout_s=30, interval_s=0.01, what="a frame waiting")
    stopper = threading.Thread(target=scheduler.stop)
    stopper.start()
    wait_for(lambda: scheduler.stopped, timeout_s=30, interval_s=0.01, what="stop called")
    release.set()  # the call running ends; stop does not start another
    for thread in (stopper, running, waiting):
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert answers["running"][0].xyxy.tolist() == [[0, 0, 40, 10]]
    assert isinstance(answers["waiting"], SchedulerStopped)
    assert not [t for t in threading.enumerate() if t.name == "infer-scheduler"]
    with pytest.raises(SchedulerStopped):
        scheduler.infer(grey(10))


@pytest.mark.slow
@needs_footage
def test_detect_batches_its_cameras_when_infer_batch_allows(settings: Any, tmp_path: Path) -> None:
    """`detect` with infer_batch 2 and two cameras: one scheduler serves both, every frame of
    each is published, and the run ends cleanly (exit 0, no error)."""
    from detector.runner import run_detect
    from shrinkwatch.site_file import parse_site_config
    from warehouse.db import connect
    from warehouse.site_tables import apply_site_config

    videos = clips(tmp_path)[:2]
    cameras = "\n".join(
        f"  - {{id: cam-{i}, store_id: store-1, name: Camera {i}, stream_url: '{video}', fps: 5}}"
        for i, video in enumerate(videos)
    )
    site = f"stores: [{{id: store-1, name: Store, timezone: Europe/London}}]\ncameras:\n{cameras}\n"
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))
    lines: list[str] = []
    settings = settings.model_copy(update={"infer_batch": 2, "pose_model": None, "evidence": False})
    code = run_detect(settings, DetectOptions(realtime=False), progress=lines.append, environ={})
    assert code == 0, lines
    assert "up to 2 frames per model call" in "\n".join(lines)
    assert f"{2 * FRAMES} frames in " in lines[-1]  # the last report: every frame through the scheduler
    frames = published(settings)
    for camera in ("cam-0", "cam-1"):
        assert [d.frame_id for d in frames[camera]] == list(range(FRAMES))
    assert not [t for t in threading.enumerate() if t.name == "infer-scheduler"]
