"""Kafka goes away mid-run: the reader keeps analysing, reports degraded, and loses nothing."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.kafka import KafkaBroker, ensure_topics
from shrinkwatch.contracts import CameraHealth, Detection, decode
from shrinkwatch.sites import parse_site_config
from tests.support import TEST_HOME, VTEST, cli_env, consume, free_port, needs_footage, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.sites import apply_site_config

FRAMES = 90


@pytest.fixture
def own_broker(settings: Any, tmp_path: Path) -> Iterator[tuple[Any, KafkaBroker]]:
    """A broker of this test's own, on its own ports, that the test may stop and start."""
    port = free_port()
    home = TEST_HOME / f"broker-{tmp_path.name}"
    shutil.rmtree(home, ignore_errors=True)
    own = settings.model_copy(
        update={
            "kafka_bootstrap": f"127.0.0.1:{port}",
            "kafka_port": port,
            "kafka_controller_port": free_port(),
            "home": home,
        }
    )
    broker = KafkaBroker(own)
    broker.start(progress=lambda _m: None)
    ensure_topics(own)
    yield own, broker
    broker.stop(progress=lambda _m: None)
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
@needs_footage
def test_broker_outage_buffers_and_resumes(own_broker: tuple[Any, KafkaBroker], tmp_path: Path) -> None:
    settings, broker = own_broker
    with connect(settings.database_dsn) as conn:
        apply_site_config(
            conn,
            parse_site_config(f"""
stores: [{{id: store-001, name: Downtown, timezone: Europe/London}}]
cameras: [{{id: cam-1, store_id: store-001, name: Aisle, stream_url: "{VTEST}", fps: 5}}]
"""),
        )
    log = tmp_path / "detect.log"
    detect = spawn_cli(["detect", "--loop", "--max-frames", str(FRAMES)], cli_env(settings, tmp_path), log)
    try:
        wait_for(
            lambda: "delivered" in log.read_text() and "delivered 0 " not in log.read_text(),
            90,
            what="first deliveries",
        )
        broker.stop(progress=lambda _m: None)
        wait_for(lambda: "Kafka unreachable" in log.read_text(), 30, what="the reader noticing")
        time.sleep(4)  # analysis goes on meanwhile
        assert detect.poll() is None
        broker.start(progress=lambda _m: None)
        assert detect.wait(timeout=120) == 0
    finally:
        if detect.poll() is None:
            detect.kill()
    text = log.read_text()
    assert "Kafka reachable again" in text
    assert f"cam-1: {FRAMES} frames" in text

    frames = [
        decode(m.value(), Detection)
        for m in consume(settings, settings.topic("detections"), until=FRAMES + 1, timeout_s=20)
    ]
    assert [f.frame_id for f in frames] == list(range(FRAMES))  # all of them, once each, in order
    health = [
        decode(m.value(), CameraHealth)
        for m in consume(settings, settings.topic("camera-health"), until=1000, timeout_s=5)
    ]
    degraded = [h for h in health if h.status == "degraded"]
    assert degraded and all("Kafka" in (h.error or "") for h in degraded)
    assert health[-1].status == "online"
