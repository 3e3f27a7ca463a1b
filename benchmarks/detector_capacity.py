"""The model-only ceiling: how many cameras the model and the camera readers alone sustain at
5 analysed frames/s, in one process with nothing else running.

This is NOT what a store runs and says nothing of a store's capacity: it reads video files
(no live MJPEG cameras, no JPEG decoding of live parts), and no flow, Kafka consumer,
PostgreSQL write, dashboard or other service shares the CPU. On a 2-core AVX-512 box it
reported 8 cameras where the whole store sustains 2 (issue 21). A store's capacity, end to
end, is benchmarks/store_box.py. Use this one to see how far the model alone could go.

Each camera is the sample video played in real time (looping), analysed at 5 fps by one
shared model, tracked and published to the real broker. A count is sustained when every
camera analyses at least 95 % of its 5 fps over the measuring window. Baseline in the same
run: the same search without motion gating.
Usage: python -m benchmarks.detector_capacity [--imgsz 640 320] [--model int8|export]
"""

from __future__ import annotations

import argparse
import threading
import time

from benchmarks.common import bench_settings, footage, machine, services
from detector.evidence import FrameRing
from detector.model import Detector
from detector.motion import MotionGate
from detector.publisher import Publisher
from detector.runner import CameraWorker, DetectOptions
from shrinkwatch.paths import shared_file
from shrinkwatch.site_file import Camera

TARGET_FPS = 5.0
SUSTAINED = 0.95


def trial(
    detector: Detector, settings, cameras: int, gating: bool, warmup_s: float, window_s: float
) -> tuple[bool, float, float]:
    """(sustained, slowest camera's fps, share of inference calls skipped)."""
    stop = threading.Event()
    publisher = Publisher(settings)
    options = DetectOptions(realtime=True, loop=True, motion_gating=gating)
    workers = [
        CameraWorker(
            Camera(
                id=f"cam-{i}", store_id="bench", name=f"Camera {i}", stream_url=str(footage()), fps=TARGET_FPS
            ),
            detector,
            publisher,
            options,
            stop,
            MotionGate(enabled=gating),
            # As in production: each analysed frame kept for evidence, the live view refreshed.
            FrameRing(f"cam-{i}", TARGET_FPS, 15.0, settings.live_dir()),
        )
        for i in range(cameras)
    ]
    for worker in workers:
        worker.start()
    time.sleep(warmup_s)
    before = [w.stats.frames for w in workers]
    checked_before = [w.gate.checked for w in workers]
    skipped_before = [w.gate.skipped for w in workers]
    time.sleep(window_s)
    rates = [(w.stats.frames - b) / window_s for w, b in zip(workers, before, strict=True)]
    checked = sum(w.gate.checked for w in workers) - sum(checked_before)
    skipped = sum(w.gate.skipped for w in workers) - sum(skipped_before)
    stop.set()
    for worker in workers:
        worker.join(timeout=10)
    publisher.close(timeout_s=10)
    slowest = min(rates)
    return slowest >= SUSTAINED * TARGET_FPS, slowest, skipped / max(checked, 1)


def capacity(detector: Detector, settings, gating: bool, start: int, warmup_s: float, window_s: float) -> int:
    """Largest sustained camera count, searching up or down from `start`."""
    best = 0
    n = max(1, start)
    ok, slowest, saved = trial(detector, settings, n, gating, warmup_s, window_s)
    print(
        f"    {n:2d} cameras: slowest {slowest:4.2f} fps, inference skipped {saved:5.1%} -> "
        f"{'sustained' if ok else 'not sustained'}",
        flush=True,
    )
    step = 1 if ok else -1
    if ok:
        best = n
    while True:
        n += step
        if n < 1:
            return 0
        ok, slowest, saved = trial(detector, settings, n, gating, warmup_s, window_s)
        print(
            f"    {n:2d} cameras: slowest {slowest:4.2f} fps, inference skipped {saved:5.1%} -> "
            f"{'sustained' if ok else 'not sustained'}",
            flush=True,
        )
        if step == 1 and not ok:
            return best
        if ok:
            best = n
            if step == -1:
                return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640, 320])
    parser.add_argument(
        "--model",
        choices=["int8", "export"],
        default="int8",
        help="int8: the shared int8 OpenVINO IR (640 only); export: OpenVINO from the .pt",
    )
    parser.add_argument("--warmup-s", type=float, default=8.0)
    parser.add_argument("--window-s", type=float, default=20.0)
    args = parser.parse_args()
    settings = bench_settings()
    print(
        f"# model-only ceiling (not a store: see benchmarks/store_box.py) at {TARGET_FPS:g} analysed fps "
        f"per camera, vtest.avi files in real time; {machine()}"
    )
    with services(settings) as settings:
        for imgsz in args.imgsz:
            int8 = shared_file("models", "yolov8n_int8_openvino_model")
            if args.model == "int8" and imgsz == 640 and int8 is not None:
                detector = Detector(bench_settings(model=str(int8), imgsz=640))
                label = "OpenVINO int8 (shared IR)"
            else:
                detector = Detector(bench_settings(backend="openvino", imgsz=imgsz))
                label = "OpenVINO (exported from the .pt)"
            image = next(iter(_frames()))
            for _ in range(3):
                detector.infer(image)
            start = time.perf_counter()
            for _ in range(20):
                detector.infer(image)
            estimate = int((20 / (time.perf_counter() - start)) / TARGET_FPS * 0.8)
            results = {}
            for gating in (False, True):
                print(f"imgsz {imgsz}, {label}, motion gating {'on' if gating else 'off'}:", flush=True)
                results[gating] = capacity(
                    detector, settings, gating, results.get(False, estimate), args.warmup_s, args.window_s
                )
            target = "   (target >= 6 with gating)" if imgsz == 640 else ""
            print(
                f"model-only ceiling, imgsz {imgsz}: {results[False]} cameras without gating, "
                f"{results[True]} with gating; "
                f"ratio gated/ungated = {results[True] / max(results[False], 1):.2f}{target}",
                flush=True,
            )


def _frames():
    from benchmarks.common import frames

    return frames(1)


if __name__ == "__main__":
    main()
