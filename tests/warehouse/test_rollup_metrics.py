"""The rollups' metrics (warehouse.rollups): `rollups run --schedule` as a real process serves
each rollup's last success as its `rollup_state.refreshed_at`, read when scraped (a refresh
by another process shows at the next scrape); a refresh that fails is counted for its rollup
only."""

from __future__ import annotations

import signal
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shrinkwatch import __version__
from shrinkwatch.settings import Settings
from tests.metrics_support import Samples, metrics_base, metrics_url, try_scrape, value
from tests.support import cli_env, spawn_cli, wait_for
from warehouse.db import connect
from warehouse.rollups import ROLLUPS, run_rollups

LAST_SUCCESS = "shrinkwatch_rollup_last_success_timestamp_seconds"
NAMES = sorted(r.name for r in ROLLUPS)


def refreshed(settings: Settings) -> dict[str, datetime]:
    with connect(settings.database_dsn) as conn:
        rows = conn.execute("SELECT name, refreshed_at FROM rollup_state").fetchall()
    return {r["name"]: r["refreshed_at"] for r in rows}


def last_success(samples: Samples) -> dict[str, float]:
    return {dict(labels)["rollup"]: v for (name, labels), v in samples.items() if name == LAST_SUCCESS}


def test_the_scheduler_serves_each_rollups_last_success_from_postgresql(
    settings: Settings, tmp_path: Path
) -> None:
    ready = settings.model_copy(update={"metrics_port": metrics_base("rollups")})
    log = tmp_path / "rollups.log"
    proc: subprocess.Popen[bytes] = spawn_cli(["rollups", "run", "--schedule"], cli_env(ready, tmp_path), log)
    url = metrics_url(ready, "rollups")

    def all_refreshed() -> Samples | None:
        assert proc.poll() is None, log.read_text()
        samples = try_scrape(url)
        return samples if samples is not None and sorted(last_success(samples)) == NAMES else None

    try:
        first = wait_for(all_refreshed, 120, what="every rollup's first refresh on /metrics")
        assert last_success(first) == {name: at.timestamp() for name, at in refreshed(ready).items()}
        assert {
            n: value(first, "shrinkwatch_rollup_failures_total", rollup=n) for n in NAMES
        } == dict.fromkeys(NAMES, 0)
        assert value(first, "shrinkwatch_build_info", version=__version__, role="rollups") == 1

        before = refreshed(ready)
        run_rollups(ready.database_dsn, only=["footfall_hourly"], progress=lambda _m: None)  # another process
        after = refreshed(ready)
        assert after["footfall_hourly"] > before["footfall_hourly"]
        # Read when scraped: the next scrape that answers has it (kept in memory, none would).
        expected = {name: at.timestamp() for name, at in after.items()}
        wait_for(
            lambda: (samples := try_scrape(url)) is not None and last_success(samples) == expected,
            60,
            what="the new refresh on /metrics",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()


def _failures(rollup: str) -> float:
    return REGISTRY.get_sample_value("shrinkwatch_rollup_failures_total", {"rollup": rollup}) or 0.0


def test_a_failed_refresh_is_counted_for_its_rollup(settings: Settings) -> None:
    run_rollups(settings.database_dsn, progress=lambda _m: None)
    first = ROLLUPS[0].name  # it reads incidents; its failure ends the run (the rest are not tried)
    with connect(settings.database_dsn) as conn:
        conn.execute("ALTER TABLE incidents RENAME TO incidents_away")
        conn.commit()
    before = {name: _failures(name) for name in NAMES}
    with pytest.raises(Exception, match="incidents"):
        run_rollups(settings.database_dsn, progress=lambda _m: None)
    assert {name: _failures(name) - before[name] for name in NAMES} == {
        name: 1 if name == first else 0 for name in NAMES
    }
