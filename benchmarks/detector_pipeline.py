"""Pipeline efficiency: decode -> infer -> track -> encode -> publish, vs bare inference.

Target (issue 3): end-to-end analysed frames/s / bare model inference frames/s >= 0.90,
on the same frames, in the same run, publishing to the real Kafka broker.
Usage: python -m benchmarks.detector_pipeline [--frames 200] [--backend openvino pytorch]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from benchmarks.common import bench_settings, footage, frames, machine, services
from detector.model import Detector
from detector.publisher import Publisher
from detector.sources import FileSource
from detector.tracking import CameraTracker
from shrinkwatch.contracts import Detection


def bare_fps(detector: Detector, images: list) -> float:
    for image in images[:5]:
        detector.infer(image)
    start = time.perf_counter()
    for image in images:
        detector.infer(image)
    return len(images) / (time.perf_counter() - start)


def pipeline_fps(detector: Detector, settings, count: int) -> tuple[float, int]:
    publisher = Publisher(settings)
    tracker = CameraTracker(detector.names)
    source = FileSource(str(footage()), 5.0, realtime=False, loop=True)
    stop = threading.Event()
    done = 0
    start = time.perf_counter()
    for frame in source.frames(stop):
        height, width = frame.image.shape[:2]
        objects = tracker.update(detector.infer(frame.image), width, height)
        publisher.publish(
            Detection(
                camera_id="cam-bench",
                store_id="bench",
                frame_id=done,
                ts=frame.ts,
                frame_w=width,
                frame_h=height,
                objects=objects,
            )
        )
        done += 1
        if done == count:
            break
    publisher.close()
    elapsed = time.perf_counter() - start
    return done / elapsed, publisher.delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", nargs="+", default=["openvino", "pytorch"])
    args = parser.parse_args()
    print(f"# pipeline efficiency on {args.frames} vtest.avi frames at 640; {machine()}")
    settings = bench_settings()
    with services(settings) as settings:
        images = frames(args.frames)
        for backend in args.backend:
            detector = Detector(bench_settings(backend=backend, topic_prefix=settings.topic_prefix))
            # Interleaved rounds, medians: the machine is shared and noisy.
            bares, e2es = [], []
            for _ in range(args.rounds):
                bares.append(bare_fps(detector, images))
                e2e, delivered = pipeline_fps(detector, settings, args.frames)
                e2es.append(e2e)
            bare, e2e = statistics.median(bares), statistics.median(e2es)
            print(
                f"{backend:9s} bare inference {bare:6.1f} frames/s | end to end {e2e:6.1f} frames/s "
                f"({delivered} delivered to Kafka per round) | ratio {e2e / bare:.2f} "
                f"(target >= 0.90; medians of {args.rounds} rounds)"
            )


if __name__ == "__main__":
    main()
