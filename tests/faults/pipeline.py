"""The whole pipeline under faults: its own Kafka and PostgreSQL, the centre's services under
the supervisor of `shrinkwatch run`, the driver's cameras, and a fault at a time.

A fault is one of:
- `kill`: SIGKILL (a crash, a power cut). A supervised service is restarted by the supervisor
  after its backoff; Kafka and PostgreSQL (every process of the server) are started again at
  once by the harness, as their own service manager would.
- `stop`: Kafka or PostgreSQL stopped cleanly (an upgrade, a restart) for `outage_s`, then
  started again.
- `freeze`: SIGSTOP for `outage_s` (a hung process, a VM paused), then SIGCONT. For
  PostgreSQL, the postmaster and every backend.

Recovery time: from the end of the fault (restarted, or thawed) until every consumer has
caught up with everything published before that moment (the flows' recovered offsets and the
dispatcher's committed ones reach the ends the topics had then) and the faulted part works
again (the dashboard's health check answers, the API its schema; the server takes
connections; the dispatcher has queued an alert about an incident that came after the fault,
which includes waiting for the next such incident; the camera reader has reported itself
online). That is how long the store was blind, end to end, not a process's own view.

The services run on fixed ports below the kernel's ephemeral range (31490-31495), so no
client socket takes a port while its server is down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from cli.run import supervisor
from flows.lag import recovered_offsets
from infra import services
from infra.kafka import KafkaBroker
from infra.mail_sink import MailSink
from infra.postgres import PostgresServer
from infra.supervisor import CENTRAL, Service, Supervisor
from shrinkwatch.net import port_open
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import REPO_ROOT, Settings, load_settings
from tests.faults.driver import Driver
from tests.faults.site import STORE, site_yaml

# In the repository, like the test services' home: the `postgres` user that runs the server
# must be able to reach it (a temporary folder of root's is not searchable). Wiped per run.
FAULTS_HOME = REPO_ROOT / ".shrinkwatch-faults"
PORTS = {
    "kafka_port": 31490,
    "kafka_controller_port": 31491,
    "postgres_port": 31492,
    "dashboard_port": 31493,
    "camera_sim_port": 31494,
    "api_port": 31495,
}
SUPERVISED = [s.name for s in CENTRAL]
SERVERS = ["kafka", "postgres"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    component: str  # a supervised service, "kafka" or "postgres"
    fault: str  # kill | stop | freeze

    @property
    def name(self) -> str:
        return f"{self.fault} {self.component}"


@dataclass
class Outcome:
    """What one fault did: when it began and ended (wall clock, epoch s), and how long the
    pipeline took to catch up after it (None: not within the limit)."""

    scenario: Scenario
    began: float
    ended: float
    recovery_s: float | None


def all_scenarios(real_camera: bool = False) -> list[Scenario]:
    """Every component with every fault that applies to it."""
    parts = [*SUPERVISED, *(["cameras"] if real_camera else [])]
    out = [Scenario(c, f) for c in parts for f in ("kill", "freeze")]
    out += [Scenario(s, f) for s in SERVERS for f in ("kill", "stop", "freeze")]
    return out


class Pipeline:
    """Start with `with Pipeline(...) as p:`; inject with `p.inject(scenario)`; `p.finish()`
    stops the driver and waits until everything sent is processed."""

    def __init__(
        self,
        root: Path,
        *,
        cameras: int = 4,
        outage_s: float = 30.0,
        real_camera: bool = False,
        say: Say = print,
    ) -> None:
        taken = [port for port in PORTS.values() if port_open(port)]
        if taken:
            msg = f"the fault suite needs ports {sorted(PORTS.values())}; in use: {taken}"
            raise RuntimeError(msg)
        self.root, self.outage_s, self.say = root, outage_s, say
        self.cameras = [f"cam-f{i}" for i in range(cameras)]  # the driver's
        self.services = list(CENTRAL)
        self.site = site_yaml(self.cameras)
        if real_camera:
            # The sample video served as a live camera, read by a real camera reader.
            video = shared_file("video", "vtest.avi")
            assert video is not None, "the real camera needs ../shared/video/vtest.avi"
            self.services = [
                Service("camera-sim", ("camera-sim", str(video))),
                *CENTRAL,
                Service("cameras", ("detect", "--camera", "cam-real")),  # the others are the driver's
            ]
            self.site = site_yaml(
                self.cameras, real_camera=f"http://127.0.0.1:{PORTS['camera_sim_port']}/video.mjpg"
            )
        self.mail = MailSink(root / "mail")
        shutil.rmtree(FAULTS_HOME, ignore_errors=True)
        self.settings: Settings = load_settings(
            None,
            home=FAULTS_HOME,
            topic_prefix="faults.",
            topic_partitions=2,
            smtp_host="127.0.0.1",
            smtp_port=self.mail.port,
            smtp_security="none",
            rollups_interval_s=15.0,
            # The default (120 s), longer than any fault and its recovery: a camera is "quiet"
            # only when it is.
            occupancy_idle_close_s=120.0,
            evidence=False,
            model=str(shared_file("models", "yolov8n.pt") or "yolov8n.pt"),
            alerts_snapshot_wait_s=0.0,
            metrics_port=0,  # the services' /metrics are tested elsewhere
            **PORTS,
        )
        self.driver: Driver | None = None
        self.sup: Supervisor | None = None
        self._polling = threading.Event()
        self._poller: threading.Thread | None = None
        self._started: list[str] = []
        self._fault_ended: datetime | None = None
        self._to_stop: list[str] = []  # services the supervisor thread stops for good

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> Pipeline:
        self.say("starting Kafka and PostgreSQL of the fault suite")
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Pipeline:
        from shrinkwatch.site_file import parse_site_config
        from warehouse.db import connect
        from warehouse.migrate import migrate
        from warehouse.site_tables import apply_site_config

        self._started = services.up(self.settings, progress=lambda _m: None)
        with connect(self.settings.database_dsn) as conn:
            migrate(conn, progress=lambda _m: None)
            apply_site_config(conn, parse_site_config(self.site, "fault site"))
        self.mail.start()
        self.sup = supervisor(
            self.settings, self.services, role="faults", say=lambda m: self.say(f"  [run] {m}")
        )
        self._poller = threading.Thread(target=self._poll, name="supervisor", daemon=True)
        self._poller.start()
        self.wait_for(self._all_up, "every service up", 180)
        self.driver = Driver(self.settings, self.cameras, STORE)
        self.driver.start()
        return self

    def _poll(self) -> None:
        # One thread spawns, watches and stops the services: a child started with
        # PR_SET_PDEATHSIG gets SIGTERM when the thread that started it ends.
        assert self.sup is not None
        self.sup.start()
        while not self._polling.wait(0.3):
            while self._to_stop:
                self.sup.stop_service(self._to_stop.pop())
            self.sup.poll()
        self.sup.stop()

    def __exit__(self, *_exc: object) -> None:
        if self.driver is not None and not self.driver._stop.is_set():  # noqa: SLF001
            self.driver.stop(flush_s=5)
        self.stop_services()
        with contextlib.suppress(Exception):  # not started, if the start failed
            self.mail.stop()
        services.down(self.settings, progress=lambda _m: None)

    def stop_services(self) -> None:
        """Stop the supervised services (the servers stay up)."""
        self._polling.set()
        if self._poller is not None:
            self._poller.join()

    # -- faults -----------------------------------------------------------------------------

    def inject(self, scenario: Scenario) -> Outcome:
        """Do the fault, and measure the recovery after it."""
        self.say(f"-- {scenario.name}")
        began = time.time()
        if scenario.component in SERVERS:
            self._server_fault(scenario)
        else:
            self._service_fault(scenario)
        ended = time.time()
        self._fault_ended = datetime.fromtimestamp(ended, UTC)
        recovery = self.recovery_after(scenario, limit_s=300)
        self.say(f"   recovered in {recovery:.1f} s" if recovery is not None else "   NOT recovered")
        return Outcome(scenario, began, ended, recovery)

    def _run_of(self, name: str) -> Any:
        assert self.sup is not None
        return next(r for r in self.sup.services if r.service.name == name)

    def _service_fault(self, scenario: Scenario) -> None:
        run = self._run_of(scenario.component)
        pid = self.wait_for(lambda: run.proc.pid if run.proc is not None else None, "a pid", 60)
        if scenario.fault == "kill":
            os.kill(pid, signal.SIGKILL)
        elif scenario.fault == "freeze":
            os.kill(pid, signal.SIGSTOP)
            time.sleep(self.outage_s)
            os.kill(pid, signal.SIGCONT)
        else:
            msg = f"no fault {scenario.fault!r} for a service"
            raise ValueError(msg)

    def _server_processes(self, component: str) -> list[psutil.Process]:
        if component == "kafka":
            pid = KafkaBroker(self.settings).running_pid()
        else:
            text = (PostgresServer(self.settings).data / "postmaster.pid").read_text()
            pid = int(text.split()[0])
        assert pid is not None
        top = psutil.Process(pid)
        return [top, *top.children(recursive=True)]

    def _server_fault(self, scenario: Scenario) -> None:
        quiet = lambda _m: None  # noqa: E731
        server: KafkaBroker | PostgresServer
        server = (
            KafkaBroker(self.settings) if scenario.component == "kafka" else PostgresServer(self.settings)
        )
        if scenario.fault == "kill":
            procs = self._server_processes(scenario.component)
            for proc in procs:
                proc.kill()
            psutil.wait_procs(procs, timeout=30)
            if scenario.component == "postgres":
                (PostgresServer(self.settings).data / "postmaster.pid").unlink(missing_ok=True)
            server.start(quiet)
        elif scenario.fault == "stop":
            server.stop(quiet)
            time.sleep(self.outage_s)
            server.start(quiet)
        elif scenario.fault == "freeze":
            procs = self._server_processes(scenario.component)
            for proc in procs:
                proc.suspend()
            time.sleep(self.outage_s)
            for proc in procs:
                proc.resume()
        else:
            msg = f"no fault {scenario.fault!r} for a server"
            raise ValueError(msg)

    # -- recovery ---------------------------------------------------------------------------

    def topic_ends(self, name: str) -> dict[int, int]:
        from confluent_kafka import Consumer, TopicPartition

        topic = self.settings.topic(name)
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_servers, "group.id": "faults-ends"})
        try:
            parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts}
        finally:
            consumer.close()

    def caught_up(self, ends: dict[str, dict[int, int]]) -> bool:
        """Whether every flow and the dispatcher have read up to `ends` ({topic name: ends})."""
        from shrinkwatch.kafka_admin import group_positions

        home = self.settings.home / "recovery"
        for flow, topic in (
            ("incidents", "detections"),
            ("occupancy", "detections"),
            ("health", "camera-health"),
        ):
            at = recovered_offsets(home / flow, self.settings.topic(topic))
            if any(at.get(p, -1) < end for p, end in ends[topic].items() if end > 0):
                return False
        group = group_positions(
            self.settings.kafka_servers, "faults.alerts", self.settings.topic("incidents")
        )
        at = group(sorted(ends["incidents"]))
        return not any(at.get(p, -1) < end for p, end in ends["incidents"].items() if end > 0)

    def _answers(self, component: str) -> bool:
        pages = {
            "dashboard": f"http://127.0.0.1:{self.settings.dashboard_port}/_stcore/health",
            "api": f"http://127.0.0.1:{self.settings.api_port}/openapi.json",
        }
        if component in pages:
            try:
                with urllib.request.urlopen(pages[component], timeout=2) as response:  # noqa: S310 (ours)
                    return bool(response.status == 200)
            except OSError:
                return False
        if component in SERVERS:
            from cli.run import dependencies_ready

            return dependencies_ready(self.settings)() is None
        run = self._run_of(component)
        if not (run.state == "up" and run.proc is not None and run.proc.poll() is None):
            return False
        # Up is not working: the dispatcher has queued an alert about an incident published
        # since the fault ended; the camera reader has reported itself online since then.
        if component == "alerts":
            return self._since("SELECT 1 FROM alert_outbox WHERE created_at > %s")
        if component == "cameras":
            return self._since(
                "SELECT 1 FROM camera_health WHERE camera_id = 'cam-real' AND status = 'online' "
                "AND reported_at > %s"
            )
        return True

    def _since(self, sql: str) -> bool:
        import psycopg

        assert self._fault_ended is not None
        with psycopg.connect(self.settings.database_dsn) as conn:
            return conn.execute(sql, (self._fault_ended,)).fetchone() is not None  # type: ignore[arg-type]

    def recovery_after(self, scenario: Scenario, limit_s: float) -> float | None:
        """Seconds from now until the pipeline has caught up with what was published before now."""
        start = time.monotonic()
        ends = None
        deadline = start + limit_s
        while time.monotonic() < deadline:
            try:
                # "Published before now" includes what the cameras buffered while Kafka was away.
                if (
                    ends is None
                    and self.driver is not None
                    and len(self.driver.producer) > len(self.cameras) * 5
                ):
                    time.sleep(0.25)
                    continue
                if ends is None:
                    ends = {t: self.topic_ends(t) for t in ("detections", "camera-health", "incidents")}
                if self._answers(scenario.component) and self.caught_up(ends):
                    return time.monotonic() - start
            except Exception:  # noqa: BLE001,S110 (a server coming back; ask again)
                pass
            time.sleep(0.25)
        return None

    def _all_up(self) -> bool:
        assert self.sup is not None
        return all(r.state == "up" for r in self.sup.services) and self._answers("dashboard")

    def wait_for(self, condition: Callable[[], Any], what: str, limit_s: float) -> Any:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.25)
        msg = f"the fault suite waited {limit_s:g} s for {what}"
        raise TimeoutError(msg)

    def finish(self) -> None:
        """Stop the driver (every frame delivered), wait until the pipeline has processed all
        of it and every alert is sent, then stop the services."""
        assert self.driver is not None
        self.driver.stop()
        real = [r.service.name for r in self.sup.services if r.service.name in ("cameras", "camera-sim")]
        if real:  # the real camera stops too (a camera that never goes quiet keeps its hour open)
            self._to_stop.extend(real)
            self.wait_for(lambda: all(self._run_of(n).state == "stopped" for n in real), "the camera", 120)
        self.say(
            f"driver stopped: {self.driver.delivered} frames delivered, {len(self.driver.failed)} failed"
        )
        ends = {t: self.topic_ends(t) for t in ("detections", "camera-health", "incidents")}
        self.wait_for(lambda: self.caught_up(ends), "the flows and the dispatcher to catch up", 600)
        self.say("caught up; waiting for the occupancy flow to close the quiet cameras' minutes")
        from tests.faults.verify import frames_per_camera, occupancy_settled, outbox_drained

        frames = {camera: sum(ids.values()) for camera, ids in frames_per_camera(self.settings).items()}
        self.wait_for(
            lambda: occupancy_settled(self.settings.database_dsn, frames), "the quiet cameras' minutes", 600
        )
        ends = {t: self.topic_ends(t) for t in ("detections", "camera-health", "incidents")}
        self.wait_for(lambda: self.caught_up(ends), "the last incidents to reach the dispatcher", 600)
        self.wait_for(lambda: outbox_drained(self.settings.database_dsn), "every alert sent", 600)
        self.stop_services()
