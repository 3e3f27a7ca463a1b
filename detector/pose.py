"""Optional pose model: COCO keypoints attached to tracked persons.

The pose model (e.g. ../shared/models/yolov8n-pose_int8_openvino_model) runs on frames
that have persons; each pose is matched to the tracked person whose box overlaps it most
(IoU >= 0.4), and that person gets the 17 keypoints, normalised, with confidences.

An OpenVINO IR runs with OpenVINO alone (detector.yolo_openvino: the same letterbox, decoding
and NMS as the detector, the keypoints that follow each box scaled back with it); .pt or .onnx
weights run through Ultralytics, imported only then.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from shrinkwatch.contracts import DetectedObject

MIN_IOU = 0.4


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4) with every box in b (M,4), both xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def attach_keypoints(
    objects: list[DetectedObject], pose_boxes: np.ndarray, keypoints: np.ndarray
) -> list[DetectedObject]:
    """Objects with keypoints added to persons; pose_boxes (M,4) and keypoints (M,17,3) normalised."""
    persons = [i for i, o in enumerate(objects) if o.class_name == "person"]
    if not persons or len(pose_boxes) == 0:
        return objects
    ious = iou_matrix(np.array([objects[i].box for i in persons], np.float32), pose_boxes)
    out = list(objects)
    used: set[int] = set()
    # Greedy, best overlaps first: each pose goes to at most one person.
    for flat in np.argsort(-ious, axis=None):
        p, k = np.unravel_index(flat, ious.shape)
        if ious[p, k] < MIN_IOU:
            break
        index = persons[int(p)]
        if int(k) in used or out[index].keypoints is not None:
            continue
        used.add(int(k))
        points = [
            (
                round(float(np.clip(x, 0, 1)), 4),
                round(float(np.clip(y, 0, 1)), 4),
                round(float(np.clip(c, 0, 1)), 3),
            )
            for x, y, c in keypoints[int(k)]
        ]
        out[index] = out[index].model_copy(update={"keypoints": points})
    return out


def _no_poses() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0, 17, 3), np.float32)


class PoseModel:
    """A YOLOv8-pose model, shared by the cameras of the process."""

    def __init__(self, path: Path, imgsz: int, conf: float) -> None:
        self.imgsz, self.conf = imgsz, conf
        self._lock = threading.Lock()
        self.openvino: Any = None
        self.model: Any = None
        if path.is_dir() and any(path.glob("*.xml")):
            from detector.yolo_openvino import OpenVinoYolo

            self.openvino = OpenVinoYolo(path, imgsz)
        else:
            from ultralytics import YOLO

            self.model = YOLO(str(path), task="pose")

    def close(self) -> None:
        """Let go of an OpenVINO model (OpenVinoYolo.close); Ultralytics' ends with the interpreter."""
        if self.openvino is not None:
            self.openvino.close()

    def poses(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (M,4), keypoints (M,17,3)), normalised to 0..1."""
        if self.openvino is not None:
            return self._openvino_poses(image)
        with self._lock:
            result = self.model.predict(image, imgsz=self.imgsz, conf=self.conf, verbose=False)[0]
        if result.keypoints is None or len(result.boxes) == 0:
            return _no_poses()
        boxes = result.boxes.xyxyn.cpu().numpy().astype(np.float32)
        xy = result.keypoints.xyn.cpu().numpy()
        conf = result.keypoints.conf
        conf = conf.cpu().numpy() if conf is not None else np.ones(xy.shape[:2], np.float32)
        return boxes, np.concatenate([xy, conf[..., None]], axis=2).astype(np.float32)

    def _openvino_poses(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from detector.yolo_openvino import decode, to_image

        [(output, fit)] = self.openvino.run([image])
        found = decode(output, 1, self.conf, None)
        if len(found.conf) == 0:
            return _no_poses()
        scale = np.array([fit.width, fit.height, fit.width, fit.height], np.float32)
        boxes = to_image(found.xyxy, fit) / scale
        points = found.extra.reshape(len(found.conf), -1, 3).copy()
        xy = to_image(np.concatenate([points[..., :2], points[..., :2]], axis=2).reshape(-1, 4), fit)
        points[..., :2] = xy[:, :2].reshape(points.shape[0], -1, 2) / scale[:2]
        return boxes.astype(np.float32), points.astype(np.float32)
