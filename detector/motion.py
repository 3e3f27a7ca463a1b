"""Motion gating: skip inference on frames where nothing moved.

Each frame is shrunk to a small blurred grey image and compared with the one at the last
inference. When less than `min_area` of it changed, the frame is not sent to the model:
the previous objects are published again (nothing moved, so they are where they were) and
the tracker is not advanced, so tracks stay alive. At least one inference happens every
`max_skip_s` so that slow changes are never missed for long.

The gate must never cost more than it saves (issue 21: on busy footage it skips nothing and
its own work is pure cost). So it is cheap: the image is shrunk bilinearly, sampling a few
pixels per thumbnail pixel (0.12 ms for a 768x576 frame; averaging all of them took 1.2 ms,
best of 15 on a busy AMD EPYC with AVX-512). And it steps aside where it does not pay: when
fewer than `min_skip_share` (5 %) of a camera's last `adapt_after` (50) frames were skipped,
every frame goes to the model unexamined for `pause_s` (20 s), and then the gate looks again
(the scene may have gone quiet).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

THUMB_WIDTH = 128


@dataclass
class MotionGate:
    """Decides, frame by frame, whether the model needs to look."""

    min_area: float = 0.003  # share of the image that must change
    pixel_delta: int = 18  # grey levels a pixel must change by to count
    max_skip_s: float = 2.0
    enabled: bool = True
    adapt_after: int = 50  # frames between two looks at whether gating pays (0: never step aside)
    min_skip_share: float = 0.05
    pause_s: float = 20.0
    checked: int = 0
    skipped: int = 0
    paused: int = 0  # frames sent to the model unexamined while the gate stood aside
    _reference: np.ndarray | None = field(default=None, repr=False)
    _last_inference: float = field(default=float("-inf"), repr=False)
    _window: tuple[int, int] = field(default=(0, 0), repr=False)  # (checked, skipped) since the last look
    _paused_until: float = field(default=float("-inf"), repr=False)

    def _thumb(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width)))
        # Bilinear samples a few pixels per thumbnail pixel (area averaging reads them all:
        # ten times the time); the blur then evens out what sampling leaves of sensor noise.
        grey = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def _changed_share(self, thumb: np.ndarray) -> float:
        if self._reference is None:
            return 1.0
        diff = cv2.absdiff(thumb, self._reference)
        return float(np.count_nonzero(diff > self.pixel_delta)) / diff.size

    def should_infer(self, image: np.ndarray, now: float | None = None) -> bool:
        """True if this frame must go to the model (and it then becomes the reference)."""
        now = time.monotonic() if now is None else now
        self.checked += 1
        if not self.enabled:
            return True
        if now < self._paused_until:
            self.paused += 1
            return True
        thumb = self._thumb(image)
        skip = (
            self._reference is not None
            and now - self._last_inference < self.max_skip_s
            and self._changed_share(thumb) < self.min_area
        )
        self._judge(now, skip)
        if skip:
            self.skipped += 1
            return False
        self._reference = thumb
        self._last_inference = now
        return True

    def _judge(self, now: float, skip: bool) -> None:
        """Count this frame; every `adapt_after` frames, stand aside for `pause_s` if too few
        were skipped (the reference is dropped: the first frame after looks afresh)."""
        if self.adapt_after <= 0:
            return
        checked, skipped = self._window[0] + 1, self._window[1] + skip
        if checked < self.adapt_after:
            self._window = (checked, skipped)
            return
        self._window = (0, 0)
        if skipped < self.min_skip_share * checked:
            self._paused_until = now + self.pause_s
            self._reference = None
