"""camera-sim serves the sample video as a live MJPEG camera that the detector can read."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from shrinkwatch.contracts import Detection, decode
from shrinkwatch.net import free_port
from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML
from tests.support import VTEST, cli_env, consume, needs_footage, run_cli, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.site_tables import apply_site_config


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = spawn_cli(["camera-sim", str(VTEST), "--port", str(port)], env=None, log=tmp_path / "sim.log")
    try:
        wait_for(lambda: (h := health(port)) and h["frames"] > 0, 120, what="camera-sim")
        yield f"http://127.0.0.1:{port}/video.mjpg"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert "camera-sim: stopped" in (tmp_path / "sim.log").read_text()


@needs_footage
def test_mjpeg_stream_is_live(camera: str) -> None:
    cap = cv2.VideoCapture(camera, cv2.CAP_FFMPEG)
    assert cap.isOpened()
    frames = [cap.read()[1] for _ in range(5)]
    cap.release()
    assert all(f is not None and f.shape == (576, 768, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])  # it plays
    base = camera.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/snapshot.jpg", timeout=5) as response:
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.read()[:2] == b"\xff\xd8"
    port = int(base.rsplit(":", 1)[1])
    first = health(port)
    assert first
    wait_for(lambda: (later := health(port)) and later["frames"] > first["frames"], 120, what="it to play on")


@needs_footage
def test_detect_reads_an_mjpeg_camera(camera: str, settings: Any, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(
            conn, parse_site_config(SITE_YAML.replace("rtsp://user:secret@10.0.0.5/stream1", camera))
        )
    result = run_cli(["detect", "--max-frames", "8"], env=cli_env(settings, tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "cam-1: 8 frames" in result.stderr
    messages = [
        decode(m.value(), Detection) for m in consume(settings, settings.topic("detections"), until=8)
    ]
    assert [m.frame_id for m in messages] == list(range(8))
    assert all(m.frame_w == 768 and m.frame_h == 576 and m.camera_id == "cam-1" for m in messages)
    assert sum(len(m.objects) for m in messages) > 0
    gaps = [(b.ts - a.ts).total_seconds() for a, b in zip(messages, messages[1:], strict=False)]
    assert min(gaps) > 0.1  # sampled at the camera's 5 fps, not the stream's 10


def test_missing_file_is_a_clear_error_and_others_go_on(settings: Any, tmp_path: Path) -> None:
    site = SITE_YAML.replace("rtsp://user:secret@10.0.0.5/stream1", "/nonexistent/video.avi")
    if VTEST is not None:
        site += f"""  - id: cam-2
    store_id: store-001
    name: Second
    stream_url: {VTEST}
    fps: 5
"""
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))
    result = run_cli(
        ["detect", "--pace", "fast", "--max-frames", "3"], env=cli_env(settings, tmp_path), timeout=180
    )
    assert result.returncode == 1
    assert "camera cam-1: video file not found: /nonexistent/video.avi" in result.stderr
    assert "Traceback" not in result.stderr
    if VTEST is not None:
        assert "cam-2: 3 frames" in result.stderr


def test_a_placeholder_without_its_variable_names_the_camera(settings: Any, tmp_path: Path) -> None:
    site = SITE_YAML.replace(
        "rtsp://user:secret@10.0.0.5/stream1", "rtsp://${CAM1_USER}:${CAM1_PASS}@10.0.0.5/s"
    )
    site += """  - id: cam-3
    store_id: store-001
    name: Third
    stream_url: "${SECRET_DIR}/missing.avi"
    fps: 5
"""
    if VTEST is not None:
        site += """  - id: cam-2
    store_id: store-001
    name: Second
    stream_url: "${FOOTAGE}"
    fps: 5
"""
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))
    env = {
        **cli_env(settings, tmp_path),
        "CAM1_USER": "u5er",
        "SECRET_DIR": "/tmp/s3cr3t-d1r",
        "FOOTAGE": str(VTEST),
    }
    check = run_cli(["detect", "--check"], env=env, timeout=180)
    assert check.returncode == 2
    assert "stream_url placeholders without an environment variable: camera cam-1: CAM1_PASS" in check.stderr
    result = run_cli(["detect", "--pace", "fast", "--max-frames", "3"], env=env, timeout=180)
    assert result.returncode == 1
    assert "camera cam-1: stream_url needs the environment variable(s) CAM1_PASS" in result.stderr
    # A resolved value never shows, even where credential scrubbing would not catch it (a path).
    assert "camera cam-3: video file not found: ${SECRET_DIR}/missing.avi" in result.stderr
    assert "s3cr3t" not in result.stderr and "Traceback" not in result.stderr
    if VTEST is not None:
        assert "cam-2: 3 frames" in result.stderr  # ${FOOTAGE} resolved: the other camera goes on
