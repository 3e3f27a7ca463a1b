"""`alerts run`'s /metrics (alerts.metrics), scraped from the real process: the outbox depth
is what PostgreSQL holds when scraped (rows queued before the process started, and while it
runs, by someone else), and sends that fail against a dead SMTP port, and a webhook that
goes through, are counted per channel."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.rules import Recipient
from shrinkwatch import __version__
from shrinkwatch.contracts import encode
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.alerts.local_servers import webhook_receiver
from tests.factories import incident
from tests.metrics_support import Samples, metrics_base, metrics_url, try_scrape, value
from tests.support import cli_env, free_port, produce, spawn_cli, wait_for
from warehouse.alert_outbox import add_message, claim_ids, mark_sent
from warehouse.alert_recipients import save_recipient
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SITE = "stores: [{id: store-001, name: Leeds, timezone: Europe/London}]"
DEPTH = "shrinkwatch_alert_outbox_depth"


def with_recipient(settings: Settings, webhook_url: str, **extra: object) -> Settings:
    """Settings serving the alerts role's metrics on a free port, and Ana, who hears of high
    incidents in Leeds by email and webhook."""
    ready = settings.model_copy(update={"metrics_port": metrics_base("alerts"), **extra})
    with connect(ready.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        save_recipient(
            conn,
            Recipient(
                id="ana",
                name="Ana",
                email="ana@example.com",
                webhook_url=webhook_url,
                webhook_secret="a-test-secret",
                channels=("email", "webhook"),
                stores=("store-001",),
                min_level="high",
            ),
        )
    return ready


@contextmanager
def dispatcher(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`shrinkwatch alerts run` with these settings; the URL of its /metrics, once it answers."""
    log = tmp_path / "alerts.log"
    proc: subprocess.Popen[bytes] = spawn_cli(["alerts", "run"], cli_env(settings, tmp_path), log)
    url = metrics_url(settings, "alerts")
    try:
        wait_for(lambda: proc.poll() is not None or try_scrape(url), 90, what="the dispatcher's /metrics")
        assert proc.poll() is None, log.read_text()
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()


def depth(samples: Samples) -> dict[str, float]:
    return {dict(labels)["channel"]: v for (name, labels), v in samples.items() if name == DEPTH}


def scrape_with_depth(url: str) -> Samples:
    """A scrape that got the depth (one that took too long, or found PostgreSQL busy, is
    tried again)."""

    def with_depth() -> Samples | None:
        found = try_scrape(url)
        return found if found is not None and depth(found) else None

    samples: Samples = wait_for(with_depth, 60, what="a scrape with the outbox depth")
    return samples


def queue(settings: Settings, channel: str, subjects: range, due: datetime) -> list[int]:
    """Messages for Ana on `channel`, due at `due`, queued as the outbox queues them; their ids."""
    with connect(settings.database_dsn) as conn:
        for n in subjects:
            assert add_message(conn, f"test:{n}", "ana", channel, "test", {"name": "Ana"}, not_before=due)
        conn.commit()
        rows = conn.execute(
            "SELECT id FROM alert_outbox WHERE channel = %s AND subject = ANY(%s)",
            (channel, [f"test:{n}" for n in subjects]),
        ).fetchall()
    return [r["id"] for r in rows]


def test_the_outbox_depth_is_what_postgresql_holds_when_scraped(settings: Settings, tmp_path: Path) -> None:
    ready = with_recipient(settings, "http://127.0.0.1:9/hook")
    later = datetime.now(UTC) + timedelta(hours=1)  # not due: nothing sends them meanwhile
    emails = queue(ready, "email", range(4), later)
    queue(ready, "webhook", range(10, 12), later)
    with connect(ready.database_dsn) as conn:  # one email went out already: no longer queued
        (sent,) = claim_ids(conn, emails[:1])
        mark_sent(conn, sent)

    with dispatcher(ready, tmp_path) as url:
        first = scrape_with_depth(url)
        # Queued before this process started: read from PostgreSQL, not counted in memory.
        assert depth(first) == {"email": 3, "webhook": 2, "sms": 0, "apprise": 0}
        queue(ready, "webhook", range(20, 23), later)  # by another process, while it runs
        second = scrape_with_depth(url)
    assert depth(second) == {"email": 3, "webhook": 5, "sms": 0, "apprise": 0}
    assert value(second, "shrinkwatch_alert_send_failures_total", channel="email") == 0
    assert value(second, "shrinkwatch_alert_sent_total", channel="email") == 0
    assert value(second, "shrinkwatch_build_info", version=__version__, role="alerts") == 1


def test_failed_sends_to_a_dead_smtp_port_and_sent_webhooks_are_counted(
    settings: Settings, tmp_path: Path
) -> None:
    dead = free_port()  # nothing listens there
    with webhook_receiver() as hook:
        ready = with_recipient(
            settings,
            f"{hook.url}/hook",
            smtp_host="127.0.0.1",
            smtp_port=dead,
            smtp_security="none",
            alerts_max_attempts=1,  # one try each, then failed: the count cannot run on
            alerts_snapshot_wait_s=0,
        )
        now = datetime.now(UTC)
        versions = [incident(1, incident_id=f"m{n}", risk_level="high", started_at=now) for n in range(3)]
        produce(ready, ready.topic("incidents"), [(v.incident_id.encode(), encode(v)) for v in versions])

        def settled() -> bool:
            with connect(ready.database_dsn) as conn:
                rows = conn.execute("SELECT status FROM alert_outbox").fetchall()
            return len(rows) == 6 and all(r["status"] in ("sent", "failed") for r in rows)

        with dispatcher(ready, tmp_path) as url:
            wait_for(settled, 120, what="every alert sent or failed")
            samples = scrape_with_depth(url)
    with connect(ready.database_dsn) as conn:
        outcomes = conn.execute("SELECT channel, status, last_error FROM alert_outbox").fetchall()
    assert (
        sorted((r["channel"], r["status"]) for r in outcomes)
        == [("email", "failed")] * 3 + [("webhook", "sent")] * 3
    ), outcomes
    assert len(hook.requests) == 3
    assert value(samples, "shrinkwatch_alert_send_failures_total", channel="email") == 3
    assert value(samples, "shrinkwatch_alert_sent_total", channel="email") == 0
    assert value(samples, "shrinkwatch_alert_sent_total", channel="webhook") == 3
    assert value(samples, "shrinkwatch_alert_send_failures_total", channel="webhook") == 0
    assert depth(samples) == {"email": 0, "webhook": 0, "sms": 0, "apprise": 0}
