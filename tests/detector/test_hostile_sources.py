"""Hostile camera input (issue 19): a corrupt video file, an MJPEG server that sends garbage and
a frame too large for one Kafka message are each bounded, reported and retried, and take no
other camera down.

`detect` runs as a child process on real footage with the real model, beside a good camera;
each test waits for the events it needs (a health report with its reason, frames of the good
camera after it), with bounds that only catch a reader that never gets there. "No spinning"
is read from what the reader did, never from a clock: the waits between its tries grow (the
log), and each connection to a hostile server ended after a bounded number of bytes.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from detector.health import Observation, Sample, assess
from detector.mjpeg import MAX_PART_BYTES
from detector.publisher import Publisher
from detector.sources import damage
from shrinkwatch.contracts import CameraHealth, DetectedObject, Detection, decode, encode
from shrinkwatch.site_file import parse_site_config
from tests.detector.test_camera_health import OFFLINE, Watcher
from tests.support import VTEST, cli_env, needs_footage, read_all, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

# What a localhost connection may hold in its socket buffers beyond what the reader took.
SOCKET_SLACK = 32 * 2**20


def apply_site(settings: Any, cameras: dict[str, str]) -> None:
    listed = "\n".join(
        f'  - {{id: {cam}, store_id: store-001, name: {cam}, stream_url: "{url}", fps: 2}}'
        for cam, url in cameras.items()
    )
    site = f"stores: [{{id: store-001, name: Downtown, timezone: Europe/London}}]\ncameras:\n{listed}\n"
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))


def retry_waits(log: str, about: str) -> list[float]:
    """The waits the reader announced before trying `about` again, in order."""
    return [float(w) for w in re.findall(rf"{re.escape(about)}[^\n]*; retrying in ([\d.]+) s", log)]


def backs_off(log: str, about: str, tries: int = 3) -> bool:
    """At least `tries` retries of `about`, each waiting longer than the one before (1 s
    doubling, +-20 % jitter): a reader that spun would retry at once, and often."""
    waits = retry_waits(log, about)[:tries]
    return len(waits) == tries and all(b > a for a, b in itertools.pairwise(waits))


def frames_of(watch: Watcher, camera: str) -> int:
    """How many frames of `camera` have arrived."""
    watch.poll()
    return sum(1 for f in watch.frames if f.camera_id == camera)


@pytest.fixture
def detect_run(settings: Any, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Starts `detect --loop` (realtime) once asked; at the end it must still run, and stop
    cleanly on SIGINT."""
    procs: list[Any] = []

    def start() -> Any:
        proc = spawn_cli(["detect", "--loop"], cli_env(settings, tmp_path), tmp_path / "detect.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        assert proc.poll() is None, "detect ended by itself"
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def garbled(path: Path, source: Path, *, from_share: float) -> Path:
    """A copy of `source` whose bytes from `from_share` of the way on are random."""
    data = bytearray(source.read_bytes())
    rng = random.Random(19)
    start = int(len(data) * from_share)
    data[start:] = rng.randbytes(len(data) - start)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.slow
@needs_footage
def test_corrupt_video_files_are_reported_and_retried(
    settings: Any, tmp_path: Path, detect_run: Callable[[], Any]
) -> None:
    assert VTEST is not None
    text = tmp_path / "notes.avi"
    text.write_text("this is not a video\n" * 100)
    broken = garbled(tmp_path / "broken.avi", VTEST, from_share=0.5)
    apply_site(settings, {"cam-good": str(VTEST), "cam-text": str(text), "cam-broken": str(broken)})
    log = tmp_path / "detect.log"
    detect = detect_run()
    watch = Watcher(settings)
    try:
        start = datetime.now(UTC)
        watch.status_after("cam-text", OFFLINE, start, error=f"cannot decode video file {text}")
        wait_for(lambda: backs_off(log.read_text(), f"cannot decode video file {text}"), 120, what="backoff")

        # The damaged file plays up to its damage, then is reported and tried again there.
        damaged = watch.status_after(
            "cam-broken", OFFLINE, start, error=f"video file {broken} is damaged: decoding stops at frame"
        )
        wait_for(lambda: backs_off(log.read_text(), f"video file {broken} is damaged"), 120, what="backoff")
        assert detect.poll() is None  # the process goes on

        # The good camera never stopped: its frames keep coming after the damage was reported
        # (a file's frames carry its own clock, so they are counted, not compared by time).
        seen = frames_of(watch, "cam-good")
        wait_for(
            lambda: frames_of(watch, "cam-good") >= seen + 10, 120, what="cam-good frames after the damage"
        )
    finally:
        watch.poll()
        watch.consumer.close()
    broken_frames = [f for f in watch.frames if f.camera_id == "cam-broken"]
    stops_at = int(re.findall(r"decoding stops at frame (\d+)", damaged.error or "")[0])
    assert 0 < stops_at < 795
    # What came before the damage was analysed once: tries again resume where it stopped.
    assert [f.frame_id for f in broken_frames] == list(range(len(broken_frames)))
    assert len(broken_frames) == len({f.ts for f in broken_frames}) == -(-stops_at // 5)  # 10 fps at 2
    assert not [f for f in watch.frames if f.camera_id == "cam-text"]


class Hostile:
    """A local MJPEG server: /good plays vtest.avi's first frames at 5 fps; every other path
    misbehaves in its own way, as fast as the reader takes it. For each path it records how
    many bytes each connection wrote before the reader hung up."""

    BOUNDARY = b"frame"
    PATHS = (
        "random",
        "endless-part",
        "endless-header",
        "huge-part",
        "truncated",
        "endless-response-header",
    )

    def __init__(self) -> None:
        assert VTEST is not None
        cap = cv2.VideoCapture(str(VTEST))
        self.jpegs: list[bytes] = []
        while len(self.jpegs) < 50:
            ok, image = cap.read()
            assert ok
            self.jpegs.append(cv2.imencode(".jpg", image)[1].tobytes())
        cap.release()
        self.hung_up: dict[str, list[int]] = {path: [] for path in self.PATHS}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def part(self, body: bytes, length: int | None = None) -> bytes:
        size = len(body) if length is None else length
        return b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (
            self.BOUNDARY,
            size,
            body,
        )

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.strip("/")
                self.send_response(200)
                self.send_header(
                    "Content-Type", f"multipart/x-mixed-replace; boundary={server.BOUNDARY.decode()}"
                )
                if path == "endless-response-header":
                    self.flush_headers()
                    self.wfile.write(b"X-Junk: ")
                    self.send_forever(path, lambda: b"x" * 65536)
                    return
                self.end_headers()
                if path == "good":
                    frames = itertools.cycle(server.jpegs)
                    with contextlib.suppress(OSError):
                        while not server.stop.wait(0.2):
                            self.wfile.write(server.part(next(frames)))
                    return
                chunk = random.Random(path).randbytes(65536)
                if path == "random":
                    self.send_forever(path, lambda: chunk)
                elif path == "endless-part":
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n")
                    self.send_forever(path, lambda: chunk)
                elif path == "endless-header":
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg")
                    self.send_forever(path, lambda: b"x" * 65536)
                elif path == "huge-part":
                    self.wfile.write(server.part(b"", length=2_000_000_000)[:-2])
                    self.send_forever(path, lambda: chunk)
                elif path == "truncated":
                    whole = server.jpegs[0]
                    self.send_forever(path, lambda: server.part(whole[: len(whole) // 2]))

            def send_forever(self, path: str, chunk: Callable[[], bytes]) -> None:
                sent = 0
                try:
                    while not server.stop.is_set():
                        data = chunk()
                        self.wfile.write(data)
                        sent += len(data)
                except OSError:  # the reader hung up
                    with server.lock:
                        server.hung_up[path].append(sent)

        return Handler


@pytest.fixture
def hostile() -> Iterator[tuple[Hostile, str]]:
    server = Hostile()
    http = ThreadingHTTPServer(("127.0.0.1", 0), server.handler())
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{http.server_address[1]}"
    server.stop.set()
    http.shutdown()
    http.server_close()


REASONS = {
    "random": "no part boundary in 16 MiB of data",
    "endless-part": "a part without a Content-Length has no boundary within 16 MiB",
    "endless-header": "a part's header line is longer than 1024 bytes",
    "huge-part": "a part of 2000000000 bytes is over the bound of 16 MiB",
    "truncated": "10 parts in a row are not whole JPEG images",
    "endless-response-header": "got more than 65536 bytes when reading header line",
}


@pytest.mark.slow
@needs_footage
def test_garbage_mjpeg_streams_are_bounded_reported_and_retried(
    settings: Any, tmp_path: Path, hostile: tuple[Hostile, str], detect_run: Callable[[], Any]
) -> None:
    server, base = hostile
    cameras = {"cam-good": f"{base}/good", **{f"cam-{path}": f"{base}/{path}" for path in Hostile.PATHS}}
    apply_site(settings, cameras)
    log = tmp_path / "detect.log"
    detect = detect_run()
    watch = Watcher(settings)
    try:
        start = datetime.now(UTC)
        reported = [
            watch.status_after(f"cam-{path}", OFFLINE, start, error=REASONS[path]) for path in Hostile.PATHS
        ]
        for path in Hostile.PATHS:
            wait_for(
                lambda path=path: backs_off(log.read_text(), f"{base}/{path}"), 180, what=f"{path} backoff"
            )
            # Each connection ended once the reader had taken its bound, never more.
            wait_for(lambda path=path: len(server.hung_up[path]) >= 3, 120, what=f"{path} retried")
            assert max(server.hung_up[path]) <= MAX_PART_BYTES + SOCKET_SLACK, (path, server.hung_up[path])
        assert detect.poll() is None
        last = max(h.ts for h in reported)
        wait_for(
            lambda: len(watch.frames_after("cam-good", last)) >= 6, 120, what="cam-good frames after them"
        )
    finally:
        watch.poll()
        watch.consumer.close()
    for path in Hostile.PATHS:
        assert not [f for f in watch.frames if f.camera_id == f"cam-{path}"]


def crowd(count: int) -> Detection:
    """A frame of `count` people with keypoints, each more confident than the last; their
    coordinates are random, so that the message compresses about as little as a real one, and
    written to the last digit (the model's are rounded), so that 1000 of them pass 1 MB."""
    rng = random.Random(count)

    def unit() -> float:
        return rng.random()

    objects = [
        DetectedObject(
            track_id=i,
            class_name="person",
            class_id=0,
            conf=round(0.25 + 0.7 * i / count, 6),
            box=(0.1, 0.1, 0.2, 0.4),
            keypoints=[(unit(), unit(), unit()) for _ in range(17)],
        )
        for i in range(count)
    ]
    return Detection(
        camera_id="cam-1",
        store_id="store-001",
        frame_id=0,
        ts=datetime(2026, 11, 28, 10, 15, 30, 123000, tzinfo=UTC),
        frame_w=768,
        frame_h=576,
        objects=objects,
    )


def test_an_oversize_detections_message_is_capped_and_the_publisher_goes_on(settings: Any) -> None:
    huge = crowd(1000)
    assert len(encode(huge)) > 1_000_000  # over Kafka's default limit
    small = crowd(3).model_copy(update={"frame_id": 1})
    publisher = Publisher(settings)
    publisher.publish(huge)
    publisher.publish(small)
    # A health message far over any limit: dropped and counted, nothing else changes.
    publisher.publish_health(
        CameraHealth(
            camera_id="cam-1",
            store_id="store-001",
            ts=datetime.now(UTC),
            status="offline",
            fps_in=0,
            fps_analysed=0,
            last_frame_ts=None,
            error="x" * 2**21,
        )
    )
    assert publisher.close() == 0
    frames = [decode(m.value(), Detection) for m in read_all(settings, settings.topic("detections"))]
    assert [f.frame_id for f in frames] == [0, 1]
    fitted, rest = frames
    assert 0 < len(fitted.objects) < len(huge.objects)
    assert len(encode(fitted)) <= publisher.limit
    kept = {o.track_id for o in fitted.objects}
    assert min(o.conf for o in fitted.objects) > max(o.conf for o in huge.objects if o.track_id not in kept)
    assert rest == small
    assert publisher.capped == {"cam-1": 1} and publisher.too_large == 1 and publisher.failed == 0
    assert read_all(settings, settings.topic("camera-health")) == []


def test_a_message_the_broker_refuses_is_counted_and_the_next_goes_on(settings: Any) -> None:
    """A topic whose own max.message.bytes is under the producer's: the broker says no."""
    topic = settings.topic("detections")
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    limit = ConfigEntry("max.message.bytes", "20000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", topic, incremental_configs=[limit])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    big, small = crowd(200), crowd(3).model_copy(update={"frame_id": 1})
    assert 100_000 < len(encode(big)) < 900_000  # compressed, still well over the topic's 20,000
    publisher = Publisher(settings)
    publisher.publish(big)
    wait_for(lambda: publisher.failed == 1, 60, interval_s=0.1, what="the broker's refusal")
    publisher.publish(small)
    assert publisher.close() == 0
    assert publisher.failed == 1 and "too large" in (publisher.last_error or "").lower()
    assert [decode(m.value(), Detection).frame_id for m in read_all(settings, topic)] == [1]


def test_capped_frames_make_the_camera_degraded() -> None:
    sample = Sample(0.0, 0, 0)
    observed = Observation(
        camera_id="cam-1",
        store_id="store-001",
        target_fps=2,
        previous=sample,
        current=Sample(2.0, 4, 4),
        seconds_since_new_frame=0.1,
        source_connected=True,
        live=True,
        uptime_s=1.0,
        last_frame_ts=None,
        error=None,
        broker_down=False,
        dropped_since_last=0,
        capped_since_last=3,
    )
    health = assess(observed)
    assert health.status == "degraded"
    assert (
        health.error
        == "3 frame(s) had more objects than fit in a Kafka message: the least confident were left out"
    )


@pytest.mark.parametrize(
    ("start", "stopped", "declared", "expected"),
    [
        (0, 795, 795, None),
        (0, 790, 795, None),  # within a second of its declared length: FFmpeg's estimate
        (0, 795, 0, None),  # no declared length: its end is its end
        (0, 399, 795, "video file f.avi is damaged: decoding stops at frame 399 of 795"),
        (0, 0, 795, "video file f.avi is damaged: no frame decodes"),
        (399, 399, 795, "video file f.avi is damaged: no frame decodes after frame 399"),
        (399, 795, 795, None),  # tried again, it went on to the end (it was still being copied)
    ],
)
def test_when_a_video_file_is_damaged(start: int, stopped: int, declared: int, expected: str | None) -> None:
    assert damage("f.avi", start, stopped, declared, 10.0) == expected
