"""Motion gating decisions on synthetic and real frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.motion import MotionGate
from tests.support import VTEST


def scene(x: int) -> np.ndarray:
    image = np.full((576, 768, 3), 90, np.uint8)
    cv2.rectangle(image, (x, 200), (x + 40, 330), (20, 20, 160), -1)  # a person-sized blob
    return image


def test_still_frames_are_skipped_and_motion_is_not() -> None:
    gate = MotionGate(max_skip_s=10)
    assert gate.should_infer(scene(100), now=0.0)  # the first frame always goes
    assert not gate.should_infer(scene(100), now=0.2)
    noisy = scene(100).astype(np.int16) + np.random.default_rng(1).integers(-4, 5, (576, 768, 3))
    assert not gate.should_infer(np.clip(noisy, 0, 255).astype(np.uint8), now=0.4)  # sensor noise
    assert gate.should_infer(scene(130), now=0.6)  # it moved
    assert (gate.checked, gate.skipped) == (4, 2)


def test_inference_at_least_every_max_skip() -> None:
    gate = MotionGate(max_skip_s=2.0)
    assert gate.should_infer(scene(100), now=0.0)
    assert not gate.should_infer(scene(100), now=1.9)
    assert gate.should_infer(scene(100), now=2.1)


def test_slow_drift_accumulates_against_the_reference() -> None:
    gate = MotionGate(max_skip_s=100)
    gate.should_infer(scene(100), now=0)
    decisions = [gate.should_infer(scene(100 + step), now=step) for step in range(1, 30)]
    assert any(decisions)  # small steps add up to a change the model looks at


def test_disabled_gate_always_infers() -> None:
    gate = MotionGate(enabled=False)
    assert all(gate.should_infer(scene(100), now=t) for t in range(5))


@pytest.mark.skipif(VTEST is None, reason="needs vtest.avi")
def test_people_walking_are_never_gated() -> None:
    cap = cv2.VideoCapture(str(VTEST))
    gate = MotionGate()
    for i in range(100):
        ok, image = cap.read()
        assert ok
        gate.should_infer(image, now=i * 0.1)
    cap.release()
    assert gate.skipped < 10  # 2 to 10 people walk through every frame
