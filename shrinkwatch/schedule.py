"""Run a job now and then every N seconds until SIGINT/SIGTERM (APScheduler, one process).

For the periodic jobs of the CLI (`flows calibrate --schedule`, `rollups run --schedule`):
a failing run is reported and retried at the next interval instead of ending the scheduler.
A run that fails because a dependency is down (`dependency_down`: PostgreSQL did not answer,
or a connection to it was lost) is an outage (shrinkwatch.outage): said once when the first
run fails, not once per interval, and once more, with how long it lasted, when a run
succeeds again. The next interval is the retry.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime

from shrinkwatch.outage import Outage, dependency_down


def guard(
    job: Callable[[], None],
    what: str,
    progress: Callable[[str], None],
    down: Callable[[BaseException], str | None] = dependency_down,
) -> Callable[[], None]:
    """`job` as one scheduled run: it never raises; a failure is said, an outage once (see
    the module docstring). `down` tells an outage from a fault."""
    outages: dict[str, Outage] = {}

    def guarded() -> None:
        try:
            job()
        except Exception as exc:  # a scheduled run must not end the scheduler
            which = down(exc)
            if which is None:
                progress(f"{what} failed, will retry at the next run: {exc}")
            else:
                outages.setdefault(which, Outage(f"{what}: {which}", progress)).failed(exc)
            return
        for outage in outages.values():
            outage.back()

    return guarded


def run_every(
    job: Callable[[], None],
    interval_s: float,
    what: str,
    progress: Callable[[str], None],
    down: Callable[[BaseException], str | None] = dependency_down,
) -> None:
    """Run `job` at once and every `interval_s` seconds, until a signal stops the scheduler."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    # One run at a time, and a run missed while the previous one ran late is simply the next.
    scheduler.add_job(
        guard(job, what, progress, down),
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
