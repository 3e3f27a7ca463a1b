"""Only the frames analysed are decoded (issue 21): an MJPEG camera sending 20 parts a second,
read at 5 fps, decodes exactly the frames it hands out, and each frame's capture time is when
its part arrived, not when it was decoded. A server sending the same picture again (with
another header) is not a new frame."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest

from detector.mjpeg import MAX_BAD_PARTS, decode_jpeg
from detector.sources import LiveSource
from tests.detector.test_hostile_sources import retry_waits
from tests.support import QuietHandler, serving, wait_for

PARTS_PER_S = 20.0
SHADES = 12  # the parts' grey levels cycle through 10, 30, ..., 230


def jpeg(index: int, comment: bytes = b"") -> bytes:
    """A small grey JPEG whose level says which part it is; `comment` goes in a COM segment."""
    image = np.full((48, 64, 3), 10 + 20 * (index % SHADES), np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = buf.tobytes()
    if comment:
        data = data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]
    return data


class Camera:
    """What the test server sent: each part's index and the time it was written (UTC)."""

    def __init__(self, frozen: bool = False) -> None:
        self.frozen = frozen
        self.sent: list[tuple[int, datetime]] = []
        self.connections = 0
        self.stop = threading.Event()

    def handler(self) -> type[QuietHandler]:
        camera = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                camera.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                try:
                    while not camera.stop.is_set():
                        # A frozen camera sends part 0 again and again, each with a new comment.
                        body = jpeg(0, b"sent %d" % index) if camera.frozen else jpeg(index)
                        camera.sent.append((index, datetime.now(UTC)))
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(body)
                            + body
                            + b"\r\n"
                        )
                        index += 1
                        camera.stop.wait(1 / PARTS_PER_S)  # the camera's own frame rate
                except OSError:
                    return

        return Handler


@pytest.fixture
def camera() -> Iterator[tuple[Camera, str]]:
    cam = Camera()
    with serving(cam.handler()) as url:
        yield cam, url + "/video.mjpg"
        cam.stop.set()


class CountingDecoder:
    """decode_jpeg, counted, with the time of each call."""

    def __init__(self) -> None:
        self.calls: list[datetime] = []

    def __call__(self, data: bytes) -> np.ndarray | None:
        self.calls.append(datetime.now(UTC))
        return decode_jpeg(data)


def test_only_the_frames_taken_are_decoded_and_each_keeps_its_arrival_time(
    camera: tuple[Camera, str],
) -> None:
    server, url = camera
    decoder = CountingDecoder()
    source = LiveSource(url, 5.0, decode=decoder)
    stop = threading.Event()
    taken: list[tuple[Any, datetime]] = []  # (frame, when it was handed out)
    for frame in source.frames(stop):
        taken.append((frame, datetime.now(UTC)))
        if len(taken) == 8:
            stop.set()
    # Every frame handed out was decoded once, and nothing else was.
    assert len(decoder.calls) == len(taken) == 8
    # Parts arrived at 20 a second and were read (a camera's health counts them) but skipped.
    assert source.frames_read > len(taken)
    assert source.undecodable == 0
    sent = dict(server.sent)
    for (frame, handed_out), decoded_at in zip(taken, decoder.calls, strict=True):
        index = round((float(frame.image.mean()) - 10) / 20)
        # The part that carries this grey level, among those sent (they cycle): the latest
        # one sent before the frame was decoded.
        candidates = [i for i, at in sent.items() if i % SHADES == index and at <= decoded_at]
        assert candidates, (index, decoded_at)
        sent_at = sent[max(candidates)]
        # The capture time is its arrival: after it was sent (ms precision), before it was decoded.
        assert sent_at - timedelta(milliseconds=1) <= frame.ts <= decoded_at <= handed_out


def test_the_same_picture_sent_again_is_not_a_new_frame() -> None:
    """A frozen server's parts differ in their headers only: the camera goes stale."""
    cam = Camera(frozen=True)
    with serving(cam.handler()) as url:
        source = LiveSource(url + "/video.mjpg", 5.0, stale_after_s=1.0, max_backoff_s=1.0)
        stop = threading.Event()
        reader = threading.Thread(target=lambda: [None for _ in source.frames(stop)], daemon=True)
        reader.start()
        try:
            wait_for(
                lambda: source.last_error and "no new frame" in source.last_error,
                timeout_s=30,
                interval_s=0.1,
                what="the frozen camera to be stale",
            )
            # One new frame per connection (its first), however many parts came.
            assert source.frames_read <= cam.connections < len(cam.sent) / 5
        finally:
            stop.set()
            cam.stop.set()
            reader.join(timeout=15)


class OnDemandCamera:
    """Sends part `index` (its grey level says which) when the test calls send(index)."""

    def __init__(self) -> None:
        self.parts: queue.Queue[int] = queue.Queue()
        self.stop = threading.Event()

    def send(self, index: int) -> None:
        self.parts.put(index)

    def handler(self) -> type[QuietHandler]:
        camera = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not camera.stop.is_set():
                        try:
                            body = jpeg(camera.parts.get(timeout=0.2))
                        except queue.Empty:
                            continue
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(body)
                            + body
                            + b"\r\n"
                        )
                except OSError:
                    return

        return Handler


def test_at_an_idle_tick_the_next_frame_is_taken_not_one_that_waited() -> None:
    """Analysed at 0.25 fps (a tick every 4 s from the first frame): part 1 arrives well before
    the second tick, part 2 0.8 s after it. The reader waits (at most half a tick) for part 2 and takes it:
    part 1 was already 4 s old at the tick."""
    cam = OnDemandCamera()
    with serving(cam.handler()) as url:
        source = LiveSource(url + "/video.mjpg", 0.25)
        stop = threading.Event()
        taken: list[int] = []
        cam.send(0)
        try:
            for frame in source.frames(stop):
                taken.append(round((float(frame.image.mean()) - 10) / 20))
                if len(taken) == 1:
                    first = time.monotonic()
                    cam.send(1)  # long before the next tick
                    wait_for(lambda: source.frames_read == 2, timeout_s=3, interval_s=0.01, what="part 1")
                    # Part 2 after the tick (4 s after the first frame), within half a tick (2 s).
                    threading.Timer(max(0.0, first + 4.8 - time.monotonic()), cam.send, (2,)).start()
                else:
                    cam.stop.set()  # the server hangs up: the reader ends without its read timeout
                    stop.set()
        finally:
            stop.set()
            cam.stop.set()
    assert taken == [0, 2]


def collect(source: LiveSource, stop: threading.Event, into: list[Any]) -> None:
    """Each frame the source hands out, appended as it comes, until stopped."""
    for frame in source.frames(stop):
        into.append(frame)


def undecodable(index: int) -> bytes:
    """A part that passes whole_jpeg (its headers, its size, an end marker) and does not
    decode: the image data is missing. A comment makes each one new."""
    data = jpeg(index, b"broken %d" % index)
    return data[: data.find(b"\xff\xda")] + b"\xff\xd9"


class BrokenCamera:
    """Sends parts at PARTS_PER_S, on connection c (from 1) at most `most[c]` (then nothing);
    its part i is good where `good(c, i)` says so, else undecodable."""

    def __init__(self, good: Callable[[int, int], bool], most: dict[int, int] | None = None) -> None:
        self.good, self.most = good, most or {}
        self.connections = 0
        self.stop = threading.Event()

    def handler(self) -> type[QuietHandler]:
        camera = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                camera.connections += 1
                connection = camera.connections
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                try:
                    while not camera.stop.is_set():
                        if index >= camera.most.get(connection, index + 1):
                            camera.stop.wait(0.1)
                            continue
                        good = camera.good(connection, index)
                        body = jpeg(index) if good else undecodable(index)
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(body)
                            + body
                            + b"\r\n"
                        )
                        index += 1
                        camera.stop.wait(1 / PARTS_PER_S)
                except OSError:
                    return

        return Handler


def test_parts_that_look_whole_but_never_decode_make_the_camera_reconnect_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MAX_BAD_PARTS undecodable parts in a row, where the reader decodes them: the stream is
    dropped and said (not connected, and why: the camera's health is offline with it), then
    tried again with a wait that grows, as for parts that are not whole JPEGs."""
    cam = BrokenCamera(good=lambda _c, _i: False)
    reason = f"{MAX_BAD_PARTS} JPEG parts in a row do not decode: "
    with serving(cam.handler()) as url, caplog.at_level(logging.WARNING, logger="detector.sources"):
        source = LiveSource(url + "/video.mjpg", 5.0)
        stop = threading.Event()
        frames: list[Any] = []
        reader = threading.Thread(target=collect, args=(source, stop, frames), daemon=True)
        reader.start()
        try:
            wait_for(
                lambda: not source.connected and reason in (source.last_error or ""),
                timeout_s=60,
                interval_s=0.01,
                what="the stream dropped for its undecodable parts",
            )
            wait_for(
                lambda: len(retry_waits(caplog.text, reason)) >= 3,
                timeout_s=120,
                interval_s=0.1,
                what="three retries",
            )
            waits = retry_waits(caplog.text, reason)[:3]
        finally:
            stop.set()
            cam.stop.set()
            reader.join(timeout=30)
    assert all(b > a for a, b in itertools.pairwise(waits))  # 1 s doubling: not reset by a broken part
    assert cam.connections >= 3
    assert frames == []  # nothing was handed out
    assert source.undecodable >= 3 * MAX_BAD_PARTS


def test_an_undecodable_part_now_and_then_is_skipped_without_reconnecting() -> None:
    """Six parts in seven undecodable: never MAX_BAD_PARTS in a row, so the stream stays up,
    and every frame handed out is a good one."""
    cam = BrokenCamera(good=lambda _c, i: i % 7 == 0)  # six in a row at most
    with serving(cam.handler()) as url:
        source = LiveSource(url + "/video.mjpg", 5.0)
        stop = threading.Event()
        taken = []
        try:
            for frame in source.frames(stop):
                taken.append(frame)
                if len(taken) == 15:
                    stop.set()
        finally:
            stop.set()
            cam.stop.set()
    assert len(taken) == 15 and cam.connections == 1
    assert source.undecodable > 0  # skipped for the good one after them
    assert "in a row" not in (source.last_error or "")


def test_after_reconnecting_for_undecodable_parts_the_next_good_frame_is_taken() -> None:
    """The first connection's parts never decode; the second sends 5 good ones, then nothing.
    Those are handed out at once: a new connection's frames follow the numbers of the last
    one's (they counted from the old start again, below the frames already seen, and were
    skipped)."""
    cam = BrokenCamera(good=lambda connection, _i: connection > 1, most={2: 5})
    with serving(cam.handler()) as url:
        source = LiveSource(url + "/video.mjpg", 5.0, max_backoff_s=1.0)
        stop = threading.Event()
        taken: list[Any] = []
        reader = threading.Thread(target=collect, args=(source, stop, taken), daemon=True)
        reader.start()
        try:
            wait_for(lambda: cam.connections >= 2, timeout_s=60, interval_s=0.05, what="a reconnection")
            # Well within the 10 s after which a camera with no new frame is stale and reconnects.
            wait_for(lambda: taken, timeout_s=8, interval_s=0.05, what="a frame of the second connection")
        finally:
            stop.set()
            cam.stop.set()
            reader.join(timeout=30)
    assert source.undecodable >= MAX_BAD_PARTS and cam.connections == 2
