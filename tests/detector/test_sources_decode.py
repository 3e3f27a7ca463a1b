"""Only the frames analysed are decoded (issue 21): an MJPEG camera sending 20 parts a second,
read at 5 fps, decodes exactly the frames it hands out, and each frame's capture time is when
its part arrived, not when it was decoded. A server sending the same picture again (with
another header) is not a new frame."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest

from detector.mjpeg import decode_jpeg
from detector.sources import LiveSource
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
