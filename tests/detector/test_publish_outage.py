"""Kafka goes away mid-run: the reader keeps analysing, reports degraded, and loses nothing."""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.kafka import KafkaBroker
from shrinkwatch.contracts import CameraHealth, Detection, decode
from shrinkwatch.kafka_admin import ensure_topics
from shrinkwatch.site_file import parse_site_config
from tests.support import TEST_HOME, VTEST, cli_env, free_port, needs_footage, read_all, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.site_tables import apply_site_config


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


def health_events(settings: Any) -> list[CameraHealth]:
    """Every camera-health event so far, in order (one camera: one partition)."""
    return [decode(m.value(), CameraHealth) for m in read_all(settings, settings.topic("camera-health"))]


@pytest.mark.slow
@needs_footage
def test_broker_outage_buffers_and_resumes(own_broker: tuple[Any, KafkaBroker], tmp_path: Path) -> None:
    """Each step waits for its event: the reader noticing, the broker back, a health report
    after the recovery (online, or degraded for slowness on a slow machine, but no longer
    about Kafka); then the reader is stopped and every frame it counted must be there."""
    settings, broker = own_broker
    with connect(settings.database_dsn) as conn:
        apply_site_config(
            conn,
            parse_site_config(f"""
stores: [{{id: store-001, name: Downtown, timezone: Europe/London}}]
cameras: [{{id: cam-1, store_id: store-001, name: Aisle, stream_url: "{VTEST}", fps: 2}}]
"""),
        )
    log = tmp_path / "detect.log"
    detect = spawn_cli(["detect", "--loop"], cli_env(settings, tmp_path), log)
    try:
        wait_for(
            lambda: "delivered" in log.read_text() and "delivered 0 " not in log.read_text(),
            300,
            what="first deliveries",
        )
        broker.stop(progress=lambda _m: None)
        wait_for(lambda: "Kafka unreachable" in log.read_text(), 120, what="the reader noticing")
        # Analysis goes on meanwhile: frames are counted while nothing can be delivered.
        counted = frames_counted(log.read_text())
        wait_for(lambda: frames_counted(log.read_text()) > counted, 120, what="analysis during the outage")
        assert detect.poll() is None
        broker.start(progress=lambda _m: None)
        wait_for(lambda: "Kafka reachable again" in log.read_text(), 120, what="the reader reconnecting")
        wait_for(lambda: reports_after_recovery(settings), 180, what="a health report after the recovery")
        detect.send_signal(signal.SIGINT)
        assert detect.wait(timeout=120) == 0
    finally:
        if detect.poll() is None:
            detect.kill()
    total = frames_counted(log.read_text())
    frames = [decode(m.value(), Detection) for m in read_all(settings, settings.topic("detections"))]
    assert [f.frame_id for f in frames] == list(range(total))  # all of them, once each, in order
    health = health_events(settings)
    assert any(h.status == "degraded" and "Kafka" in (h.error or "") for h in health), health
    assert reports_after_recovery(settings)


def reports_after_recovery(settings: Any) -> list[CameraHealth]:
    """Health reports after the last one about Kafka: the camera up, and Kafka no longer the
    problem (`degraded` may remain, for slowness, on a machine that cannot keep the fps)."""
    health = health_events(settings)
    about_kafka = [i for i, h in enumerate(health) if "Kafka" in (h.error or "")]
    if not about_kafka:
        return []
    return [h for h in health[about_kafka[-1] + 1 :] if h.status in ("online", "degraded")]


def frames_counted(log: str) -> int:
    """The reader's latest count of frames analysed for cam-1 (0 before its first report)."""
    counts = re.findall(r"cam-1: (\d+) frames", log)
    return int(counts[-1]) if counts else 0
