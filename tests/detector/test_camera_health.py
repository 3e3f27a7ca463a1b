"""Live cameras over RTSP and MJPEG: health events through outages, freezes and bad URLs.

Nothing here depends on how fast the machine is: a camera that is back is `online`, or
`degraded` when this machine cannot analyse its fps (both mean "connected and reading");
each step waits for the event it needs, with bounds that only catch a reader that never
gets there. How soon a camera turns offline is `assess`'s rule (tests/detector/test_health.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shrinkwatch.contracts import CameraHealth, Detection, decode
from shrinkwatch.site_file import parse_site_config
from tests.support import VTEST, cli_env, free_port, needs_footage, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

pytestmark = [needs_footage, pytest.mark.slow]


class CameraSim:
    """camera-sim in its own process group, so a test can kill or freeze all of it."""

    def __init__(self, log: Path) -> None:
        self.http, self.rtsp, self.log = free_port(), free_port(), log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "camera-sim",
                str(VTEST),
                "--port",
                str(self.http),
                "--rtsp-port",
                str(self.rtsp),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: "RTSP on" in self.log.read_text(), 120, what="camera-sim")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[CameraSim]:
    camera = CameraSim(tmp_path / "sim.log")
    camera.start()
    yield camera
    if camera.proc and camera.proc.poll() is None:
        camera.signal(signal.SIGCONT)
        camera.kill()


class Watcher:
    """Reads sw.camera-health and sw.detections as they arrive."""

    def __init__(self, settings: Any) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_servers,
                "group.id": "health-test",
                "auto.offset.reset": "earliest",
                "log_level": 3,
            }
        )
        self.consumer.subscribe([settings.topic("camera-health"), settings.topic("detections")])
        self.health: list[CameraHealth] = []
        self.frames: list[Detection] = []
        self.health_topic = settings.topic("camera-health")

    def poll(self) -> None:
        for msg in self.consumer.consume(200, timeout=0.2):
            if msg.error() is None:
                if msg.topic() == self.health_topic:
                    self.health.append(decode(msg.value(), CameraHealth))
                else:
                    self.frames.append(decode(msg.value(), Detection))

    def frames_after(self, camera: str, since: datetime) -> list[Detection]:
        """Frames of `camera` captured after `since` (read so far)."""
        self.poll()
        return [f for f in self.frames if f.camera_id == camera and f.ts > since]

    def status_after(
        self,
        camera: str,
        statuses: set[str],
        since: datetime,
        timeout_s: float = 180,
        error: str | None = None,
    ) -> CameraHealth:
        """The first health event of `camera` at or after `since` with one of `statuses`."""

        def found() -> CameraHealth | None:
            self.poll()
            return next(
                (
                    h
                    for h in self.health
                    if h.camera_id == camera
                    and h.status in statuses
                    and h.ts >= since
                    and (error is None or error in (h.error or ""))
                ),
                None,
            )

        what = f"{camera} {'/'.join(sorted(statuses))}"
        return wait_for(found, timeout_s, interval_s=0.1, what=what)  # type: ignore[no-any-return]


UP = {"online", "degraded"}  # connected and reading (degraded: slower than the camera's fps)
OFFLINE = {"offline"}


def test_outage_freeze_and_bad_url(sim: CameraSim, settings: Any, tmp_path: Path) -> None:
    # Credentials as ${VAR} placeholders (CONTRACTS §2): resolved when the camera opens.
    rtsp = f"rtsp://${{CAM_USER}}:${{CAM_PASS}}@127.0.0.1:{sim.rtsp}/stream"
    mjpeg = f"http://127.0.0.1:{sim.http}/video.mjpg"
    bad = "rtsp://admin:hunter2@127.0.0.1:1/live/${STREAM_KEY}"  # a secret scrubbing cannot see
    site = f"""
stores: [{{id: store-001, name: Downtown, timezone: Europe/London}}]
cameras:
  - {{id: cam-rtsp, store_id: store-001, name: RTSP, stream_url: "{rtsp}", fps: 2}}
  - {{id: cam-mjpeg, store_id: store-001, name: MJPEG, stream_url: "{mjpeg}", fps: 2}}
  - {{id: cam-bad, store_id: store-001, name: Bad, stream_url: "{bad}", fps: 2}}
"""
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))
    with connect(settings.database_dsn) as conn:
        stored = conn.execute("SELECT stream_url FROM cameras WHERE id = 'cam-rtsp'").fetchone()
    assert stored is not None and stored["stream_url"] == rtsp  # the template, never the secret
    env = {
        **cli_env(settings, tmp_path),
        "CAM_USER": "admin",
        "CAM_PASS": "hunter2",
        "STREAM_KEY": "k3y-0f-str3am",
    }
    detect = spawn_cli(["detect"], env, tmp_path / "detect.log")
    watch = Watcher(settings)
    try:
        start = datetime.now(UTC)
        for cam in ("cam-rtsp", "cam-mjpeg"):
            watch.status_after(cam, UP, start)
        # First "connecting", then the failed attempt, with the URL's credentials scrubbed.
        watch.status_after(
            "cam-bad", OFFLINE, start, error="cannot open rtsp://***@127.0.0.1:1/live/${STREAM_KEY}"
        )

        # The server dies: both cameras go offline, then come back when it returns.
        killed = datetime.now(UTC)
        sim.kill()
        for cam in ("cam-rtsp", "cam-mjpeg"):
            watch.status_after(cam, OFFLINE, killed)
        sim.start()
        back = datetime.now(UTC)
        for cam in ("cam-rtsp", "cam-mjpeg"):
            watch.status_after(cam, UP, back)
            wait_for(
                lambda cam=cam: watch.frames_after(cam, back), 180, what=f"{cam} frames after the reconnect"
            )

        # A frozen server (stopped, not gone) is noticed too: no *new* frames.
        frozen = datetime.now(UTC)
        sim.signal(signal.SIGSTOP)
        for cam in ("cam-rtsp", "cam-mjpeg"):
            watch.status_after(cam, OFFLINE, frozen)
        sim.signal(signal.SIGCONT)
        thawed = datetime.now(UTC)
        for cam in ("cam-rtsp", "cam-mjpeg"):
            watch.status_after(cam, UP, thawed)
    finally:
        detect.send_signal(signal.SIGINT)
        code = detect.wait(timeout=60)
        watch.consumer.close()
    assert code == 0
    log = (tmp_path / "detect.log").read_text()
    assert "hunter2" not in log and "k3y-0f-str3am" not in log
    errors = [h.error for h in watch.health if h.error]
    assert errors and not [e for e in errors if "hunter2" in e or "k3y-0f-str3am" in e]
    statuses = {
        h.camera_id: {x.status for x in watch.health if x.camera_id == h.camera_id} for h in watch.health
    }
    assert statuses["cam-bad"] == {"offline"}
