"""Head blur: what blurring a frame's heads costs, against what analysing that frame costs.

Target (issue 20): the blur of a frame's heads < 2 % of the frame's analysis time (the
detector's inference + tracking + pose model on the same frame), both measured in this run on
the same vtest.avi frames. Also the live view's write (redact, annotate, JPEG, file) with the
blur and without it, and the same as a share of analysis when it is written once a second of
a 5 fps camera. No services: the detector runs in this process.
Usage: python -m benchmarks.privacy_blur [--frames 150] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.common import bench_settings, frames, machine
from detector.evidence import FrameRing
from detector.model import Detector
from detector.runner import analyse_frame
from detector.tracking import CameraTracker
from privacy.redact import blur_heads, head_region
from shrinkwatch.contracts import DetectedObject
from shrinkwatch.paths import shared_file

LIVE_EVERY_FRAMES = 5  # the live view is written once a second; a camera is analysed at 5 fps


def analyse(detector: Detector, images: list[np.ndarray]) -> tuple[list[float], list[list[DetectedObject]]]:
    """Each frame's analysis time (inference, tracking, pose: the camera reader's own
    detector.runner.analyse_frame) and the people it blurs (tracked ones at their detection's
    box, those the tracker did not return, and those below `conf` down to `redact_conf`)."""
    assert detector.pose is not None
    tracker = CameraTracker(detector.names)
    seconds, objects = [], []
    for image in images:
        start = time.perf_counter()
        _published, shown, _hidden = analyse_frame(detector, tracker, image, [])
        seconds.append(time.perf_counter() - start)
        objects.append(shown)
    return seconds, objects


def blur_times(images: list[np.ndarray], objects: list[list[DetectedObject]]) -> list[float]:
    """Each frame's head blur (on a copy made beforehand, as the renderer's copy is made anyway)."""
    copies = [image.copy() for image in images]
    seconds = []
    for image, found in zip(copies, objects, strict=True):
        start = time.perf_counter()
        blur_heads(image, found)
        seconds.append(time.perf_counter() - start)
    return seconds


def live_times(
    images: list[np.ndarray], objects: list[list[DetectedObject]], folder: Path, blur: bool
) -> list[float]:
    """Each live-view write (FrameRing.add with a ring that keeps no frames, due every time)."""
    ring = FrameRing("cam-bench", 5.0, 0.0, folder, live_every_s=0.0, blur_heads=blur)
    now = datetime.now(UTC)
    seconds = []
    for image, found in zip(images, objects, strict=True):
        start = time.perf_counter()
        ring.add(image, now, found)
        seconds.append(time.perf_counter() - start)
    return seconds


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1e3:7.3f} ms, mean {statistics.fmean(values) * 1e3:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pose = shared_file("models", "yolov8n-pose_int8_openvino_model")
    if pose is None:
        msg = "this benchmark needs ../shared/models/yolov8n-pose_int8_openvino_model"
        raise SystemExit(msg)
    print(f"# head blur on {args.frames} vtest.avi frames at 640 (5 fps), pose model on; {machine()}")
    detector = Detector(bench_settings(pose_model=str(pose)))
    print(f"# detector {Path(detector.source).name} + pose {pose.name}")
    images = frames(args.frames)
    analyse(detector, images[:10])  # warm-up
    # Rounds interleaved (analysis, blur, live views), medians per frame over the rounds: the
    # machine is shared and noisy.
    analysis: list[list[float]] = []
    blurs: list[list[float]] = []
    live_on: list[list[float]] = []
    live_off: list[list[float]] = []
    objects: list[list[DetectedObject]] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            seconds, objects = analyse(detector, images)
            analysis.append(seconds)
            blurs.append(blur_times(images, objects))
            live_off.append(live_times(images, objects, Path(folder), blur=False))
            live_on.append(live_times(images, objects, Path(folder), blur=True))

    def per_frame(rounds: list[list[float]]) -> list[float]:
        return [statistics.median(values) for values in zip(*rounds, strict=True)]

    analysed, blurred = per_frame(analysis), per_frame(blurs)
    on, off = per_frame(live_on), per_frame(live_off)
    people = [sum(o.class_name == "person" for o in found) for found in objects]
    with_pose = sum(o.keypoints is not None for found in objects for o in found)
    heads = sum(head_region(o, 768, 576) is not None for found in objects for o in found)
    print(
        f"people per frame: mean {statistics.fmean(people):.1f}, max {max(people)}; "
        f"{with_pose} of {heads} heads placed from pose keypoints, the rest from the box"
    )
    print(f"analysis (inference + tracking + pose) per frame: {ms(analysed)}")
    print(f"head blur per frame:                              {ms(blurred)}")
    share = statistics.fmean(blurred) / statistics.fmean(analysed)
    per_frame_share = [b / a for b, a in zip(blurred, analysed, strict=True)]
    typical = statistics.median(per_frame_share)
    print(
        f"blur / analysis: {share:.2%} of the mean (frame by frame: median {typical:.2%}, "
        f"max {max(per_frame_share):.2%}) (target < 2 %)"
    )
    extra = statistics.fmean(on) - statistics.fmean(off)
    print(f"live view write without blur: {ms(off)}")
    print(f"live view write with blur:    {ms(on)} (+{extra * 1e3:.3f} ms a write)")
    print(
        f"live view's blur, written once every {LIVE_EVERY_FRAMES} analysed frames: "
        f"{extra / LIVE_EVERY_FRAMES / statistics.fmean(analysed):.3%} of analysis per frame"
    )


if __name__ == "__main__":
    main()
