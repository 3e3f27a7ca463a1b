"""`alerts run` rides out outages: PostgreSQL cut off mid-run (a real network drop, through
tests/tcp_proxy.py, in front of the real server) and Kafka away when it starts. Every alert
arrives exactly once, the outage is said once and its end once, and the dispatcher takes
the digest lock again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from alerts.dispatcher import Counts, run
from shrinkwatch.settings import Settings
from tests.alerts.conftest import Mailbox
from tests.alerts.test_dispatcher import configured, publish
from tests.factories import incident
from tests.support import free_port, wait_for
from tests.tcp_proxy import TcpProxy
from warehouse.alert_digests import DIGEST_LOCK
from warehouse.db import connect


@contextmanager
def dispatching(settings: Settings, said: list[str]) -> Iterator[list[Counts]]:
    """`alerts run` in a thread (its progress lines into `said`), stopped at the end; it
    must end by being stopped, never by an error."""
    stop, done, failed = threading.Event(), list[Counts](), list[BaseException]()

    def work() -> None:
        try:
            done.append(run(settings, stop, progress=said.append, poll_s=0.2))
        except BaseException as exc:
            failed.append(exc)
            raise

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failed, failed
    assert not thread.is_alive() and len(done) == 1


def cameras(messages: list[tuple[list[str], EmailMessage]]) -> Counter[str]:
    """How many emails each incident's camera got (one incident per camera here)."""
    return Counter(str(m["Subject"]).rsplit("(", 1)[1].rstrip(")") for _, m in messages)


def statuses(settings: Settings) -> Counter[str]:
    with connect(settings.database_dsn) as conn:
        return Counter(r["status"] for r in conn.execute("SELECT status FROM alert_outbox"))


def lock_holder(settings: Settings) -> int | None:
    """The backend pid holding the digest scheduler's lock in this database, if any."""
    with connect(settings.database_dsn) as conn:
        row = conn.execute(
            """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
            (DIGEST_LOCK,),
        ).fetchone()
    return row["pid"] if row else None


def some(settings: Settings, names: range) -> None:
    now = datetime.now(UTC)
    publish(
        settings,
        *[
            incident(1, incident_id=f"o{n}", camera_id=f"cam-{n}", risk_level="high", started_at=now)
            for n in names
        ],
    )


def test_postgresql_cut_off_mid_run_loses_nothing_and_sends_nothing_twice(
    settings: Settings, mailbox: Mailbox
) -> None:
    ready = configured(settings, mailbox)
    said: list[str] = []
    with TcpProxy.before(ready.database_dsn) as proxy:
        through = ready.model_copy(update={"database_url": proxy.dsn(ready.database_dsn)})
        with dispatching(through, said):
            some(ready, range(3))
            wait_for(lambda: len(mailbox.received) == 3, 60, what="the first three alerts")
            first_holder = wait_for(lambda: lock_holder(ready), 30, what="the digest lock")

            proxy.cut()
            some(ready, range(3, 6))  # read from Kafka while PostgreSQL is away
            wait_for(
                lambda: any("PostgreSQL is not reachable" in s for s in said), 30, what="the outage said"
            )
            assert lock_holder(ready) is None  # it went with its session
            proxy.restore()

            wait_for(lambda: len(mailbox.received) >= 6, 60, what="the alerts read during the outage")
            wait_for(lambda: statuses(ready) == {"sent": 6}, 30, what="every alert marked sent")
            second_holder = wait_for(lambda: lock_holder(ready), 30, what="the digest lock taken again")
            wait_for(lambda: any("PostgreSQL is back" in s for s in said), 30, what="the end said")
    assert cameras(mailbox.received) == {f"cam-{n}": 1 for n in range(6)}
    assert second_holder != first_holder
    about = [s.split(" (")[0] for s in said if "PostgreSQL" in s]
    assert len(about) == 2 and about[0] == "PostgreSQL is not reachable"
    assert about[1].startswith("PostgreSQL is back after")


class CuttingMailbox(Mailbox):
    """An SMTP server that, on the `cut_at`-th message, cuts PostgreSQL off (the proxy) and
    then accepts the message: the channel took it, and the dispatcher cannot mark it sent."""

    def __init__(self, port: int, proxy: TcpProxy, cut_at: int) -> None:
        super().__init__(port)
        self.proxy, self.cut_at = proxy, cut_at

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if len(self.received) + 1 == self.cut_at:
            self.proxy.cut()
        return await super().handle_DATA(server, session, envelope)


def test_a_message_the_channel_took_as_postgresql_went_is_not_sent_again(
    settings: Settings, mailbox: Mailbox
) -> None:
    said: list[str] = []
    with TcpProxy.before(settings.database_dsn) as proxy:
        cutting = CuttingMailbox(free_port(), proxy, cut_at=2)
        server = Controller(cutting, hostname="127.0.0.1", port=cutting.port)
        server.start()
        try:
            ready = configured(settings, mailbox, smtp_port=cutting.port)
            through = ready.model_copy(update={"database_url": proxy.dsn(ready.database_dsn)})
            some(ready, range(4))  # queued before the dispatcher starts: one batch
            with dispatching(through, said):
                wait_for(lambda: any("PostgreSQL is not reachable" in s for s in said), 60, what="the cut")
                proxy.restore()
                wait_for(lambda: statuses(ready) == {"sent": 4}, 60, what="every alert marked sent")
        finally:
            server.stop()
    assert cameras(cutting.received) == {f"cam-{n}": 1 for n in range(4)}
    assert len([s for s in said if "PostgreSQL is not reachable" in s]) == 1


def test_kafka_away_at_the_start_holds_up_nothing_queued_and_is_said_once(
    settings: Settings, mailbox: Mailbox
) -> None:
    from warehouse.alert_outbox import enqueue_test
    from warehouse.alert_recipients import load_recipients

    ready = configured(settings, mailbox)
    said: list[str] = []
    host, port = ready.kafka_servers.split(",")[0].rsplit(":", 1)
    with TcpProxy(host, int(port)) as proxy:
        # The broker advertises its own address: only the bootstrap goes through the proxy,
        # so it can stand for a Kafka that is away when the dispatcher starts, then back.
        proxy.cut()
        through = ready.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{proxy.port}"})
        with dispatching(through, said):
            with connect(ready.database_dsn) as conn:
                [person] = load_recipients(conn)
                enqueue_test(conn, person)
            wait_for(lambda: len(mailbox.received) == 1, 60, what="the queued message, Kafka away")
            wait_for(lambda: any("Kafka is not reachable" in s for s in said), 60, what="the outage said")
            proxy.restore()
            some(ready, range(2))
            wait_for(lambda: len(mailbox.received) == 3, 120, what="the incidents, Kafka back")
            wait_for(lambda: any("Kafka is back" in s for s in said), 30, what="the end said")
    assert cameras([m for m in mailbox.received if "Test" not in str(m[1]["Subject"])]) == {
        "cam-0": 1,
        "cam-1": 1,
    }
    assert len([s for s in said if "Kafka is not reachable" in s]) == 1
    assert len([s for s in said if "Kafka is back" in s]) == 1
