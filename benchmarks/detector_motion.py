"""Motion gating: inference calls saved, and person detections kept, vs no gating.

Target (issue 3): >= 0.98 of person-frames kept. Two footages, each run without gating, with
the gate as it is (stepping aside where it does not pay, detector.motion) and with a gate that
always looks, in the same run: the sample video as it is (people walk through every frame),
and the same video with two quiet spells (its empty background, with sensor noise) as a shop
has between customers. The gate's own time per frame is printed (issue 21: it must never cost
capacity).
Usage: python -m benchmarks.detector_motion [--imgsz 640]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import bench_settings, frames, machine
from detector.model import Detector
from detector.motion import MotionGate
from detector.tracking import CameraTracker

FPS = 5.0


def quiet_spell(video: list[np.ndarray], count: int, seed: int) -> list[np.ndarray]:
    """The scene without anyone (per-pixel median), with camera noise."""
    background = np.median(np.stack(video[::8]), axis=0).astype(np.int16)
    rng = np.random.default_rng(seed)
    return [
        np.clip(background + rng.normal(0, 2.0, background.shape), 0, 255).astype(np.uint8)
        for _ in range(count)
    ]


def run(detector: Detector, footage: list[np.ndarray], gate: MotionGate) -> tuple[int, list[int], float]:
    """(inference calls, persons published per frame, the gate's seconds per frame)."""
    tracker = CameraTracker(detector.names)
    calls = 0
    persons: list[int] = []
    objects: list = []
    gate_s = 0.0
    for i, image in enumerate(footage):
        start = time.perf_counter()
        infer = gate.should_infer(image, now=i / FPS)
        gate_s += time.perf_counter() - start
        if infer:
            calls += 1
            height, width = image.shape[:2]
            objects = tracker.update(detector.infer(image), width, height)
        persons.append(sum(1 for o in objects if o.class_name == "person"))
    return calls, persons, gate_s / len(footage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()
    detector = Detector(bench_settings(backend="openvino", imgsz=args.imgsz))
    video = frames(398)
    footages = {
        "vtest.avi as it is": video,
        "vtest.avi with quiet spells": video[:200]
        + quiet_spell(video, 100, 1)
        + video[200:]
        + quiet_spell(video, 100, 2),
    }
    print(f"# motion gating at {args.imgsz}, {FPS:g} fps; {machine()}")
    gates = {"gate (steps aside)": MotionGate, "gate (always looks)": lambda: MotionGate(adapt_after=0)}
    for name, footage in footages.items():
        base_calls, base_persons, _ = run(detector, footage, MotionGate(enabled=False))
        for label, make in gates.items():
            calls, persons, gate_s = run(detector, footage, make())
            kept = sum(persons) / max(sum(base_persons), 1)
            frames_with = sum(1 for p in base_persons if p)
            frames_kept = sum(1 for p, b in zip(persons, base_persons, strict=True) if b and p) / max(
                frames_with, 1
            )
            print(
                f"{name:28s} {label:20s} {len(footage)} frames | inference calls {calls} vs {base_calls} "
                f"without gating (saved {1 - calls / base_calls:.1%}) | gate {gate_s * 1000:.2f} ms/frame | "
                f"person detections kept {kept:.3f}, frames with people kept {frames_kept:.3f} "
                "(target >= 0.98)"
            )


if __name__ == "__main__":
    main()
