"""Prometheus metrics: every long-running service serves its own /metrics (issue 22).

The policy, the same for every service:

- **Where.** A long-running command serves prometheus_client's text exposition over HTTP on
  `metrics_host` (127.0.0.1: scraped from the box, or open it to the network on purpose) at a
  port fixed by its role: `metrics_port` (9560) + the role's offset (ROLE_OFFSETS) + 10 x its
  instance, the instance being a camera reader's shard index (`detect --shard I/N`) or a flow's
  process id (`flows run --processes M`: each process serves its own), 0 otherwise. So the
  ports of a box are known from its settings alone (`port_for`), and a Prometheus scrape
  config is written once. `metrics_port` 0 turns them all off. The API serves /metrics on its
  own port beside its routes instead (`exposition`).
- **What.** The process's metrics in prometheus_client's default registry (each part
  declares its own, at module level, under the names of docs/OPERATIONS.md's "Metrics"), the
  client's default process and platform collectors, and `shrinkwatch_build_info{version,role}`
  = 1 (`mark_build`).
- **Read when scraped.** A gauge of what PostgreSQL holds (the alert outbox's depth, the
  rollups' last success) is read at each scrape on a connection of its own (`ReadAtScrape`,
  registered once per process by `read_at_scrape`), never kept in memory: it is right from the
  first scrape after a restart and the same in every process. A read that fails leaves the
  family out of that scrape (unknown, not 0), and the scrape answers with the rest.
- **Never a service down.** Metrics are served from a daemon thread; a port already taken (or
  any other failure to listen) is said once, naming the port and the setting, and the
  service runs on without metrics. Recording a metric never raises.

    metrics = serve(settings, "incidents")   # a MetricsServer; .port is None when not serving
    ...
    metrics.close()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shrinkwatch import __version__
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)

# Each long-running role's port, as an offset from `metrics_port`. A new role takes the next
# free offset below INSTANCE_STRIDE; an offset is never reused for another role (scrape
# configs name them).
ROLE_OFFSETS: dict[str, int] = {
    "detect": 0,  # shrinkwatch detect (the supervisor's `cameras`)
    "incidents": 1,  # shrinkwatch flows run incidents
    "occupancy": 2,  # shrinkwatch flows run occupancy
    "health": 3,  # shrinkwatch flows run health
    "alerts": 4,  # shrinkwatch alerts run
    "rollups": 5,  # shrinkwatch rollups run --schedule
    "dashboard": 6,  # shrinkwatch app
    "calibration": 7,  # shrinkwatch flows calibrate --schedule
    "privacy": 8,  # shrinkwatch privacy purge --schedule
    "flow": 9,  # shrinkwatch flows run <module path>: a data team's own flow
}
INSTANCE_STRIDE = 10  # instance i of a role (a shard, a flow's process) at +10 x i

BUILD_INFO = Gauge(
    "shrinkwatch_build_info",
    "Always 1: the Shrinkwatch version and the role of the process that serves these metrics.",
    ["version", "role"],
)


def port_for(settings: Settings, role: str, instance: int = 0) -> int | None:
    """The port the `instance` of `role` serves metrics on; None when metrics are off
    (`metrics_port` 0). ValueError for a role not in ROLE_OFFSETS, or a port past 65535."""
    if role not in ROLE_OFFSETS:
        msg = f"no metrics port for role {role!r}; give one of {', '.join(ROLE_OFFSETS)}"
        raise ValueError(msg)
    if instance < 0:
        msg = f"instance must be 0 or more, not {instance}"
        raise ValueError(msg)
    if settings.metrics_port == 0:
        return None
    port = settings.metrics_port + ROLE_OFFSETS[role] + INSTANCE_STRIDE * instance
    if port > 65535:
        msg = (
            f"the metrics port of {role} instance {instance} would be {port}, past 65535: "
            "give metrics_port a lower base"
        )
        raise ValueError(msg)
    return port


def mark_build(role: str) -> None:
    """Set `shrinkwatch_build_info{version,role}` to 1 for this process."""
    BUILD_INFO.labels(version=__version__, role=role).set(1)


class ReadAtScrape(Collector):
    """A gauge family read by `read` at each scrape (see the module docstring)."""

    def __init__(self, name: str, documentation: str, labels: list[str], read: Callable[[], Any]) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.read = read  # -> {label value (or tuple of them): value}

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self.family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            values = self.read()
        except Exception as exc:  # noqa: BLE001 (a scrape answers with what it has)
            log.debug("%s not read: %s", self.name, exc)
            return
        family = self.family()
        for key, value in values.items():
            family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
        yield family


_read_at_scrape: dict[str, ReadAtScrape] = {}
_read_at_scrape_lock = threading.Lock()


def read_at_scrape(name: str, documentation: str, labels: list[str], read: Callable[[], Any]) -> None:
    """Export the gauge family `name` from this process's registry, read by `read` at each
    scrape: registered once per process, a later call replacing its `read` (another database)."""
    with _read_at_scrape_lock:
        collector = _read_at_scrape.get(name)
        if collector is None:
            collector = _read_at_scrape[name] = ReadAtScrape(name, documentation, labels, read)
            REGISTRY.register(collector)
        collector.read = read


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the text exposition format, and its content type: for a
    service that serves /metrics on a port of its own (the API)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@dataclass
class MetricsServer:
    """The metrics server of a process (or none: `port` None when off or not listening)."""

    role: str
    port: int | None = None
    host: str = "127.0.0.1"
    _server: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str | None:
        """Where its /metrics answers (None when not serving)."""
        return None if self.port is None else f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (the port is free once this returns); nothing when not serving."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def serve(
    settings: Settings, role: str, *, instance: int = 0, say: Callable[[str], None] | None = None
) -> MetricsServer:
    """Serve this process's metrics for `role` (its `instance`) on a daemon thread, with
    shrinkwatch_build_info set; a MetricsServer whose `port` is None when metrics are off or
    the port could not be listened on (said once through `say`, default a logged warning: the
    service goes on without metrics)."""
    tell = say or log.warning
    mark_build(role)
    try:
        port = port_for(settings, role, instance)
    except ValueError as exc:
        tell(f"metrics: {exc}; running without metrics")
        return MetricsServer(role)
    if port is None:
        return MetricsServer(role)
    host = settings.metrics_host
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        tell(
            f"metrics: cannot listen on {host}:{port} ({exc.strerror or exc}): {role} runs without "
            f"metrics; the port is metrics_port ({settings.metrics_port}) + {port - settings.metrics_port} "
            "for this role: free it, or set metrics_port to another base (0: no metrics)"
        )
        return MetricsServer(role)
    thread.name = f"metrics-{role}"
    return MetricsServer(role, port, host, server, thread)
