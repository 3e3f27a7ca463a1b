"""Frame sources: video files, HTTP MJPEG / RTSP streams and USB devices.

Each source yields `CapturedFrame`s at (at most) the camera's target fps. Live sources are read
by a background thread that keeps only the latest frame, so a slow analysis never builds
a backlog; files are read in order, either at real-time pace or as fast as possible.

What fails is reported and tried again, never the end of the camera: a stream that cannot be
opened, breaks, stalls or sends what is not video (HTTP MJPEG is read within the bounds of
detector.mjpeg), and a damaged video file (one FFmpeg cannot open, or whose decoding stops
more than a second before the length its header declares), are retried with backoff, 1 s
doubling to 30 s with +-20 % jitter, reset by the next new frame; meanwhile the source says
it is not connected and why (`connected`, `last_error`), for the camera's health. A damaged
file is tried again from the frame where its decoding stopped (a file still being copied goes
on; the frames before the damage are analysed once). Only a missing file or a missing `${VAR}`
is a SourceError, the end of that camera alone.

Only the frames analysed are decoded. An MJPEG camera's parts are kept as they came (checked
to be whole JPEGs, detector.mjpeg) and the newest is decoded when the camera reader takes it:
a 10 fps camera analysed at 5 fps decodes 5 JPEGs a second, not 10. A part that looked whole
but does not decode is skipped for the next one and said in `last_error`; MAX_BAD_PARTS of
them in a row make the stream reconnect with backoff, as parts that are not whole do (the
backoff is reset by a part that decodes, not by one that merely arrived). A video file's frames in
between are grabbed, not retrieved. RTSP and USB frames are decoded as they come (FFmpeg
decodes every H.264 packet to decode the next). A frame's capture time is when it arrived,
whenever it is decoded.

A live camera's frame is taken fresh: at a tick of the target fps that the reader reached
with nothing to do, the newest frame may already be a camera frame old (100 ms at 10 fps),
which is latency before anything looked at it; the reader waits, at most half a tick, for
the next one to arrive and takes that. A reader behind its ticks takes the newest at once,
and the whole ticks it missed are counted (`behind`: the camera's frames that analysis
being behind left unlooked at; detector.metrics).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
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

from detector.mjpeg import MAX_BAD_PARTS, MjpegError, MjpegStream, decode_jpeg
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


class StreamError(ShrinkwatchError):
    """A live stream or device failed (it may come back): the reason, for the camera's health."""


class Backoff:
    """Waits between tries: `first_s` doubling to `longest_s`, +-20 % jitter; `reset` after a success."""

    def __init__(self, first_s: float = 1.0, longest_s: float = 30.0) -> None:
        self.first_s, self.longest_s = first_s, longest_s
        self._next = first_s

    def next(self) -> float:
        """How long to wait before the next try."""
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self.longest_s)
        return delay

    def reset(self) -> None:
        self._next = self.first_s


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


def damage(name: str, start: int, stopped: int, declared: int, src_fps: float) -> str | None:
    """Why a pass over a video file that began at frame `start` and stopped at `stopped` means
    the file is damaged, or None for a normal end. `declared` is the length its header gives
    (0 when unknown); FFmpeg's estimate from a duration may be off by a frame or two, so only
    stopping more than a second short counts."""
    if stopped <= start:
        where = f" after frame {start}" if start else ""
        return f"video file {name} is damaged: no frame decodes{where}"
    if declared > 0 and stopped + src_fps < declared:
        return f"video file {name} is damaged: decoding stops at frame {stopped} of {declared}"
    return None


class FileSource:
    """A video file, sampled at the target fps; capture times follow the file's own clock.
    A damaged file is reported and tried again with backoff (the module's policy)."""

    def __init__(
        self,
        path: str,
        fps: float,
        *,
        realtime: bool,
        loop: bool,
        name: str | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.name = name or str(self.path)  # what messages show: the template, never a resolved secret
        if not self.path.is_file():
            msg = f"video file not found: {self.name}"
            raise SourceError(msg)
        self.fps, self.realtime, self.loop = fps, realtime, loop
        self.max_backoff_s = max_backoff_s
        self.connected = True
        self.last_error: str | None = None
        self.frames_read = 0
        self.last_new_at = time.monotonic()
        self.threads: list[threading.Thread] = []  # the decoding threads it started

    def frames(self, stop: threading.Event) -> Iterator[CapturedFrame]:
        """Frames at the target fps until the end (or forever when looping).

        As fast as possible, a thread decodes a few frames ahead, so decoding overlaps
        inference instead of adding to it; what ends that thread with an error is raised here.
        """
        if self.realtime:
            yield from self._decode(stop)
            return
        ahead: queue.Queue[CapturedFrame | BaseException | None] = queue.Queue(maxsize=4)
        done = threading.Event()

        def decode() -> None:
            end: BaseException | None = None
            try:
                for frame in self._decode(done):
                    while not done.is_set():
                        try:
                            ahead.put(frame, timeout=0.2)
                            break
                        except queue.Full:
                            continue
            except Exception as exc:
                end = exc
            finally:
                ahead.put(end)

        thread = threading.Thread(target=decode, name=f"decode-{self.name}", daemon=True)
        self.threads.append(thread)
        thread.start()
        try:
            while not stop.is_set():
                item = ahead.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    return
                yield item
        finally:
            done.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    ahead.get_nowait()
            thread.join(timeout=5)

    def _decode(self, stop: threading.Event) -> Iterator[CapturedFrame]:
        start = _now()
        position = 0  # where the next pass begins: 0, or the frame where decoding stopped
        backoff = Backoff(longest_s=self.max_backoff_s)
        while not stop.is_set():
            cap = cv2.VideoCapture(str(self.path))
            try:
                if not cap.isOpened():
                    stopped, src_fps = position, 0.0
                    failure: str | None = f"cannot decode video file {self.name}"
                else:
                    src_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
                    src_fps = src_fps if 1.0 <= src_fps <= 240.0 else 25.0
                    declared = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
                    if position:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, position)
                    stopped = yield from self._play(cap, stop, start, position, src_fps)
                    failure = damage(self.name, position, stopped, declared, src_fps)
            finally:
                cap.release()
            if stop.is_set():
                return
            if failure is None:
                if not self.loop:
                    return
                start, position = start + timedelta(seconds=stopped / src_fps), 0
                continue
            if stopped > position:
                backoff.reset()  # it got further this time (a file still being copied)
            position = stopped
            self.connected, self.last_error = False, failure
            delay = backoff.next()
            log.warning("%s; retrying in %.1f s", failure, delay)
            if stop.wait(delay):
                return

    def _play(
        self, cap: cv2.VideoCapture, stop: threading.Event, start: datetime, position: int, src_fps: float
    ) -> Generator[CapturedFrame, None, int]:
        """One pass from frame `position`; returns the frame where it stopped."""
        step = max(1, round(src_fps / self.fps))
        wall0 = time.monotonic() - position / src_fps
        index = position
        while not stop.is_set():
            if not cap.grab():
                break
            ok, image = cap.retrieve() if index % step == 0 else (True, None)
            if not ok:
                break
            self.frames_read += 1
            self.last_new_at = time.monotonic()
            self.connected, self.last_error = True, None
            if image is not None:
                media_s = index / src_fps
                if self.realtime:
                    delay = wall0 + media_s - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                yield CapturedFrame(image, _ms(start + timedelta(seconds=media_s)))
            index += 1
        return index


class _Capture:
    """An RTSP stream or a USB device through OpenCV (FFmpeg, V4L2)."""

    def __init__(self, url: str, name: str, open_timeout_s: float, read_timeout_s: float) -> None:
        self.name = name
        if kind_of(url) == "device":
            self._cap = cv2.VideoCapture(int(url))
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(read_timeout_s * 1000),
            ]
            # RTSP over TCP: no UDP packet loss, and it passes NAT and firewalls.
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
            self._cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not self._cap.isOpened():
            self._cap.release()
            msg = f"cannot open {name}"
            raise StreamError(msg)

    def read(self) -> tuple[np.ndarray, float]:
        """The next image and its stream time in ms (0 where the stream has none)."""
        ok, image = self._cap.read()
        if not ok:
            msg = f"stream ended or read failed: {self.name}"
            raise StreamError(msg)
        return image, self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0

    def close(self) -> None:
        self._cap.release()


class _Mjpeg:
    """An HTTP MJPEG camera through detector.mjpeg (bounded); its parts carry no stream time
    and come undecoded."""

    def __init__(self, url: str, name: str, read_timeout_s: float) -> None:
        self._stream = MjpegStream(url, name, read_timeout_s)

    def read(self) -> tuple[bytes, float]:
        return self._stream.read(), 0.0

    def close(self) -> None:
        self._stream.close()


def _scan_digest(jpeg: bytes) -> int:
    """A checksum of a JPEG's image data (from its start-of-scan marker on), so that the same
    picture sent again with other headers (a timestamp comment) counts as the same."""
    start = jpeg.find(b"\xff\xda")
    return zlib.crc32(jpeg[start:] if start >= 0 else jpeg)


Decoder = Callable[[bytes], np.ndarray | None]


class LiveSource:
    """A camera stream or device, read continuously; the newest frame wins.

    Reconnects with exponential backoff and jitter when the stream fails or goes stale. An
    MJPEG part is decoded (`decode`) only when `frames` hands it out.
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
        decode: Decoder = decode_jpeg,
    ) -> None:
        self.url, self.fps = url, fps
        self.decode = decode
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.stale_after_s, self.max_backoff_s = stale_after_s, max_backoff_s
        self.name = scrub(name or url)  # what logs and health show: never a resolved secret
        self.last_error: str | None = None
        self.connected = False
        self.frames_read = 0
        self.undecodable = 0  # parts that looked whole but did not decode when taken
        self.behind = 0  # ticks of the target fps missed because the caller was busy (frames)
        self.last_new_at = time.monotonic()
        self._undecodable_in_a_row = 0
        self._drop_stream = threading.Event()  # set by `frames`: the reader reconnects
        self._backoff = Backoff(longest_s=max_backoff_s)
        self._latest: tuple[int, np.ndarray | bytes, datetime] | None = None
        self._cond = threading.Condition()
        self.threads: list[threading.Thread] = []  # the reading threads it started

    def _open(self) -> _Capture | _Mjpeg:
        if self.url.split("://", 1)[0].lower() in ("http", "https"):
            return _Mjpeg(self.url, self.name, self.read_timeout_s)
        return _Capture(self.url, self.name, self.open_timeout_s, self.read_timeout_s)

    def _reader(self, stop: threading.Event) -> None:
        backoff = self._backoff
        while not stop.is_set():
            try:
                stream = self._open()
            except (StreamError, MjpegError) as exc:
                self.last_error = str(exc)
            else:
                self.connected = True
                self._drop_stream.clear()  # meant for a connection before this one
                self._undecodable_in_a_row = 0
                try:
                    self._read(stream, stop, backoff)
                except (StreamError, MjpegError) as exc:
                    self.last_error = str(exc)
                finally:
                    stream.close()
            self.connected = False
            if stop.is_set():
                break
            delay = backoff.next()
            log.warning("%s; retrying in %.1f s", self.last_error, delay)
            stop.wait(delay)

    def _read(self, stream: _Capture | _Mjpeg, stop: threading.Event, backoff: Backoff) -> None:
        """Read until stopped, broken (StreamError, MjpegError), stale, or told to reconnect.
        Each new frame's number follows the last one's, whatever connection it came on."""
        last_new = time.monotonic()
        previous: np.ndarray | int | None = None
        last_pts = -1.0
        while not stop.is_set():
            if self._drop_stream.is_set():
                raise MjpegError(self._undecodable_reason())
            image, pts = stream.read()
            # A frozen server keeps answering with the same frame: only a *new* one
            # (a later stream timestamp where there is one, and different pixels, or JPEG
            # image data; a real sensor never gives two identical frames) counts as life.
            key = _scan_digest(image) if isinstance(image, bytes) else image[::16, ::16].copy()
            fresh = (pts <= 0 or pts > last_pts) and (previous is None or not _same(key, previous))
            if fresh:
                previous, last_pts = key, pts
                last_new = self.last_new_at = time.monotonic()
                self.frames_read += 1
                if not isinstance(image, bytes):  # an MJPEG part is good once it decodes (_image)
                    self.last_error = None
                    backoff.reset()
                with self._cond:
                    seq = self._latest[0] + 1 if self._latest is not None else 1
                    self._latest = (seq, image, _now())
                    self._cond.notify_all()
            elif time.monotonic() - last_new > self.stale_after_s:
                self.last_error = f"no new frame for {self.stale_after_s:.0f} s: {self.name}"
                break

    def _undecodable_reason(self) -> str:
        return f"{MAX_BAD_PARTS} JPEG parts in a row do not decode: {self.name}"

    def _image(self, payload: np.ndarray | bytes) -> np.ndarray | None:
        """The frame's image, an MJPEG part decoded now; None (counted, and said in
        `last_error`) for one that looked whole but does not decode. At MAX_BAD_PARTS of
        those in a row the reader is told to reconnect, as for parts that are not whole."""
        if not isinstance(payload, bytes):
            return payload
        image = self.decode(payload)
        if image is None:
            self.undecodable += 1
            self._undecodable_in_a_row += 1
            if self._undecodable_in_a_row < MAX_BAD_PARTS:
                self.last_error = f"a JPEG part does not decode: {self.name}"
            else:  # until the reader reconnects (it starts the count again)
                self.last_error = self._undecodable_reason()
                self._drop_stream.set()
        else:
            self._undecodable_in_a_row = 0
            self.last_error = None
            self._backoff.reset()
        return image

    def _fresher(self, done: threading.Event, seen: int, bound_s: float) -> None:
        """At a tick reached idle: the newest frame may have arrived up to a camera frame ago
        (100 ms at 10 fps), and its age is latency. Wait, at most `bound_s`, for the next one
        to arrive, so the frame taken is fresh; without one by then, the newest is taken."""
        with self._cond:
            newest = self._latest[0] if self._latest is not None else seen
            if newest > seen:
                self._cond.wait_for(partial(self._ready, done, newest), timeout=bound_s)

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
        self.threads.append(thread)
        thread.start()
        interval = 1.0 / self.fps
        seen = 0
        next_tick: float | None = None  # the ticks count from the first frame taken
        try:
            while not done.is_set():
                with self._cond:
                    self._cond.wait_for(partial(self._ready, done, seen), timeout=0.5)
                    latest = self._latest
                if latest is None or latest[0] <= seen:
                    continue
                seen = latest[0]
                image = self._image(latest[1])
                if image is None:
                    continue  # the next part comes within a frame's time
                taken_at = time.monotonic()
                yield CapturedFrame(image, latest[2])
                due = (taken_at if next_tick is None else next_tick) + interval
                now = time.monotonic()
                # Whole ticks gone by while the caller analysed: frames never looked at.
                self.behind += int((now - due) / interval) if now > due + interval else 0
                next_tick = max(due, now)
                delay = next_tick - time.monotonic()
                if delay > 0 and not done.wait(delay):
                    self._fresher(done, seen, interval / 2)
        finally:
            done.set()
            with self._cond:
                self._cond.notify_all()
            thread.join(timeout=self.read_timeout_s + 2)


def _same(key: np.ndarray | int, previous: np.ndarray | int) -> bool:
    if isinstance(key, int) or isinstance(previous, int):
        return key == previous
    return np.array_equal(key, previous)


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
