"""int8 against fp32 (issue 21): person-seconds per zone on the whole sample video, and the
cost per frame of each input size.

For each input size (640, 480, 416, 320 by default), yolov8n.pt is exported to OpenVINO at
fp32 and at int8 (detector.export: NNCF, calibrated on vtest.avi; cached under
.shrinkwatch-bench/models, so a second run measures without exporting). Both run over the
whole video, every frame at its own 10 fps, as a camera reader runs them (model, tracker,
privacy zone blacked out: detector.accuracy.analysed_frames), and the demo site's zones give
each person-seconds. Printed: each zone's int8 difference from fp32 at the same size (target:
within 2 %, the rule `precision: auto` follows) and each size's fp32 difference from fp32 at
640 (what a smaller input costs in accuracy). Then ms per frame through the Detector the
readers use (letterbox, inference, NMS), one frame at a time and in batches of 8, median of
the calls after warm-up, in CPU time (every thread: what sizing needs, and what a busy machine
disturbs least) and wall time, with each one's CPU ratio to fp32 at 640, one frame at a time,
measured in the same run. The first line names the CPU and its vector flags.

Usage: python -m benchmarks.int8_accuracy [--imgsz 640 480 416 320] [--fps 10] [--timing-frames 96]
       [--timing-only]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.common import BENCH_HOME, bench_settings, footage, frames, machine
from cli.models import demo_camera
from detector.accuracy import TOLERANCE, compare, zone_person_seconds
from detector.export import exported_model
from detector.model import Detector
from shrinkwatch.settings import Settings

PRECISIONS = ("fp32", "int8")


def export(settings: Settings, precision: str, video: Path) -> Path:
    """The cached OpenVINO export of the benchmark's weights at this size and precision."""
    weights = Path(settings.model)
    return exported_model(
        weights,
        "openvino",
        settings.imgsz,
        settings.model_cache_dir(),
        print,
        precision=precision,
        calibration=video,
    )


def ms_per_frame(
    detector: Detector, images: list[np.ndarray], batch: int, warmup: int = 2
) -> tuple[float, float]:
    """Median (CPU ms, wall ms) per frame of `detector` on `images`, `batch` frames per call.
    CPU time (every thread of this process) is what sizing needs, and what a busy machine
    disturbs least; wall time is shown beside it."""
    calls = [images[i : i + batch] for i in range(0, len(images) - batch + 1, batch)]
    for call in calls[:warmup]:
        detector.infer_faint_batch(call)
    cpu, wall = [], []
    for call in calls[warmup:]:
        started_cpu, started = time.process_time(), time.perf_counter()
        detector.infer_faint_batch(call)
        cpu.append((time.process_time() - started_cpu) * 1000 / batch)
        wall.append((time.perf_counter() - started) * 1000 / batch)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640, 480, 416, 320])
    parser.add_argument(
        "--fps", type=float, default=10.0, help="Frames analysed per second of video (10: all)."
    )
    parser.add_argument("--timing-frames", type=int, default=96)
    parser.add_argument(
        "--timing-only", action="store_true", help="Skip the person-seconds (exports as needed)."
    )
    args = parser.parse_args()
    video = footage()
    camera = demo_camera(video).model_copy(update={"fps": args.fps})
    print(f"# int8 vs fp32 on {video.name} at {args.fps:g} fps, demo site zones; {machine()}")
    base = bench_settings(model_cache=BENCH_HOME / "models", backend="openvino", pose_model=None)
    models: dict[tuple[int, str], Path] = {}
    seconds: dict[tuple[int, str], dict[str, float]] = {}
    for imgsz in args.imgsz:
        settings = base.model_copy(update={"imgsz": imgsz})
        for precision in PRECISIONS:
            models[imgsz, precision] = export(settings, precision, video)
            if args.timing_only:
                continue
            started = time.monotonic()
            seconds[imgsz, precision] = zone_person_seconds(settings, models[imgsz, precision], camera, video)
            print(f"# imgsz {imgsz} {precision}: counted in {time.monotonic() - started:.0f} s")
        if args.timing_only:
            continue
        verdict = compare(seconds[imgsz, "fp32"], seconds[imgsz, "int8"])
        print(f"imgsz {imgsz:3d}  person-seconds per zone, int8 vs fp32 (within {TOLERANCE:.0%}):")
        for zone, figures in verdict["zones"].items():
            print(
                f"  {zone:<14} fp32 {figures['fp32']:7.1f}  int8 {figures['int8']:7.1f}  "
                f"difference {figures['difference']:6.2%}"
            )
        print(f"imgsz {imgsz:3d}  int8 {'holds' if verdict['holds'] else 'DOES NOT hold'}")
    if 640 in args.imgsz and not args.timing_only:
        print("person-seconds per zone, fp32 at each size vs fp32 at 640:")
        for imgsz in args.imgsz:
            diffs = compare(seconds[640, "fp32"], seconds[imgsz, "fp32"])["zones"]
            cells = "  ".join(f"{zone} {figures['difference']:6.2%}" for zone, figures in diffs.items())
            print(f"  imgsz {imgsz:3d}  {cells}")
    images = frames(args.timing_frames)
    timings: dict[tuple[int, str, int], tuple[float, float]] = {}
    for (imgsz, precision), model in models.items():
        detector = Detector(base.model_copy(update={"imgsz": imgsz, "model": str(model)}))
        for batch in (1, 8):
            timings[imgsz, precision, batch] = ms_per_frame(detector, images, batch)
    reference = (timings.get((640, "fp32", 1)) or next(iter(timings.values())))[0]
    print(
        "ms per frame through the Detector, median CPU time (every thread) and wall time; "
        "ratio of CPU time to fp32 at 640 one frame at a time, same run:"
    )
    for (imgsz, precision, batch), (cpu, wall) in timings.items():
        print(
            f"  imgsz {imgsz:3d}  {precision}  batch {batch}  CPU {cpu:6.1f} ms  wall {wall:6.1f} ms  "
            f"ratio {cpu / reference:4.2f}"
        )


if __name__ == "__main__":
    main()
