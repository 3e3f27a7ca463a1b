"""Motion gating: skip inference on frames where nothing moved.

Each frame is shrunk to a small blurred grey image and compared with the one at the last
inference. When less than `min_area` of it changed, the frame is not sent to the model:
the previous objects are published again (nothing moved, so they are where they were) and
the tracker is not advanced, so tracks stay alive. At least one inference happens every
`max_skip_s` so that slow changes are never missed for long.
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
    checked: int = 0
    skipped: int = 0
    _reference: np.ndarray | None = field(default=None, repr=False)
    _last_inference: float = field(default=float("-inf"), repr=False)

    def _thumb(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width)))
        grey = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
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
        thumb = self._thumb(image)
        if (
            self._reference is not None
            and now - self._last_inference < self.max_skip_s
            and self._changed_share(thumb) < self.min_area
        ):
            self.skipped += 1
            return False
        self._reference = thumb
        self._last_inference = now
        return True
