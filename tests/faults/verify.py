"""The fault suite's verifier: reads everything back and compares it with an uninterrupted run.

The uninterrupted run (the baseline) is the same pipeline code over the same input, with no
fault: the frames and health reports the faulted run's topics hold are copied, partition by
partition and in order, to topics of their own; the incidents, occupancy and health flows
read them to the end into a database of their own; the alert dispatcher queues and sends
what those incidents call for; the rollups are built in full. Then, row by row:

- frames: every frame the driver saw acknowledged is in sw.detections exactly once;
- incidents: the same incident ids, each with the same final state (version, status, type,
  risk, times, zones, signals). One missing is lost; one extra is a duplicate (an incident
  opened again because a restart lost its track);
- occupancy minutes and heatmap hours: the same rows with the same counts; a row with fewer
  frames lost some, with more counted some twice;
- alerts: the same outbox messages, and the mail server received each one once (by its
  Message-ID); a second copy is a duplicate, unless it is the documented resend window
  (docs/ALERTS.md: a sender killed between the server's 250 and marking the row sent);
- rollups: the faulted run's incremental rollups equal a full rebuild of the baseline.

Nothing here trusts a component's own counters.
"""

from __future__ import annotations

import collections
import email
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from bytewax.testing import run_main
from confluent_kafka import Consumer, Producer, TopicPartition
from psycopg.rows import dict_row

from infra.mail_sink import MailSink
from shrinkwatch.settings import Settings
from tests.faults.pipeline import Outcome

INCIDENT_FIELDS = (
    "version",
    "store_id",
    "camera_id",
    "track_id",
    "incident_type",
    "risk_score",
    "risk_level",
    "status",
    "started_at",
    "ended_at",
    "zone_ids",
    "signals",
)


def _rows(dsn: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def read_all(settings: Settings, name: str) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Every message of a topic: (partition, offset, key, value), in offset order per partition."""
    topic = settings.topic(name)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": "faults-verify",
            "enable.partition.eof": True,
        }
    )
    out = []
    try:
        parts = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        at_end: set[int] = set()
        while at_end != set(parts):
            for msg in consumer.consume(1000, 1.0):
                if msg.error() is not None:
                    if msg.error().code() == msg.error()._PARTITION_EOF:  # noqa: SLF001
                        at_end.add(msg.partition())
                    continue
                out.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def frames_per_camera(settings: Settings) -> dict[str, collections.Counter[tuple[int, str]]]:
    """{camera: Counter((frame_id, ts))} of sw.detections (a restarted camera reader counts its
    frames from 0 again: the time tells its frames apart)."""
    import json

    out: dict[str, collections.Counter[tuple[int, str]]] = collections.defaultdict(collections.Counter)
    for _p, _o, _k, value in read_all(settings, "detections"):
        data = json.loads(value or b"{}")
        out[data["camera_id"]][data["frame_id"], data["ts"]] += 1
    return out


def occupancy_settled(dsn: str, frames: dict[str, int]) -> bool:
    """Whether every frame of every camera is counted in its minutes (or as late) and in its
    heatmap hours: the occupancy flow has written all it will."""
    minutes = {
        r["camera_id"]: r["n"]
        for r in _rows(
            dsn, "SELECT camera_id, sum(frames) AS n FROM occupancy_minutes WHERE zone_id = '*' GROUP BY 1"
        )
    }
    late = {
        r["camera_id"]: r["n"]
        for r in _rows(dsn, "SELECT camera_id, count(*) AS n FROM occupancy_late GROUP BY 1")
    }
    hours = {
        r["camera_id"]: r["n"]
        for r in _rows(dsn, "SELECT camera_id, sum(frames) AS n FROM heatmap_hours GROUP BY 1")
    }
    return all(
        minutes.get(c, 0) + late.get(c, 0) >= n and hours.get(c, 0) + late.get(c, 0) >= n
        for c, n in frames.items()
    )


def outbox_drained(dsn: str) -> bool:
    """Whether no alert is waiting or being sent."""
    return not _rows(dsn, "SELECT id FROM alert_outbox WHERE status IN ('pending', 'sending') LIMIT 1")


# -- the baseline ------------------------------------------------------------------------------


def _admin(dsn: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=database)


def baseline(run: Settings, root: Path, site: str, say: Any) -> Settings:
    """The uninterrupted run over the faulted run's input (see the module docstring)."""
    from alerts.dispatcher import run as dispatch
    from flows import health, incidents, occupancy
    from shrinkwatch.kafka_admin import ensure_topics
    from shrinkwatch.site_file import parse_site_config
    from warehouse.db import connect
    from warehouse.migrate import migrate
    from warehouse.rollups import run_rollups
    from warehouse.site_tables import apply_site_config

    with psycopg.connect(run.database_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS faults_baseline WITH (FORCE)")
        conn.execute("CREATE DATABASE faults_baseline")
    sink = MailSink(root / "baseline-mail")
    sink.start()
    try:
        base = run.model_copy(
            update={
                "database_url": _admin(run.database_dsn, "faults_baseline"),
                "topic_prefix": "faults-base.",
                "home": root / "baseline-home",
                "smtp_port": sink.port,
            }
        )
        with connect(base.database_dsn) as conn:
            migrate(conn, progress=lambda _m: None)
            apply_site_config(conn, parse_site_config(site, "fault site"))
        ensure_topics(base)
        producer = Producer({"bootstrap.servers": base.kafka_servers, "enable.idempotence": True})
        for name in ("detections", "camera-health"):
            for partition, _offset, key, value in read_all(run, name):
                producer.produce(base.topic(name), key=key, value=value, partition=partition)
                producer.poll(0)
        assert producer.flush(60) == 0
        say("baseline: the same input, read to its end without a fault")
        run_main(incidents.build_flow(base, tail=False))
        run_main(occupancy.build_flow(base, tail=False))
        run_main(health.build_flow(base, tail=False))
        dispatch(base, threading.Event(), progress=lambda _m: None, until_idle=True, digests=False)
        run_rollups(base.database_dsn, full=True, progress=lambda _m: None)
    finally:
        sink.stop()
    return base


# -- the comparison ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Lost and duplicated items of one kind, in one time window."""

    lost: int = 0
    duplicated: int = 0
    changed: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, what: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {what}")

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.changed)


@dataclass
class Report:
    """What the verifier found: per kind of data, per fault window ("" = outside any)."""

    outcomes: list[Outcome]
    tallies: dict[str, dict[str, Tally]] = field(default_factory=dict)
    resent_in_window: int = 0
    frames_delivered: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    def tally(self, kind: str, when: datetime | None) -> Tally:
        """The tally of `kind` in the window of the fault around `when` (a row's own time:
        from a minute before the fault began to a minute after the pipeline recovered from
        it); "" for a time outside every window, or no time."""
        window = ""
        if when is not None:
            stamp = when.timestamp()
            for outcome in self.outcomes:
                recovered = outcome.ended + (outcome.recovery_s if outcome.recovery_s is not None else 600)
                if outcome.began - 60 <= stamp <= recovered + 60:
                    window = outcome.scenario.name
        return self.tallies.setdefault(kind, {}).setdefault(window, Tally())

    def problems(self) -> list[str]:
        out = []
        for kind, windows in self.tallies.items():
            for window, t in windows.items():
                if not t.clean:
                    out.append(
                        f"{kind} [{window or 'no fault'}]: lost {t.lost}, duplicated {t.duplicated}, "
                        f"changed {t.changed}; {'; '.join(t.examples)}"
                    )
        return out


def _hashable(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row as a hashable tuple; floats to 9 decimals (DuckDB sums in no fixed order, so a
    rebuild's 0.16399999999999998 is an incremental refresh's 0.164)."""
    return tuple(
        tuple(v) if isinstance(v, list) else round(v, 9) if isinstance(v, float) else v for v in row.values()
    )


def _keyed(rows: list[dict[str, Any]], key: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in key): r for r in rows}


def _compare_rows(
    report: Report,
    kind: str,
    run: list[dict[str, Any]],
    base: list[dict[str, Any]],
    key: tuple[str, ...],
    fields: tuple[str, ...],
    when: str | None,
    count: str | None = None,
) -> None:
    """Rows missing from the run are lost, extra ones duplicated; for the same key, more of
    `count` is duplicated, less lost, and another difference changed."""
    ran, want = _keyed(run, key), _keyed(base, key)
    report.totals[kind] = len(want)
    for k, row in want.items():
        got = ran.get(k)
        t = report.tally(kind, row[when] if when else None)
        if got is None:
            t.note("lost", str(k))
        elif count and got[count] != row[count]:
            t.note(
                "lost" if got[count] < row[count] else "duplicated",
                f"{k}: {count} {got[count]} vs {row[count]}",
            )
        elif any(got[f] != row[f] for f in fields):
            diff = [f"{f} {got[f]!r} vs {row[f]!r}" for f in fields if got[f] != row[f]]
            t.note("changed", f"{k}: {', '.join(diff)[:300]}")
    for k, row in ran.items():
        if k not in want:
            report.tally(kind, row[when] if when else None).note("duplicated", f"{k} (not in the baseline)")


def compare(
    run: Settings, base: Settings, outcomes: list[Outcome], delivered: int, mail: Path, driven: list[str]
) -> Report:
    """The faulted run against the baseline, row by row (see the module docstring)."""
    from warehouse.rollups import ROLLUPS

    report = Report(outcomes, frames_delivered=delivered)
    # Frames: each delivered frame once.
    frames = frames_per_camera(run)
    in_topic = sum(len(ids) for camera, ids in frames.items() if camera in driven)
    t = report.tally("frames", None)
    report.totals["frames"] = delivered
    for camera, ids in frames.items():
        for (frame_id, ts), n in ids.items():
            if n > 1:
                t.note("duplicated", f"{camera} frame {frame_id} at {ts} x{n}")
    for _ in range(max(0, delivered - in_topic)):
        t.note("lost", "a delivered frame is not in the topic")

    a, b = run.database_dsn, base.database_dsn
    select = f"SELECT incident_id, {', '.join(INCIDENT_FIELDS)} FROM incidents"
    _compare_rows(
        report,
        "incidents",
        _rows(a, select),
        _rows(b, select),
        ("incident_id",),
        INCIDENT_FIELDS,
        "started_at",
    )
    minutes = (
        "SELECT camera_id, zone_id, minute, frames, visitors, people_avg, people_peak FROM occupancy_minutes"
    )
    _compare_rows(
        report,
        "occupancy minutes",
        _rows(a, minutes),
        _rows(b, minutes),
        ("camera_id", "zone_id", "minute"),
        ("visitors", "people_avg", "people_peak"),
        "minute",
        count="frames",
    )
    hours = "SELECT camera_id, hour, frames, cells, person_s, dwell_s FROM heatmap_hours"
    _compare_rows(
        report,
        "heatmap hours",
        _rows(a, hours),
        _rows(b, hours),
        ("camera_id", "hour"),
        ("cells", "person_s", "dwell_s"),
        "hour",
        count="frames",
    )
    health = "SELECT camera_id, status, status_since, reported_at FROM camera_health"
    _compare_rows(
        report,
        "camera health",
        _rows(a, health),
        _rows(b, health),
        ("camera_id",),
        ("status", "status_since", "reported_at"),
        None,
    )

    # Alerts: the same messages queued, each received once.
    outbox = (
        "SELECT o.id, o.subject, o.recipient_id, o.channel, o.reason, o.status, o.sent_at, i.started_at "
        "FROM alert_outbox o LEFT JOIN incidents i ON i.incident_id = o.subject"
    )
    run_outbox = _rows(a, outbox)
    _compare_rows(
        report,
        "alerts queued",
        run_outbox,
        _rows(b, outbox),
        ("subject", "recipient_id", "channel", "reason"),
        ("status",),
        "started_at",
    )
    received = collections.Counter(
        email.message_from_bytes(p.read_bytes())["Message-ID"] for p in sorted(mail.glob("*.eml"))
    )
    report.totals["alerts received"] = len(received)
    for row in run_outbox:
        n = received.get(f"<alert-{row['id']}@shrinkwatch>", 0)
        t = report.tally("alerts received", row["started_at"])
        if row["status"] == "sent" and n == 0:
            t.note("lost", f"outbox {row['id']} ({row['subject']}) marked sent, never received")
        elif n > 1:
            sent_at = row["sent_at"].timestamp() if row["sent_at"] else None
            if sent_at is not None and any(
                o.scenario.component == "alerts" and o.began - 5 <= sent_at <= o.ended + 5
                for o in report.outcomes
            ):
                # The documented window: a sender that died between the server's 250 and
                # marking the row sent (docs/ALERTS.md) sends it again after the restart.
                report.resent_in_window += n - 1
            else:
                t.note("duplicated", f"outbox {row['id']} ({row['subject']}) received {n} times")

    # Rollups: the faulted run's incremental ones equal the baseline's full rebuild (as
    # multisets of rows, without the write stamps).
    for rollup in ROLLUPS:
        cols = [c for c in rollup.columns if not c.endswith("_at")]
        sql = f"SELECT {', '.join(cols)} FROM {rollup.table}"  # noqa: S608 (our table names)
        got = collections.Counter(_hashable(r) for r in _rows(a, sql))
        want = collections.Counter(_hashable(r) for r in _rows(b, sql))
        kind = f"rollup {rollup.name}"
        report.totals[kind] = sum(want.values())
        t = report.tally(kind, None)
        for row in (want - got).elements():
            t.note("lost", str(row)[:200])
        for row in (got - want).elements():
            t.note("duplicated", str(row)[:200])
    return report
