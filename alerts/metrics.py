"""The alert dispatcher's Prometheus metrics, served by `alerts run` (shrinkwatch.metrics,
role `alerts`; docs/ALERTS.md "Metrics").

- `shrinkwatch_alert_outbox_depth{channel}`: messages waiting to be sent (pending, or claimed
  and not yet marked sent), read from PostgreSQL when Prometheus scrapes, never counted in
  memory: it is right from the first scrape after a restart, and the same whichever
  dispatcher queued or sends the messages. Every channel is there, 0 when none waits. While
  PostgreSQL does not answer the depth is left out of the scrape (unknown, not 0).
- `shrinkwatch_alert_sent_total{channel}`: messages a channel accepted, by this process;
- `shrinkwatch_alert_send_failures_total{channel}`: sends that failed, by this process, each
  attempt once (a message that failed twice and then went out counts two failures and one
  send; a message that cannot be built counts as a failure of its channel).

Both counters start at 0 for every channel, so `rate()` sees the first failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shrinkwatch.metrics import MetricsServer, serve
from shrinkwatch.recipients import CHANNELS
from shrinkwatch.settings import Settings
from warehouse.alert_outbox import queued_by_channel
from warehouse.db import connect

log = logging.getLogger(__name__)
DEPTH = "shrinkwatch_alert_outbox_depth"
DEPTH_HELP = "Alert messages queued and not yet sent (pending or being sent), per channel (from PostgreSQL)."
SCRAPE_CONNECT_S = 3.0  # within Prometheus's 10 s scrape timeout

SENT = Counter("shrinkwatch_alert_sent", "Alert messages a channel accepted, per channel.", ["channel"])
SEND_FAILURES = Counter(
    "shrinkwatch_alert_send_failures", "Alert sends that failed (each attempt), per channel.", ["channel"]
)
for _channel in CHANNELS:
    SENT.labels(_channel)
    SEND_FAILURES.labels(_channel)


def depth_family(queued: dict[str, int]) -> GaugeMetricFamily:
    """The depth gauge of these queued counts: every known channel (0 when absent), then any
    other channel the table holds."""
    family = GaugeMetricFamily(DEPTH, DEPTH_HELP, labels=["channel"])
    for channel in [*CHANNELS, *sorted(set(queued) - set(CHANNELS))]:
        family.add_metric([channel], queued.get(channel, 0))
    return family


class OutboxDepth(Collector):
    """The depth gauge, asked of PostgreSQL on a connection of its own at each scrape."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(DEPTH, DEPTH_HELP, labels=["channel"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with connect(self.dsn, autocommit=True, timeout_s=SCRAPE_CONNECT_S) as conn:
                queued = queued_by_channel(conn)
        except Exception as exc:  # noqa: BLE001 (a scrape must answer with what it has)
            log.debug("alert outbox depth not read: %s", exc)
            return
        yield depth_family(queued)


_registered = threading.Lock()
_outbox_depth: OutboxDepth | None = None


def serve_metrics(settings: Settings, say: Callable[[str], None] | None = None) -> MetricsServer:
    """Serve this process's metrics as the `alerts` role, with the outbox depth of the
    database these settings name (registered once per process); a MetricsServer whose port
    is None when metrics are off or could not listen (shrinkwatch.metrics.serve)."""
    global _outbox_depth
    server = serve(settings, "alerts", say=say)
    if server.port is not None:
        with _registered:
            if _outbox_depth is None:
                _outbox_depth = OutboxDepth(settings.database_dsn)
                REGISTRY.register(_outbox_depth)
            _outbox_depth.dsn = settings.database_dsn
    return server
