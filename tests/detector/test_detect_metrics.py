"""The camera readers' Prometheus metrics (detector/metrics.py), scraped from a real
`shrinkwatch detect` on vtest.avi over HTTP and checked against what it published to Kafka."""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from detector.metrics import CameraMetrics
from detector.publisher import Publisher
from detector.sources import LiveSource
from shrinkwatch import __version__
from shrinkwatch.contracts import Detection, decode
from shrinkwatch.metrics import port_for
from shrinkwatch.settings import load_settings
from shrinkwatch.site_file import parse_site_config
from tests.detector.test_sources_decode import Camera
from tests.factories import frame
from tests.metrics_support import metrics_base, metrics_url, try_scrape, value
from tests.support import VTEST, cli_env, needs_footage, read_all, run_cli, serving, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

FRAMES = 40  # --max-frames: at 5 fps in real time, 8 s of footage


def test_the_publishers_drops_are_counted_for_their_camera() -> None:
    settings = load_settings(None, kafka_bootstrap="127.0.0.1:1", metrics_port=0)  # nothing listens
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    metrics = CameraMetrics.of("store-m", camera)
    publisher = Publisher(settings, buffer_messages=5, inflight=1)
    try:
        publisher.publish(frame(camera, 0, 0.0, []), metrics)
        wait_for(lambda: publisher.backlog == 1 and not publisher._buffer, 60, what="the first hand-over")
        for i in range(1, 20):
            publisher.publish(frame(camera, i, i * 0.2, []), metrics)
        labels = {"store": "store-m", "camera": camera}
        dropped = {**labels, "reason": "publisher_queue"}
        assert REGISTRY.get_sample_value("shrinkwatch_camera_frames_dropped_total", dropped) == 14
        assert publisher.dropped == 14
        assert REGISTRY.get_sample_value("shrinkwatch_camera_publish_lag_seconds_count", labels) == 0
    finally:
        publisher.close(timeout_s=1)


def test_a_live_reader_behind_its_ticks_counts_the_ticks_it_missed() -> None:
    camera = Camera()  # 20 new frames a second
    with serving(camera.handler()) as url:
        source = LiveSource(url + "/video.mjpg", 5.0)  # a tick every 0.2 s
        stop = threading.Event()
        taken = 0
        try:
            for _frame in source.frames(stop):
                taken += 1
                if taken == 4:
                    break
                time.sleep(1.05)  # analysis this slow: 4 ticks and more go by unlooked at
        finally:
            stop.set()
            camera.stop.set()
    # After each of the 3 slow frames, at least (1.05 - 0.2) / 0.2 whole ticks were missed.
    assert source.behind >= 3 * 4


def site(cameras: str) -> str:
    return f"""
stores: [{{id: store-m, name: Metrics, timezone: Europe/London}}]
cameras:
{cameras}"""


FILE_CAMERA = f"  - {{id: cam-file, store_id: store-m, name: File, stream_url: '{VTEST}', fps: 5}}\n"
# Nothing listens on port 1: offline from the start, retried for ever (detect keeps running).
GONE_CAMERA = (
    "  - {id: cam-gone, store_id: store-m, name: Gone, stream_url: 'rtsp://127.0.0.1:1/x', fps: 2}\n"
)


def detections_of(settings: Any, camera: str) -> list[Detection]:
    frames = [decode(m.value(), Detection) for m in read_all(settings, settings.topic("detections"))]
    return [f for f in frames if f.camera_id == camera]


@pytest.mark.slow
@needs_footage
def test_detect_serves_what_it_analysed_and_published(settings: Any, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site(FILE_CAMERA + GONE_CAMERA)))
    settings = settings.model_copy(update={"metrics_port": metrics_base("detect"), "imgsz": 320})
    url = metrics_url(settings, "detect")
    file_cam = {"store": "store-m", "camera": "cam-file"}
    gone_cam = {"store": "store-m", "camera": "cam-gone"}
    detect = spawn_cli(
        ["detect", "--pace", "realtime", "--max-frames", str(FRAMES)],
        cli_env(settings, tmp_path),
        tmp_path / "detect.log",
    )
    try:
        # While the file plays in real time its camera is up (online, or degraded on a slow machine).
        wait_for(
            lambda: (s := try_scrape(url)) and value(s, "shrinkwatch_camera_up", **file_cam) == 1,
            120,
            interval_s=0.2,
            what="cam-file up",
        )

        # The file ends after FRAMES frames; the gone camera keeps detect (and its /metrics) up.
        def settled() -> Any:
            s = try_scrape(url)
            done = (
                s
                and value(s, "shrinkwatch_camera_publish_lag_seconds_count", **file_cam) == FRAMES
                and value(s, "shrinkwatch_camera_up", **file_cam) == 0  # its reader has ended
            )
            return s if done else None

        samples = wait_for(settled, 180, what=f"{FRAMES} frames of cam-file acknowledged by Kafka")
        published = detections_of(settings, "cam-file")
        assert len(published) == FRAMES
        assert value(samples, "shrinkwatch_camera_frames_analysed_total", **file_cam) == len(published)
        inferred = value(samples, "shrinkwatch_camera_inference_seconds_count", **file_cam)
        assert inferred is not None and 1 <= inferred <= FRAMES  # the motion gate may skip some
        assert value(samples, "shrinkwatch_camera_inference_seconds_sum", **file_cam) > 0
        for reason in ("publisher_queue", "behind"):
            assert value(samples, "shrinkwatch_camera_frames_dropped_total", **file_cam, reason=reason) == 0
        # The camera that never connected: listed, down, nothing analysed.
        assert value(samples, "shrinkwatch_camera_up", **gone_cam) == 0
        assert value(samples, "shrinkwatch_camera_frames_analysed_total", **gone_cam) == 0
        assert value(samples, "shrinkwatch_build_info", version=__version__, role="detect") == 1
        assert detect.poll() is None
    finally:
        detect.send_signal(signal.SIGINT)
        detect.wait(timeout=90)


@pytest.mark.slow
@needs_footage
def test_detect_runs_without_metrics_when_its_port_is_taken(settings: Any, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site(FILE_CAMERA)))
    settings = settings.model_copy(update={"metrics_port": metrics_base("detect"), "imgsz": 320})
    port = port_for(settings, "detect")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_cli(
            ["detect", "--pace", "fast", "--max-frames", "5"], env=cli_env(settings, tmp_path), timeout=600
        )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "metrics_port" in output
    assert len(detections_of(settings, "cam-file")) == 5
