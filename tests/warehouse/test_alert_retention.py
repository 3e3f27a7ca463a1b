"""Sent and failed alert messages go after `retention_alerts_days`, never pending ones, and
never while their incident could still alert (alerts_max_age_s)."""

from __future__ import annotations

from datetime import timedelta

from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.faults.site import site_yaml
from warehouse.alert_outbox import add_message, purge_finished
from warehouse.db import connect
from warehouse.jobs import prune_and_say
from warehouse.site_tables import apply_site_config

RECIPIENT = "fault-manager"  # the fault suite's site has one


def _queue(settings: Settings, rows: list[tuple[str, str, int]]) -> None:
    """(subject, status, age in days) messages."""
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site_yaml(["cam-1"]), "site"))
        for subject, status, days in rows:
            add_message(conn, subject, RECIPIENT, "email", "new", {})
            conn.execute(
                "UPDATE alert_outbox SET status = %s, created_at = now() - %s WHERE subject = %s",
                (status, timedelta(days=days), subject),
            )
        conn.commit()


def _subjects(settings: Settings) -> list[str]:
    with connect(settings.database_dsn) as conn:
        return [r["subject"] for r in conn.execute("SELECT subject FROM alert_outbox ORDER BY subject")]


ROWS = [
    ("a-sent-old", "sent", 40),
    ("b-failed-old", "failed", 40),
    ("c-pending-old", "pending", 40),
    ("d-sending-old", "sending", 40),
    ("e-sent-recent", "sent", 2),
]


def test_finished_messages_go_after_the_retention(settings: Settings) -> None:
    _queue(settings, ROWS)
    with connect(settings.database_dsn) as conn:
        assert purge_finished(conn, timedelta(days=30)) == 2
    assert _subjects(settings) == ["c-pending-old", "d-sending-old", "e-sent-recent"]


def test_the_job_keeps_them_while_an_incident_could_still_alert(settings: Settings) -> None:
    said: list[str] = []
    # A retention of 1 day, but incidents alert for 45 days: nothing 40 days old may go.
    strict = settings.model_copy(update={"retention_alerts_days": 1, "alerts_max_age_s": 45 * 86400})
    _queue(strict, ROWS)
    prune_and_say(strict, said.append)
    assert _subjects(strict) == [s for s, _status, _days in ROWS]
    assert said == []
    prune_and_say(settings, said.append)  # 30 days, an hour's max age
    assert _subjects(settings) == ["c-pending-old", "d-sending-old", "e-sent-recent"]
    assert said == ["retention: deleted 2 alert message(s) sent or failed over 30 days ago"]
