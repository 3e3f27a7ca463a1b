"""Digests: a summary per recipient on their schedule ('daily 07:00', 'weekly mon 07:00',
in the recipient's time zone), from the warehouse's scoped readers, within their stores.

Each recipient has a watermark (`alert_digests`): the end of the last window a digest was
queued for. When a scheduled time has passed the watermark, one digest is queued for
(watermark, that time] and the watermark moves there, in one transaction; its outbox key is
the window's end, so asking twice queues it once. After downtime the window is the whole gap
and there is still one digest. The digest itself goes out through the outbox like any alert.

APScheduler only wakes this up: one interval job in a persistent job store in PostgreSQL
(`apscheduler_jobs`), `misfire_grace_time=None` and `coalesce=True`, run by the one alert
dispatcher that holds the digest lock. Which windows are due is decided here, from the
watermarks, not from APScheduler's idea of missed runs (APScheduler 3 would drop a run missed
by more than its 1 s default grace, and does not tell a coalesced run what it covers).
The scheduler runs only while the dispatcher's session holds the lock: when PostgreSQL goes
away the dispatcher stops it, and starts a new one once it has the lock again.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from alerts.rules import Recipient, Schedule, parse_schedule
from shrinkwatch.wording import utc_minutes
from warehouse.alert_digests import move_watermark, watermark
from warehouse.alert_outbox import add_message
from warehouse.alert_recipients import load_recipients
from warehouse.db import Connection, DatabaseUnreachable, connect
from warehouse.economics import roi_by_month
from warehouse.incidents import incident_count, incidents_page
from warehouse.scope import IncidentFilter, Scope
from warehouse.site_tables import store_names

log = logging.getLogger(__name__)


class _StoreAway(logging.Filter):
    """APScheduler's warning that its job store (PostgreSQL) did not answer is dropped: the
    dispatcher says that outage once, and stops the scheduler until it is over."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Error getting due jobs from job store")


logging.getLogger("apscheduler.scheduler").addFilter(_StoreAway())


def _at(day: date, schedule: Schedule, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, schedule.at, zone).astimezone(UTC)


def latest_due(schedule: Schedule, timezone: str, now: datetime) -> datetime:
    """The most recent scheduled moment at or before `now` (UTC)."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    for back in range(8):
        candidate = day - timedelta(days=back)
        if schedule.weekday is not None and candidate.weekday() != schedule.weekday:
            continue
        moment = _at(candidate, schedule, zone)
        if moment <= now:
            return moment
    msg = "unreachable: a week always has the day"
    raise AssertionError(msg)


def previous_due(schedule: Schedule, timezone: str, moment: datetime) -> datetime:
    """The scheduled moment before `moment` (the start of a first digest's window)."""
    return latest_due(schedule, timezone, moment - timedelta(seconds=1))


def next_due(schedule: Schedule, timezone: str, now: datetime) -> datetime:
    """The first scheduled moment after `now` (UTC)."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    for ahead in range(9):
        candidate = day + timedelta(days=ahead)
        if schedule.weekday is not None and candidate.weekday() != schedule.weekday:
            continue
        moment = _at(candidate, schedule, zone)
        if moment > now:
            return moment
    msg = "unreachable: a week always has the day"
    raise AssertionError(msg)


CHART_DAYS = 14  # the digest's chart: incidents per day over the last two weeks


def _per_day(conn: Connection, scope: Scope, timezone: str, end: datetime) -> list[dict[str, Any]]:
    """Incidents per local day (the recipient's time zone) over the CHART_DAYS up to `end`:
    [{day, incidents, high}], from the base table (the rollups may lag a refresh behind)."""
    zone = ZoneInfo(timezone)
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()  # a window ending at midnight
    out = []
    for offset in range(CHART_DAYS - 1, -1, -1):
        day = last - timedelta(days=offset)
        since = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
        until = min(end, datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC))
        window = IncidentFilter(started_after=since, started_before=until)
        high = IncidentFilter(started_after=since, started_before=until, levels=("high",))
        out.append(
            {
                "day": day.isoformat(),
                "incidents": incident_count(conn, scope, window),
                "high": incident_count(conn, scope, high),
            }
        )
    return out


def digest_payload(conn: Connection, recipient: Recipient, start: datetime, end: datetime) -> dict[str, Any]:
    """What the digest says, within the recipient's stores only."""
    scope = Scope(frozenset(recipient.stores))
    window = IncidentFilter(started_after=start, started_before=end)
    stores = {sid: name for sid, (name, _) in store_names(conn, recipient.stores).items()}
    by_store = {
        name: incident_count(
            conn, scope, IncidentFilter(stores=(sid,), started_after=start, started_before=end)
        )
        for sid, name in sorted(stores.items())
    }
    by_level = {
        level: incident_count(
            conn, scope, IncidentFilter(levels=(level,), started_after=start, started_before=end)
        )
        for level in ("high", "medium", "low")
    }
    page, _ = incidents_page(conn, scope, window, page_size=500)
    top = page.sort_values("risk_score", ascending=False).head(5) if not page.empty else page
    by_type = page["incident_type"].value_counts().to_dict() if not page.empty else {}
    reviewed = page[page["user_confirmed"].notna()] if not page.empty else page
    year = roi_by_month(conn, scope, date(end.year, 1, 1), end.date())
    money = (
        {
            currency: {
                "prevented_loss": float(rows["prevented_loss"].sum()),
                "net_benefit": float(rows["net_benefit"].sum()),
                "cost": float(rows["monthly_cost"].sum()),
            }
            for currency, rows in year.groupby("currency")
        }
        if not year.empty
        else {}
    )
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "days": _per_day(conn, scope, recipient.timezone, end),
        "total": int(sum(by_level.values())),
        "by_store": by_store,
        "by_level": by_level,
        "by_type": {str(k): int(v) for k, v in by_type.items()},
        "top": [
            {
                "incident_id": r.incident_id,
                "incident_type": r.incident_type,
                "risk_level": r.risk_level,
                "risk_score": float(r.risk_score),
                "store_name": stores.get(r.store_id, r.store_id),
                "camera_id": r.camera_id,
                "started_at": r.started_at.isoformat(),
                "snapshot": r.snapshot,
            }
            for r in top.itertuples()
        ],
        "confirmed": int((reviewed["user_confirmed"] == True).sum()) if not reviewed.empty else 0,  # noqa: E712
        "reviewed": len(reviewed),
        "year_to_date": money,
    }


def queue_due_digests(conn: Connection, recipients: list[Recipient], now: datetime | None = None) -> int:
    """Queue each recipient's digest whose scheduled time has passed their watermark (one
    per recipient and channel, covering the whole gap); return how many were queued."""
    now = now or datetime.now(UTC)
    queued = 0
    for recipient in recipients:
        if not recipient.enabled or not recipient.digest:
            continue
        schedule = parse_schedule(recipient.digest)
        due = latest_due(schedule, recipient.timezone, now)
        with conn.transaction():
            last = watermark(conn, recipient.id, lock=True)
            if not is_due(last, due):
                continue
            queued += queue_digest(
                conn, recipient, last or previous_due(schedule, recipient.timezone, due), due
            )
    return queued


FIRST_MANUAL = timedelta(days=1)  # what `alerts digest --now` covers for a recipient with no digest yet


def digest_plan(conn: Connection, recipients: list[Recipient], moment: datetime) -> list[str]:
    """For `alerts digest --check`: each recipient's schedule, last digest, the next one, and
    what `--now` would cover, a line each."""
    if not recipients:
        return ["no enabled recipient has a digest schedule"]
    lines = []
    for person in recipients:
        last = watermark(conn, person.id)
        schedule = f"{person.digest} {person.timezone}" if person.digest else "no schedule"
        said = f"last digest up to {utc_minutes(last)} UTC" if last else "no digest yet"
        upcoming = ""
        if person.digest:
            plan = parse_schedule(person.digest)
            upcoming = f"; next {utc_minutes(next_due(plan, person.timezone, moment))} UTC"
            if is_due(last, latest_due(plan, person.timezone, moment)):
                upcoming += " (one is due now: `alerts run` sends it)"
        since = last or moment - FIRST_MANUAL
        lines.append(
            f"{person.id}: {schedule}; {said}{upcoming}; --now would cover {utc_minutes(since)} to "
            f"{utc_minutes(moment)} UTC on {', '.join(person.channels)}"
        )
    return lines


def is_due(last: datetime | None, due: datetime) -> bool:
    """Whether a digest scheduled at `due` has not gone yet."""
    return last is None or last < due


def queue_digest(conn: Connection, recipient: Recipient, start: datetime, end: datetime) -> int:
    """Queue the digest of (start, end] on each of the recipient's channels and move their
    watermark to `end` (in the caller's transaction); idempotent by the window's end."""
    payload = digest_payload(conn, recipient, start, end)
    queued = 0
    for channel in recipient.channels:
        queued += add_message(
            conn, f"digest:{recipient.id}:{end.isoformat()}", recipient.id, channel, "digest", payload
        )
    move_watermark(conn, recipient.id, end)
    return queued


_RUNNING: dict[str, str] = {}  # the dispatcher's database, for the job (not stored with it)


def digest_job() -> None:
    """The scheduled job: queue the digests that are due (they go out through the outbox).
    PostgreSQL away: nothing is queued now, and nothing said here; the dispatcher notices the
    same outage on its own sessions, says so, and stops this scheduler until it is back.
    What was due is queued then (the watermarks decide, not this run)."""
    dsn = _RUNNING.get("dsn")
    if dsn is None:
        return
    try:
        with connect(dsn) as conn:
            queue_due_digests(conn, load_recipients(conn))
    except (DatabaseUnreachable, psycopg.OperationalError) as exc:
        log.debug("digests not queued now, PostgreSQL is away: %s", exc)


def start_scheduler(dsn: str, every_s: float = 60.0) -> Any:
    """APScheduler with its job store in PostgreSQL, running `digest_job` every `every_s`
    (see the module docstring). The caller holds the digest lock and shuts it down."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy import URL
    from sqlalchemy.exc import SQLAlchemyError

    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    url = URL.create(
        "postgresql+psycopg",
        username=parts.get("user"),
        password=parts.get("password"),
        host=parts.get("host"),
        port=int(parts["port"]) if "port" in parts else None,
        database=parts.get("dbname"),
        # TLS (settings database_ssl*): psycopg takes these as connection parameters.
        query={k: parts[k] for k in ("sslmode", "sslrootcert", "sslcert", "sslkey") if k in parts},
    )
    _RUNNING["dsn"] = dsn
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    try:
        scheduler.start()
        scheduler.add_job(
            digest_job,
            "interval",
            seconds=every_s,
            id="shrinkwatch-digests",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
    except SQLAlchemyError as exc:  # its job store is in PostgreSQL, which went away
        with contextlib.suppress(Exception):
            scheduler.shutdown(wait=False)
        msg = f"the digest scheduler's job store: {exc}"
        raise DatabaseUnreachable(msg) from exc
    return scheduler
