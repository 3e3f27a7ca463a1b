"""`shrinkwatch camera-sim`: a video file served as a live, looping camera.

HTTP MJPEG: one broadcaster thread plays the file at its own frame rate and keeps the
newest JPEG; every client gets the frames from the moment it joins (a live camera never
rewinds). A broadcaster can also replay JPEGs encoded once (`encoded_loop`), from any frame
of the loop: a benchmark that stands in for a store's cameras then spends next to no CPU on
them (a real camera encodes on its own hardware).

RTSP (optional): ffmpeg plays the file in a loop, in real time, as H.264 over RTP to a local
port, and GStreamer's RTSP server (Debian's, run by Debian's Python) serves that live stream
to every client.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.shutdown import stop_event_on_signals

BOUNDARY = "shrinkwatchframe"


def encoded_loop(path: Path, quality: int = 80) -> list[bytes]:
    """Every frame of the file as JPEG, in order (for Broadcaster's `encoded`)."""
    cap = cv2.VideoCapture(str(path))
    out: list[bytes] = []
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                out.append(buf.tobytes())
    finally:
        cap.release()
    if not out:
        msg = f"cannot decode video file {path}"
        raise ShrinkwatchError(msg)
    return out


class Broadcaster(threading.Thread):
    """Plays the file in a loop at its frame rate, keeping the newest frame as JPEG; with
    `encoded` (encoded_loop of the file), replays those from frame `start_at` instead."""

    def __init__(
        self,
        path: Path,
        fps: float | None,
        quality: int,
        stop: threading.Event,
        encoded: list[bytes] | None = None,
        start_at: int = 0,
    ) -> None:
        super().__init__(name="camera-sim", daemon=True)
        self.encoded, self.start_at = encoded, start_at
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
        if self.encoded:
            self._replay(self.encoded)
            return
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

    def _replay(self, encoded: list[bytes]) -> None:
        interval = 1.0 / self.fps
        next_at = time.monotonic()
        index = self.start_at % len(encoded)
        while not self.stop.is_set():
            with self.cond:
                self.jpeg, self.seq = encoded[index], self.seq + 1
                self.cond.notify_all()
            index = (index + 1) % len(encoded)
            self.loops += index == 0
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()

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


RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def _die_with_parent() -> None:
    # Children of camera-sim end with it, even when it is killed with SIGKILL.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RtspRelay:
    """ffmpeg (file -> live H.264/RTP on a local port) and the GStreamer RTSP server."""

    def __init__(self, path: Path, port: int, mount: str = "/stream") -> None:
        self.path, self.port, self.mount = path, port, mount
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            msg = "RTSP needs ffmpeg (apt-get install ffmpeg)"
            raise ShrinkwatchError(msg)
        check = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
            capture_output=True,
            check=False,
        )
        if check.returncode != 0:
            msg = (
                "RTSP needs GStreamer's RTSP server for Debian's Python (apt-get install python3-gi "
                "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)"
            )
            raise ShrinkwatchError(msg)
        udp = _free_udp_port()
        server = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(RTSP_SERVER),
                "--udp-port",
                str(udp),
                "--port",
                str(self.port),
                "--path",
                self.mount,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self.procs.append(server)
        line = server.stdout.readline().decode(errors="replace").strip() if server.stdout else ""
        if not line.startswith("rtsp-server: rtsp://"):
            self.stop()
            msg = f"the RTSP server did not start on port {self.port}: {line or 'no output'}"
            raise ShrinkwatchError(msg)
        self.procs.append(
            subprocess.Popen(
                [
                    ffmpeg,
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-nostdin",
                    "-re",
                    "-stream_loop",
                    "-1",
                    "-i",
                    str(self.path),
                    "-an",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                    "-g",
                    "10",
                    "-bf",
                    "0",
                    "-pix_fmt",
                    "yuv420p",
                    "-f",
                    "rtp",
                    f"rtp://127.0.0.1:{udp}?pkt_size=1200",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def serve(
    path: Path,
    *,
    host: str,
    port: int,
    rtsp_port: int | None = None,
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
    relay = RtspRelay(path, rtsp_port) if rtsp_port else None
    if relay:
        try:
            relay.start()
        except ShrinkwatchError:
            server.server_close()
            raise
    broadcaster.start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    announce(
        f"camera-sim: serving {path.name} at {broadcaster.fps:.1f} fps on "
        f"http://{host}:{port}/video.mjpg (snapshot: /snapshot.jpg)"
    )
    if relay:
        announce(f"camera-sim: RTSP on {relay.url}")
    try:
        stop.wait()
    finally:
        if relay:
            relay.stop()
        server.shutdown()
        server.server_close()
        announce("camera-sim: stopped")


def serve_encoded(
    path: Path,
    ports: list[int],
    *,
    host: str = "127.0.0.1",
    quality: int = 80,
    announce: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Serve the file as one MJPEG camera on each port, its frames encoded once and shared,
    each camera from another point of the loop (so no two show the same moment), until
    SIGINT/SIGTERM (or `stop`). For benchmarks: the cameras cost next to no CPU."""
    stop = stop or stop_event_on_signals()
    encoded = encoded_loop(path, quality)
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    servers = []
    try:
        for i, port in enumerate(ports):
            start_at = i * len(encoded) // len(ports)
            broadcaster = Broadcaster(path, fps, quality, stop, encoded=encoded, start_at=start_at)
            server = ThreadingHTTPServer((host, port), _handler(broadcaster))
            server.daemon_threads = True
            servers.append(server)
            broadcaster.start()
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        announce(f"camera-sim: {len(ports)} camera(s) of {path.name} at {fps:.1f} fps on ports {ports}")
        stop.wait()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
