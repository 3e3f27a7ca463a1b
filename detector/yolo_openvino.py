"""YOLOv8 exported to OpenVINO IR, run by OpenVINO alone: no PyTorch, no Ultralytics.

What a store box runs. The policy, which gives Ultralytics' boxes on the same IR (within a
pixel and 0.01 of confidence, tests/detector/test_lean_runtime.py):

- Input: each BGR image is letterboxed into the IR's input size (read from the model; a
  dynamic IR takes `imgsz`, padded only up to a multiple of the stride, as Ultralytics does
  for dynamic models), resized with bilinear interpolation, centred on grey 114. The
  compiled model takes that uint8 BGR image as it is: BGR->RGB, /255 and NCHW are done in
  the graph (OpenVINO's preprocessing), not in numpy.
- Compiled once, on the CPU, with every core this process may use: the LATENCY hint (one
  stream, threads = cores) when one image runs at a time. Several images (`run`): in flight
  at once on an AsyncInferQueue of a model compiled for THROUGHPUT with one stream per core,
  one thread each, so every core is used and none is waited for. Not one real batch on the
  LATENCY compilation, though the exports' batch dimension is free: its threads meet at every
  layer, so a core taken by anything else (an evidence clip's encoding, a flow) stalls the
  whole batch; and on a quiet 2-core AVX-512 box the int8 yolov8n at 640 ran 51 frames/s
  this way against 45 in batches of 4 and 39 one at a time. Only an IR of a static batch of
  N takes every call as one batch (one image too, padded to N). `run_on_stream` serves callers
  on several threads at once (the cameras of `detect`), one image each on a free stream of the
  same THROUGHPUT compilation: up to one per core run together and none waits for another's.
  One grey image goes through the model as it loads, on the loading thread, before any camera
  thread can call it (why: `OpenVinoYolo.__init__`).
- Output (1, 4+nc[+extra], anchors): boxes as centre and size in input pixels, then class
  scores, then (pose) keypoints. A box keeps its best class if that score is above `conf`
  and the class is wanted; class-aware greedy NMS at IoU 0.7 (Ultralytics' default for
  predict), at most 300 boxes, most confident first; then scaled back to the image.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

PAD_VALUE = 114
STRIDE = 32
NMS_IOU = 0.7
MAX_DET = 300
_CLASS_OFFSET = 7680.0  # larger than any image side: boxes of different classes never overlap


@dataclass(frozen=True)
class Fit:
    """How an image was letterboxed into the model's input: per-axis gain, then padding."""

    gain_x: float
    gain_y: float
    pad_x: int
    pad_y: int
    width: int
    height: int


def letterbox(image: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, Fit]:
    """The image resized to fit (h, w) keeping its aspect, centred on grey: (canvas, fit)."""
    height, width = image.shape[:2]
    gain = min(shape[0] / height, shape[1] / width)
    new_w, new_h = max(round(width * gain), 1), max(round(height * gain), 1)
    pad_x, pad_y = round((shape[1] - new_w) / 2 - 0.1), round((shape[0] - new_h) / 2 - 0.1)
    canvas = np.full((shape[0], shape[1], 3), PAD_VALUE, np.uint8)
    resized = image if (new_w, new_h) == (width, height) else cv2.resize(image, (new_w, new_h))
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Fit(new_w / width, new_h / height, pad_x, pad_y, width, height)


def rect_shape(height: int, width: int, imgsz: int) -> tuple[int, int]:
    """The input size a dynamic IR gets: `imgsz` on the long side, padded to the stride."""
    gain = imgsz / max(height, width)
    h, w = max(round(height * gain), 1), max(round(width * gain), 1)
    return -(-h // STRIDE) * STRIDE, -(-w // STRIDE) * STRIDE


def to_image(xyxy: np.ndarray, fit: Fit) -> np.ndarray:
    """Boxes (N,4) in input pixels back into the image's pixels, clipped to it."""
    out = xyxy.astype(np.float32, copy=True)
    out[:, [0, 2]] = np.clip((out[:, [0, 2]] - fit.pad_x) / fit.gain_x, 0, fit.width)
    out[:, [1, 3]] = np.clip((out[:, [1, 3]] - fit.pad_y) / fit.gain_y, 0, fit.height)
    return out


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS (a box is dropped when IoU > `iou` with a kept one), best first."""
    order = np.argsort(-scores, kind="stable")
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        top_left = np.maximum(xyxy[best, :2], xyxy[rest, :2])
        bottom_right = np.minimum(xyxy[best, 2:], xyxy[rest, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        overlap = inter / np.maximum(area[best] + area[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, np.int64)


@dataclass(frozen=True)
class Decoded:
    """One image's boxes in input pixels: xyxy (N,4), conf (N,), cls (N,), extra (N,E) (keypoints)."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    extra: np.ndarray


def decode(
    output: np.ndarray, nc: int, conf: float, classes: np.ndarray | None, iou: float = NMS_IOU
) -> Decoded:
    """YOLOv8's output of one image (4+nc+E, anchors) as boxes: best class above `conf` and
    wanted, class-aware NMS, at most MAX_DET, most confident first."""
    scores = output[4 : 4 + nc]
    best = scores.max(axis=0)
    candidates = np.flatnonzero(best > conf)
    cls = scores[:, candidates].argmax(axis=0).astype(np.int32)
    if classes is not None:
        wanted = np.isin(cls, classes)
        candidates, cls = candidates[wanted], cls[wanted]
    rows = output[:, candidates]
    xy, half = rows[0:2].T, rows[2:4].T / 2
    xyxy = np.concatenate([xy - half, xy + half], axis=1).astype(np.float32)
    score = best[candidates].astype(np.float32)
    keep = nms(xyxy + cls[:, None].astype(np.float32) * _CLASS_OFFSET, score, iou)[:MAX_DET]
    return Decoded(xyxy[keep], score[keep], cls[keep], rows[4 + nc :, keep].T.astype(np.float32))


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ir_file(folder: Path) -> Path:
    """The IR's .xml in an exported model folder (or the .xml itself)."""
    if folder.suffix == ".xml":
        return folder
    found = sorted(folder.glob("*.xml"))
    if not found:
        msg = f"no OpenVINO IR (.xml) in {folder}"
        raise FileNotFoundError(msg)
    return found[0]


def read_metadata(folder: Path) -> dict[str, Any]:
    """Ultralytics' metadata.yaml of an exported model (names, task, kpt_shape), or {}."""
    path = (folder.parent if folder.suffix == ".xml" else folder) / "metadata.yaml"
    if not path.exists():
        return {}
    loaded = yaml.safe_load(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


class OpenVinoYolo:
    """A YOLOv8 IR compiled for this CPU; `run` gives each image's raw output and its fit."""

    def __init__(self, folder: Path, imgsz: int, threads: int | None = None, streams: int = 0) -> None:
        import openvino as ov

        xml = ir_file(folder)
        meta = read_metadata(folder)
        self.names: dict[int, str] = {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
        self.task = str(meta.get("task", "detect"))
        self.imgsz = imgsz
        core = ov.Core()
        model = core.read_model(str(xml))
        shape = model.inputs[0].get_partial_shape()
        self.batch = shape[0].get_length() if shape[0].is_static else None
        static = shape[2].is_static and shape[3].is_static
        self.input_hw = (shape[2].get_length(), shape[3].get_length()) if static else None
        channels = int(model.outputs[0].get_partial_shape()[1].get_length())
        self.nc = len(self.names) or channels - 4
        kpt_shape = meta.get("kpt_shape")
        self.kpt_shape = (int(kpt_shape[0]), int(kpt_shape[1])) if kpt_shape else None
        ppp = ov.preprocess.PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
            ov.preprocess.ColorFormat.BGR
        )
        ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(
            ov.preprocess.ColorFormat.RGB
        ).scale(255.0)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        model = ppp.build()
        self.threads = threads or cores()
        self._single: Any = core.compile_model(
            model,
            "CPU",
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1},
        )
        self._request: Any = self._single.create_infer_request()
        # One image through it here, on the loading thread, before any other thread can call:
        # OpenVINO's Python binding sets up its numpy bridge on first use in a C++ static
        # initialiser that runs Python code. Two threads there at once deadlock, one holding the
        # initialiser and waiting for the GIL, the other holding the GIL and waiting for the
        # initialiser (seen as `detect` cameras stuck at their first frame; a test starts the
        # threads together in fresh processes).
        height, width = self.input_hw or rect_shape(imgsz, imgsz, imgsz)
        self._infer(self._request, np.full((self.batch or 1, height, width, 3), PAD_VALUE, np.uint8))
        self._model: Any = model
        self._core: Any = core
        self.streams = streams or min(self.threads, 4)  # for images in flight at once
        self._throughput: Any = None  # the THROUGHPUT compilation, made when first needed
        self._many: Any = None  # its AsyncInferQueue, made on the first `run` of several images
        self._free: queue.Queue[Any] | None = None  # its requests for `run_on_stream`, one per stream
        self._lock = threading.Lock()

    def close(self) -> None:
        """Let go of OpenVINO's objects, in order: the requests in flight finished, then the
        queue, the requests, the compiled models and the Core. Left to the interpreter's exit,
        they would go in any order while OpenVINO's threads still run (a SIGABRT was seen).
        Calls after it raise; closing again does nothing."""
        with self._lock:
            if self._many is not None:
                self._many.wait_all()
            if self._free is not None:  # every stream's request back: no call is running on one
                for _ in range(self.streams):
                    self._free.get()
                for _ in range(self.streams):  # ... and a caller still waiting for one is told
                    self._free.put(None)
            self._free = None
            self._many = None
            self._throughput = None
            self._request = None
            self._single = None
            self._model = None
            self._core = None

    def input_shape(self, image: np.ndarray) -> tuple[int, int]:
        """The (h, w) this image is letterboxed to."""
        if self.input_hw is not None:
            return self.input_hw
        return rect_shape(image.shape[0], image.shape[1], self.imgsz)

    def run(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, Fit]]:
        """Each image's raw output (channels, anchors) with how it was letterboxed, in order."""
        if not images:
            return []
        with self._lock:
            if self._core is None:
                msg = "the model was closed"
                raise RuntimeError(msg)
            if len(images) == 1 and self.batch in (1, None):
                canvas, fit = letterbox(images[0], self.input_shape(images[0]))
                return [(self._infer(self._request, canvas[None])[0], fit)]
            if self.batch not in (1, None):
                return self._run_batched(images)
            return self._run_async(images)

    @staticmethod
    def _infer(request: Any, tensor: np.ndarray) -> np.ndarray:
        request.infer({0: tensor})
        return np.array(request.get_output_tensor(0).data, copy=True)

    def _run_batched(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, Fit]]:
        shapes = {self.input_shape(image) for image in images}
        shape = shapes.pop() if len(shapes) == 1 else (self.imgsz, self.imgsz)
        fitted = [letterbox(image, shape) for image in images]
        size = self.batch or len(images)
        out: list[tuple[np.ndarray, Fit]] = []
        for start in range(0, len(fitted), size):
            chunk = [canvas for canvas, _ in fitted[start : start + size]]
            tensor = np.zeros((size, *shape, 3), np.uint8)
            tensor[: len(chunk)] = np.stack(chunk)
            outputs = self._infer(self._request, tensor)
            out += [(outputs[i], fit) for i, (_, fit) in enumerate(fitted[start : start + len(chunk)])]
        return out

    def _compiled_for_throughput(self) -> Any:
        """The model compiled with one stream per core, one thread each (under `_lock`)."""
        if self._throughput is None:
            self._throughput = self._core.compile_model(
                self._model,
                "CPU",
                {
                    "PERFORMANCE_HINT": "THROUGHPUT",
                    "NUM_STREAMS": self.streams,
                    "INFERENCE_NUM_THREADS": self.threads,
                },
            )
        return self._throughput

    def run_on_stream(self, image: np.ndarray) -> tuple[np.ndarray, Fit]:
        """One image on a stream of its own: called from several threads at once, up to
        `streams` images run together, each on one core, and none waits for another's; a
        caller beyond that waits for a stream to be free. (`run` is one call at a time.)"""
        with self._lock:
            if self._core is None:
                msg = "the model was closed"
                raise RuntimeError(msg)
            if self.batch not in (1, None):  # an IR of a static batch takes its batch, one image too
                return self._run_batched([image])[0]
            if self._free is None:
                compiled = self._compiled_for_throughput()
                self._free = queue.Queue()
                for _ in range(self.streams):
                    self._free.put(compiled.create_infer_request())
            free = self._free
        request = free.get()
        if request is None:  # closed while waiting
            free.put(None)
            msg = "the model was closed"
            raise RuntimeError(msg)
        try:
            canvas, fit = letterbox(image, self.input_shape(image))
            return self._infer(request, canvas[None])[0], fit
        finally:
            free.put(request)

    def _run_async(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, Fit]]:
        import openvino as ov

        if self._many is None:
            self._many = ov.AsyncInferQueue(self._compiled_for_throughput(), self.streams)
        outputs: list[np.ndarray | None] = [None] * len(images)

        def done(request: Any, index: int) -> None:
            outputs[index] = np.array(request.get_output_tensor(0).data[0], copy=True)

        self._many.set_callback(done)
        fits = []
        try:
            for index, image in enumerate(images):
                canvas, fit = letterbox(image, self.input_shape(image))
                fits.append(fit)
                self._many.start_async({0: canvas[None]}, index)
        finally:  # nothing may still be writing into `outputs` when this returns or raises
            self._many.wait_all()
        got = [output for output in outputs if output is not None]
        if len(got) != len(images):
            # A shorter list would give every later image the boxes of the one before it.
            missing = [index for index, output in enumerate(outputs) if output is None]
            msg = f"OpenVINO gave no output for image(s) {missing} of {len(images)}"
            raise RuntimeError(msg)
        return list(zip(got, fits, strict=True))
