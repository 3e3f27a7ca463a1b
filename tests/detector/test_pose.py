"""Keypoints from the optional pose model, matched to tracked persons."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import ultralytics

from detector.pose import PoseModel, attach_keypoints, iou_matrix
from shrinkwatch.paths import shared_file
from tests.factories import person

POSE = shared_file("models", "yolov8n-pose_int8_openvino_model")
ZIDANE = Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"


def kpts(x: float, y: float) -> np.ndarray:
    return np.array([[x, y, 0.9]] * 17, np.float32)


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 2, 2]], np.float32)
    b = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 6, 6]], np.float32)
    assert iou_matrix(a, b)[0].tolist() == pytest.approx([1.0, 1 / 7, 0.0])


def test_each_pose_goes_to_the_person_it_overlaps() -> None:
    left, right = person(1, (0.2, 0.8)), person(2, (0.7, 0.8))
    bag = left.model_copy(update={"class_name": "handbag", "class_id": 26, "track_id": 3})
    poses = np.array([right.box, left.box, [0.9, 0.0, 1.0, 0.1]], np.float32)
    out = attach_keypoints([left, right, bag], poses, np.stack([kpts(0.7, 0.7), kpts(0.2, 0.7), kpts(0, 0)]))
    assert out[0].keypoints is not None and out[0].keypoints[0][0] == pytest.approx(0.2)
    assert out[1].keypoints is not None and out[1].keypoints[0][0] == pytest.approx(0.7)
    assert out[2].keypoints is None  # not a person
    assert len(out[0].keypoints) == 17


def test_no_overlap_no_keypoints() -> None:
    lone = person(1, (0.2, 0.8))
    out = attach_keypoints([lone], np.array([[0.8, 0.0, 0.9, 0.2]], np.float32), kpts(0.85, 0.1)[None])
    assert out[0].keypoints is None


@pytest.mark.skipif(POSE is None, reason="needs ../shared/models/yolov8n-pose_int8_openvino_model")
def test_pose_model_on_zidane(tmp_path: Path) -> None:
    image = cv2.imread(str(ZIDANE))
    assert image is not None
    boxes, points = PoseModel(POSE, 640, 0.25).poses(image)  # type: ignore[arg-type]
    assert len(boxes) >= 2 and points.shape[1:] == (17, 3)
    assert ((points[..., :2] >= 0) & (points[..., :2] <= 1)).all()
