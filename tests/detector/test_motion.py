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


def test_the_gate_steps_aside_where_it_does_not_pay_and_looks_again() -> None:
    """Busy footage (something moves in every frame): after `adapt_after` frames without a
    skip, frames go to the model unexamined for `pause_s`; then the gate looks again and
    skips still frames."""
    gate = MotionGate(max_skip_s=100, adapt_after=10, pause_s=5.0)
    busy = [gate.should_infer(scene(100 + 20 * (i % 2)), now=i * 0.2) for i in range(10)]
    assert all(busy) and gate.skipped == 0 and gate.paused == 0
    # Standing aside: every frame goes, a still one too, without being examined.
    assert all(gate.should_infer(scene(100), now=2.0 + i * 0.2) for i in range(20))
    assert gate.paused == 20 and gate.skipped == 0
    # After pause_s it looks again: the first frame is the new reference, still ones are skipped.
    assert gate.should_infer(scene(100), now=7.2)
    assert not gate.should_infer(scene(100), now=7.4)
    assert gate.paused == 20 and gate.skipped == 1


def test_a_gate_that_skips_keeps_gating() -> None:
    gate = MotionGate(max_skip_s=100, adapt_after=10, pause_s=5.0)
    decisions = [gate.should_infer(scene(100 + 30 * (i // 8)), now=i * 0.2) for i in range(40)]
    assert gate.paused == 0
    assert decisions.count(False) == gate.skipped >= 30  # a move every 8 frames: the rest skipped
