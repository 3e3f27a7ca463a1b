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
from collections.abc import Callable
from functools import partial

from prometheus_client import Counter

from shrinkwatch.metrics import MetricsServer, ReadAtScrape, read_at_scrape, serve
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


def depth_of(queued: dict[str, int]) -> dict[str, int]:
    """The depth gauge's values of these queued counts: every known channel (0 when absent),
    then any other channel the table holds."""
    return {channel: queued.get(channel, 0) for channel in [*CHANNELS, *sorted(set(queued) - set(CHANNELS))]}


def read_depth(dsn: str) -> dict[str, int]:
    """The outbox depth per channel, as PostgreSQL holds it now."""
    with connect(dsn, autocommit=True, timeout_s=SCRAPE_CONNECT_S) as conn:
        return depth_of(queued_by_channel(conn))


def outbox_depth(dsn: str) -> ReadAtScrape:
    """The depth gauge of this database, read at each scrape (not registered)."""
    return ReadAtScrape(DEPTH, DEPTH_HELP, ["channel"], partial(read_depth, dsn))


def serve_metrics(settings: Settings, say: Callable[[str], None] | None = None) -> MetricsServer:
    """Serve this process's metrics as the `alerts` role, with the outbox depth of the
    database these settings name (registered once per process); a MetricsServer whose port
    is None when metrics are off or could not listen (shrinkwatch.metrics.serve)."""
    server = serve(settings, "alerts", say=say)
    if server.port is not None:
        read_at_scrape(DEPTH, DEPTH_HELP, ["channel"], partial(read_depth, settings.database_dsn))
    return server
