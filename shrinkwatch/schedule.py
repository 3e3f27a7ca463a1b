"""Run a job now and then every N seconds until SIGINT/SIGTERM (APScheduler, one process).

For the periodic jobs of the CLI (`flows calibrate --schedule`, `rollups run --schedule`):
a failing run is reported and retried at the next interval instead of ending the scheduler.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime


def run_every(job: Callable[[], None], interval_s: float, what: str, progress: Callable[[str], None]) -> None:
    """Run `job` at once and every `interval_s` seconds, until a signal stops the scheduler."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    def guarded() -> None:
        try:
            job()
        except Exception as exc:  # a scheduled run must not end the scheduler
            progress(f"{what} failed, will retry at the next run: {exc}")

    scheduler = BlockingScheduler(timezone="UTC")
    # One run at a time, and a run missed while the previous one ran late is simply the next.
    scheduler.add_job(
        guarded,
        "interval",
        seconds=interval_s,
        next_run_time=datetime.now().astimezone(),
        max_instances=1,
        coalesce=True,
    )
    stop = lambda *_: scheduler.shutdown(wait=False)  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    progress(f"{what} every {interval_s:g} s (Ctrl-C stops)")
    scheduler.start()
    progress(f"{what} scheduler stopped")
