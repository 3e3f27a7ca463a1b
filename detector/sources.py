"""Frame sources: video files, HTTP MJPEG / RTSP streams and USB devices.

Each source yields `CapturedFrame`s at (at most) the camera's target fps. Live sources are read
by a background thread that keeps only the latest frame, so a slow analysis never builds
a backlog; files are read in order, either at real-time pace or as fast as possible.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

# FFmpeg's and OpenCV's own console messages bypass our logging (and its credential
# filter); errors reach the log through this module instead.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.logs import scrub
from shrinkwatch.site_file import resolve_placeholders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CapturedFrame:
    """One captured image with its capture time (UTC)."""

    image: np.ndarray
    ts: datetime


class SourceError(ShrinkwatchError):
    """A source cannot be opened (missing file, bad URL) and retrying will not help."""


def _now() -> datetime:
    # Milliseconds: the wire format's precision, so replays compare equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def kind_of(url: str) -> str:
    """'file', 'stream' (rtsp/http) or 'device' (a USB index)."""
    if url.isdigit():
        return "device"
    if url.split("://", 1)[0].lower() in ("rtsp", "rtsps", "http", "https"):
        return "stream"
    return "file"


class FileSource:
    """A video file, sampled at the target fps; capture times follow the file's own clock."""

    def __init__(self, path: str, fps: float, *, realtime: bool, loop: bool, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or str(self.path)  # what messages show: the template, never a resolved secret
        if not self.path.is_file():
            msg = f"video file not found: {self.name}"
            raise SourceError(msg)
        self.fps, self.realtime, self.loop = fps, realtime, loop
        self.connected = True
        self.last_error: str | None = None
        self.frames_read = 0
        self.last_new_at = time.monotonic()

    def _open(self) -> tuple[cv2.VideoCapture, float]:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            msg = f"cannot decode video file {self.name}"
            raise SourceError(msg)
        src_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        return cap, src_fps if 1.0 <= src_fps <= 240.0 else 25.0

    def frames(self, stop: threading.Event) -> Iterator[CapturedFrame]:
        """Frames at the target fps until the end (or forever when looping).

        As fast as possible, a thread decodes a few frames ahead, so decoding overlaps
        inference instead of adding to it.
        """
        if self.realtime:
            yield from self._decode(stop)
            return
        ahead: queue.Queue[CapturedFrame | None] = queue.Queue(maxsize=4)
        done = threading.Event()

        def decode() -> None:
            try:
                for frame in self._decode(done):
                    while not done.is_set():
                        try:
                            ahead.put(frame, timeout=0.2)
                            break
                        except queue.Full:
                            continue
            finally:
                ahead.put(None)

        thread = threading.Thread(target=decode, name="decode", daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                frame = ahead.get()
                if frame is None:
                    return
                yield frame
        finally:
            done.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    ahead.get_nowait()
            thread.join(timeout=5)

    def _decode(self, stop: threading.Event) -> Iterator[CapturedFrame]:
        start = _now()
        while not stop.is_set():
            cap, src_fps = self._open()
            step = max(1, round(src_fps / self.fps))
            wall0 = time.monotonic()
            index = 0
            try:
                while not stop.is_set():
                    if not cap.grab():
                        break
                    self.frames_read += 1
                    self.last_new_at = time.monotonic()
                    if index % step == 0:
                        ok, image = cap.retrieve()
                        if not ok:
                            break
                        media_s = index / src_fps
                        if self.realtime:
                            delay = wall0 + media_s - time.monotonic()
                            if delay > 0 and stop.wait(delay):
                                return
                        yield CapturedFrame(image, _ms(start + timedelta(seconds=media_s)))
                    index += 1
            finally:
                cap.release()
            if not self.loop or index == 0:
                return
            start = start + timedelta(seconds=index / src_fps)


class LiveSource:
    """A camera stream or device, read continuously; the newest frame wins.

    Reconnects with exponential backoff and jitter when the stream fails or goes stale.
    """

    def __init__(
        self,
        url: str,
        fps: float,
        *,
        name: str | None = None,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        stale_after_s: float = 10.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.url, self.fps = url, fps
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.stale_after_s, self.max_backoff_s = stale_after_s, max_backoff_s
        self.name = scrub(name or url)  # what logs and health show: never a resolved secret
        self.last_error: str | None = None
        self.connected = False
        self.frames_read = 0
        self.last_new_at = time.monotonic()
        self._latest: tuple[int, np.ndarray, datetime] | None = None
        self._cond = threading.Condition()

    def _open(self) -> cv2.VideoCapture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]
        if kind_of(self.url) == "device":
            return cv2.VideoCapture(int(self.url))
        # RTSP over TCP: no UDP packet loss, and it passes NAT and firewalls.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)

    def _reader(self, stop: threading.Event) -> None:
        backoff = 1.0
        seq = 0
        while not stop.is_set():
            cap = self._open()
            if not cap.isOpened():
                self.last_error = f"cannot open {self.name}"
            else:
                self.connected, backoff = True, 1.0
                last_new = time.monotonic()
                previous: np.ndarray | None = None
                last_pts = -1.0
                while not stop.is_set():
                    ok, image = cap.read()
                    if not ok:
                        self.last_error = f"stream ended or read failed: {self.name}"
                        break
                    # A frozen server keeps answering with the same frame: only a *new* one
                    # (a later stream timestamp where there is one, and different pixels;
                    # a real sensor never gives two identical frames) counts as life.
                    pts = cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0
                    thumb = image[::16, ::16]
                    fresh = (pts <= 0 or pts > last_pts) and (
                        previous is None or not np.array_equal(thumb, previous)
                    )
                    if fresh:
                        previous, last_pts = thumb.copy(), pts
                        last_new = self.last_new_at = time.monotonic()
                        self.frames_read += 1
                        self.last_error = None
                        seq += 1
                        with self._cond:
                            self._latest = (seq, image, _now())
                            self._cond.notify_all()
                    elif time.monotonic() - last_new > self.stale_after_s:
                        self.last_error = f"no new frame for {self.stale_after_s:.0f} s: {self.name}"
                        break
                cap.release()
            self.connected = False
            if stop.is_set():
                break
            delay = backoff * random.uniform(0.8, 1.2)
            log.warning("%s; retrying in %.1f s", self.last_error, delay)
            stop.wait(delay)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _ready(self, done: threading.Event, seq: int) -> bool:
        return done.is_set() or (self._latest is not None and self._latest[0] > seq)

    def frames(self, stop: threading.Event) -> Iterator[CapturedFrame]:
        """The newest frame at each tick of the target fps, forever (until stop)."""
        done = threading.Event()  # ends the reader when the caller stops iterating, too

        def relay() -> None:
            stop.wait()
            done.set()

        threading.Thread(target=relay, daemon=True).start()
        thread = threading.Thread(target=self._reader, args=(done,), daemon=True, name=f"read-{self.name}")
        thread.start()
        interval = 1.0 / self.fps
        seen = 0
        next_tick = time.monotonic()
        try:
            while not done.is_set():
                with self._cond:
                    self._cond.wait_for(partial(self._ready, done, seen), timeout=0.5)
                    latest = self._latest
                if latest is None or latest[0] <= seen:
                    continue
                seen = latest[0]
                yield CapturedFrame(latest[1], latest[2])
                next_tick = max(next_tick + interval, time.monotonic())
                delay = next_tick - time.monotonic()
                if delay > 0:
                    done.wait(delay)
        finally:
            done.set()
            with self._cond:
                self._cond.notify_all()
            thread.join(timeout=self.read_timeout_s + 2)


def open_source(
    template: str,
    fps: float,
    *,
    realtime: bool = True,
    loop: bool = False,
    environ: Mapping[str, str] | None = None,
) -> FileSource | LiveSource:
    """The right source for a camera's stream_url, its `${VAR}` placeholders resolved from
    `environ` (only the template is ever shown); SourceError names a missing variable."""
    try:
        url = resolve_placeholders(template, environ or {})
    except KeyError as exc:
        msg = f"stream_url needs the environment variable(s) {exc.args[0]}, not set for this process"
        raise SourceError(msg) from None
    if kind_of(url) == "file":
        return FileSource(url, fps, realtime=realtime, loop=loop, name=template)
    return LiveSource(url, fps, name=template)
