"""Inference backends at 640 (and 320): frames/s of ONNX Runtime and OpenVINO vs PyTorch.

Target (issue 3): OpenVINO / PyTorch >= 2.5 at 640 on this CPU. Same frames, same run,
through the same Detector class the readers use (pre-processing and NMS included).
Usage: python -m benchmarks.detector_backends [--frames 60] [--imgsz 640 320]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import bench_settings, frames, machine
from detector.model import Detector
from shrinkwatch.paths import shared_file


def fps(detector: Detector, images: list, warmup: int = 5) -> float:
    for image in images[:warmup]:
        detector.infer(image)
    start = time.perf_counter()
    for image in images:
        detector.infer(image)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640, 320])
    args = parser.parse_args()
    images = frames(args.frames)
    print(f"# detector backends on {len(images)} vtest.avi frames; {machine()}")
    for imgsz in args.imgsz:
        results = {}
        for backend in ("pytorch", "onnx", "openvino"):
            detector = Detector(bench_settings(backend=backend, imgsz=imgsz))
            results[backend] = fps(detector, images)
            print(
                f"imgsz {imgsz:4d}  {backend:9s} {results[backend]:7.1f} frames/s "
                f"({1000 / results[backend]:.1f} ms/frame)"
            )
        int8 = shared_file("models", "yolov8n_int8_openvino_model")
        if imgsz == 640 and int8 is not None:
            results["openvino-int8"] = fps(Detector(bench_settings(model=str(int8), imgsz=640)), images)
            print(
                f"imgsz  640  ov-int8   {results['openvino-int8']:7.1f} frames/s "
                f"({1000 / results['openvino-int8']:.1f} ms/frame; shared int8 IR)"
            )
        base = results["pytorch"]
        print(
            f"imgsz {imgsz:4d}  ratio OpenVINO/PyTorch = {results['openvino'] / base:.2f}   "
            f"ONNX/PyTorch = {results['onnx'] / base:.2f}"
            + (
                f"   OpenVINO-int8/PyTorch = {results['openvino-int8'] / base:.2f}"
                if "openvino-int8" in results
                else ""
            )
            + ("   (target >= 2.5)" if imgsz == 640 else "")
        )


if __name__ == "__main__":
    main()
