"""The warehouse's periodic job: refresh the rollups, then apply retention.

`shrinkwatch rollups run [--schedule]` and `shrinkwatch warehouse prune` call these; the
rollups (warehouse.rollups) and retention (warehouse.retention) know nothing of each other
beyond retention reading the rollups' watermarks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from shrinkwatch.metrics import MetricsServer
from shrinkwatch.settings import Settings
from warehouse.db import connect
from warehouse.rollups import run_rollups


def run_rollups_command(
    settings: Settings, *, full: bool, only: list[str] | None, schedule: bool, progress: Callable[[str], None]
) -> None:
    """`shrinkwatch rollups run`: once, or now and every `rollups_interval_s` (incremental),
    serving the scheduler's metrics (`serve_metrics`) while it runs."""
    from shrinkwatch.schedule import run_every
    from warehouse.migrate import require_current_schema

    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)

    def once() -> None:
        if schedule:  # keep a week of occupancy partitions ahead (warehouse.partitions)
            ensure_partitions_and_say(settings, progress)
        results = run_rollups(settings.database_dsn, full=full, only=only, progress=progress)
        rows = sum(r.rows for r in results)
        progress(f"rollups refreshed: {rows} rows in {sum(r.seconds for r in results):.2f} s")
        if schedule:  # the scheduler also keeps the base tables within their retention
            prune_and_say(settings, progress)

    if not schedule:
        once()
        return
    with serve_metrics(settings, progress):
        if full:
            run_rollups(settings.database_dsn, full=True, only=only, progress=progress)
            full = False  # later runs are incremental
        run_every(once, settings.rollups_interval_s, "rollup refresh", progress)


def serve_metrics(settings: Settings, progress: Callable[[str], None]) -> MetricsServer:
    """The scheduler's Prometheus metrics (role `rollups`), the rollups' freshness among them
    (warehouse.rollups); stopped when the returned server is closed."""
    from shrinkwatch.metrics import serve
    from warehouse.rollups import watch_freshness

    server = serve(settings, "rollups", say=progress)
    if server.port is not None:
        watch_freshness(settings.database_dsn)
    return server


def ensure_partitions_and_say(settings: Settings, progress: Callable[[str], None]) -> None:
    """Create the occupancy partitions that are due (warehouse.partitions) and say so."""
    from warehouse.partitions import ensure_partitions

    with connect(settings.database_dsn) as conn:
        created = ensure_partitions(conn)
    if created:
        days = f"{created[0]}" if len(created) == 1 else f"{created[0]} to {created[-1]}"
        progress(f"occupancy partitions created: {len(created)} day(s), {days}")


def prune_and_say(settings: Settings, progress: Callable[[str], None]) -> None:
    """Apply the retention settings (warehouse.retention) and say what went."""
    from warehouse.alert_outbox import purge_finished
    from warehouse.incident_events import RETENTION, purge_events
    from warehouse.retention import prune, purge_sign_in_records

    with connect(settings.database_dsn) as conn:
        done = prune(
            conn,
            occupancy_days=settings.retention_occupancy_days,
            heatmap_days=settings.retention_heatmap_days,
        )
        purge_sign_in_records(conn)
        # Sent alerts stay while their incident could still alert (see purge_finished).
        keep = max(
            timedelta(days=settings.retention_alerts_days),
            timedelta(seconds=settings.alerts_max_age_s) + timedelta(days=1),
        )
        alerts = purge_finished(conn, keep)
        changes = purge_events(conn)  # the live incidents' change log (GET /v1/events)
    if changes:
        days = RETENTION.days
        progress(f"retention: deleted {changes} incident change(s) over {days} days old (GET /v1/events)")
    if alerts:
        progress(f"retention: deleted {alerts} alert message(s) sent or failed over {keep.days} days ago")
    if done.occupancy_minutes or done.occupancy_late or done.heatmap_hours:
        progress(
            f"retention: pruned {done.occupancy_minutes} occupancy minutes, {done.occupancy_late} late "
            f"frames, {done.heatmap_hours} heatmap hours"
        )
