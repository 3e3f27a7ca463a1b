"""`shrinkwatch camera-sim`: a video file served as a live, looping HTTP MJPEG camera.

One broadcaster thread plays the file at its own frame rate and keeps the newest JPEG;
every client gets the frames from the moment it joins (a live camera never rewinds).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.shutdown import stop_event_on_signals

BOUNDARY = "shrinkwatchframe"


class Broadcaster(threading.Thread):
    """Plays the file in a loop at its frame rate, keeping the newest frame as JPEG."""

    def __init__(self, path: Path, fps: float | None, quality: int, stop: threading.Event) -> None:
        super().__init__(name="camera-sim", daemon=True)
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            msg = f"cannot decode video file {path}"
            raise ShrinkwatchError(msg)
        file_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        cap.release()
        self.path, self.fps, self.quality, self.stop = path, fps or file_fps, quality, stop
        self.cond = threading.Condition()
        self.seq = 0
        self.jpeg = b""
        self.loops = 0

    def run(self) -> None:
        interval = 1.0 / self.fps
        next_at = time.monotonic()
        while not self.stop.is_set():
            cap = cv2.VideoCapture(str(self.path))
            while not self.stop.is_set():
                ok, image = cap.read()
                if not ok:
                    break
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if ok:
                    with self.cond:
                        self.jpeg, self.seq = buf.tobytes(), self.seq + 1
                        self.cond.notify_all()
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)
                else:
                    next_at = time.monotonic()
            cap.release()
            self.loops += 1

    def wait_next(self, after: int, timeout_s: float = 2.0) -> tuple[int, bytes]:
        """The first frame newer than `after` (or the current one after a timeout)."""
        with self.cond:
            self.cond.wait_for(lambda: self.seq > after or self.stop.is_set(), timeout=timeout_s)
            return self.seq, self.jpeg


def _handler(broadcaster: Broadcaster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path in ("/", "/video.mjpg"):
                self._stream()
            elif path == "/snapshot.jpg":
                _, jpeg = broadcaster.wait_next(0)
                self._send(200, "image/jpeg", jpeg)
            elif path == "/health":
                body = {
                    "status": "ok",
                    "frames": broadcaster.seq,
                    "loops": broadcaster.loops,
                    "fps": broadcaster.fps,
                }
                self._send(200, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain", b"not found: use /video.mjpg or /snapshot.jpg\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            seq = broadcaster.seq
            try:
                while not broadcaster.stop.is_set():
                    seq, jpeg = broadcaster.wait_next(seq)
                    if not jpeg:
                        continue
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


def serve_mjpeg(
    path: Path,
    *,
    host: str,
    port: int,
    fps: float | None = None,
    quality: int = 80,
    announce: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or `stop` is set)."""
    stop = stop or stop_event_on_signals()
    broadcaster = Broadcaster(path, fps, quality, stop)
    try:
        server = ThreadingHTTPServer((host, port), _handler(broadcaster))
    except OSError as exc:
        msg = f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
        raise ShrinkwatchError(msg) from None
    server.daemon_threads = True
    broadcaster.start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    announce(
        f"camera-sim: serving {path.name} at {broadcaster.fps:.1f} fps on "
        f"http://{host}:{port}/video.mjpg (snapshot: /snapshot.jpg)"
    )
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        announce("camera-sim: stopped")
