"""Batched inference across cameras: one model call for the frames that are ready.

Each camera keeps its own thread (its source, motion gate, tracker, privacy zones and
publishing, detector.runner); where one would call the model for its frame, it hands the
frame to the scheduler and waits. The scheduler's one thread takes every frame waiting when
the model is free, at most `most` of them (Settings.infer_batch), and runs them through the
model in one call (Detector.infer_faint_batch); each camera gets its own frame's detections
back and carries on as it would have. Nothing waits for a batch to fill: a frame that is
alone goes alone, so batching adds no latency; under load, the frames that queued while the
model was busy go together.

A batch the model fails on is run again frame by frame, so that a frame that cannot be
analysed fails its own camera only; the others get their detections. `stop` ends the thread
and every camera still waiting gets SchedulerStopped (the end of its run, not an error).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from detector.model import Boxes

log = logging.getLogger(__name__)

Found = tuple[Boxes, Boxes]  # (at `conf` or more, the faint ones): Detector.infer_faint's answer
InferBatch = Callable[[list[np.ndarray]], list[Found]]


class SchedulerStopped(Exception):  # noqa: N818 (the end of a run, not a failure)
    """The scheduler stopped while a frame was waiting."""


@dataclass
class _Request:
    image: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    found: Found | None = None
    error: BaseException | None = None


@dataclass
class SchedulerStats:
    """Counters: model calls, frames through them, and the largest batch."""

    calls: int = 0
    frames: int = 0
    largest: int = 0


class InferScheduler:
    """Serves `infer(image)` from camera threads with batched calls of `infer_batch`."""

    def __init__(self, infer_batch: InferBatch, most: int) -> None:
        if most < 1:
            msg = f"a batch holds at least one frame, not {most}"
            raise ValueError(msg)
        self._infer_batch, self.most = infer_batch, most
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._stopped = False
        self.stats = SchedulerStats()
        self._thread = threading.Thread(target=self._run, name="infer-scheduler", daemon=True)

    def start(self) -> InferScheduler:
        self._thread.start()
        return self

    @property
    def stopped(self) -> bool:
        """True once `stop` was called."""
        return self._stopped

    @property
    def waiting(self) -> int:
        """Frames waiting for the model now (not those in the call running)."""
        with self._cond:
            return len(self._queue)

    def infer(self, image: np.ndarray) -> Found:
        """This frame's detections, from the next model call that takes it; raises what the
        model raised on this frame alone, or SchedulerStopped."""
        request = _Request(image)
        with self._cond:
            if self._stopped:
                raise SchedulerStopped
            self._queue.append(request)
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise request.error
        if request.found is None:
            raise SchedulerStopped
        return request.found

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the thread after the call running; whoever still waits gets SchedulerStopped."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        with self._cond:
            left, self._queue = list(self._queue), deque()
        for request in left:
            request.done.set()

    def _take(self) -> list[_Request] | None:
        """The frames to run next (waiting for one), or None once stopped."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopped or bool(self._queue))
            if self._stopped:
                return None
            count = min(self.most, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._serve(batch)

    def _serve(self, batch: list[_Request]) -> None:
        try:
            found = self._infer_batch([r.image for r in batch])
            if len(found) != len(batch):
                msg = f"the model answered {len(found)} frames for {len(batch)}"
                raise RuntimeError(msg)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done.set()
                return
            log.warning("a batch of %d frames failed (%s); running them one by one", len(batch), exc)
            for request in batch:
                self._serve([request])
            return
        self.stats.calls += 1
        self.stats.frames += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        for request, result in zip(batch, found, strict=True):
            request.found = result
            request.done.set()
