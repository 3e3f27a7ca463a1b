"""Run faults against the pipeline and verify the result (tests.faults.pipeline, .verify).

`run_suite` is shared by the CI test (tests/faults/test_faults.py, the CI subset) and the
runner for every fault (`python -m tests.faults`), which prints the table that the docs and
the closing note quote.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.faults.pipeline import SUPERVISED, Outcome, Pipeline, Say, Scenario
from tests.faults.verify import Report, baseline, compare
from warehouse.rollups import run_rollups

# The CI subset: every supervised service killed, and Kafka and PostgreSQL each stopped for
# the outage. The freezes and the servers' kill -9 run in the runner (python -m tests.faults).
CI = [Scenario(name, "kill") for name in SUPERVISED] + [
    Scenario("postgres", "stop"),
    Scenario("kafka", "stop"),
]
SETTLE_S = 5.0  # between two faults, so each one's window is its own


def run_suite(
    scenarios: list[Scenario],
    root: Path,
    *,
    cameras: int = 4,
    outage_s: float = 30.0,
    real_camera: bool = False,
    say: Say = print,
) -> Report:
    """Start the pipeline, let it run, inject each fault in turn, finish, and verify."""
    outcomes: list[Outcome] = []
    with Pipeline(root, cameras=cameras, outage_s=outage_s, real_camera=real_camera, say=say) as pipeline:
        time.sleep(20)  # some incidents and minutes before the first fault
        for scenario in scenarios:
            outcomes.append(pipeline.inject(scenario))
            time.sleep(SETTLE_S)
        pipeline.finish()
        # The rollup job's next scheduled refresh, now that every row is written (incremental,
        # from the watermark its last run before the stop left).
        run_rollups(pipeline.settings.database_dsn, progress=lambda _m: None)
        assert pipeline.driver is not None
        delivered = pipeline.driver.delivered
        failed = list(pipeline.driver.failed)
        base = baseline(pipeline.settings, root, pipeline.site, say)
        report = compare(pipeline.settings, base, outcomes, delivered, pipeline.mail.folder, pipeline.cameras)
    if failed:
        report.tally("frames", None).note("lost", f"the driver's producer failed: {failed[:3]}")
    return report


def table(report: Report) -> list[str]:
    """One line per fault: recovery time, then lost/duplicated per kind of data in its window."""
    kinds = ["incidents", "occupancy minutes", "alerts queued", "alerts received"]
    head = f"{'fault':<24}{'recovery':>10}  " + "  ".join(f"{k:>18}" for k in kinds)
    lines = [head, " " * 36 + "  ".join(f"{'lost/dup/changed':>18}" for _ in kinds)]
    for outcome in report.outcomes:
        name = outcome.scenario.name
        recovery = f"{outcome.recovery_s:.1f} s" if outcome.recovery_s is not None else "NONE"
        cells = []
        for kind in kinds:
            t = report.tallies.get(kind, {}).get(name)
            cells.append(f"{t.lost}/{t.duplicated}/{t.changed}" if t else "0/0/0")
        lines.append(f"{name:<24}{recovery:>10}  " + "  ".join(f"{c:>18}" for c in cells))
    lines.append("whole run (every window, and the data no window owns):")
    for kind, windows in sorted(report.tallies.items()):
        lost = sum(t.lost for t in windows.values())
        dup = sum(t.duplicated for t in windows.values())
        changed = sum(t.changed for t in windows.values())
        lines.append(
            f"  {kind:<28} {report.totals.get(kind, 0):>7} compared: lost {lost}, duplicated {dup}, "
            f"changed {changed}"
        )
    lines.append(f"  alert resends (the documented window): {report.resent_in_window}")
    return lines
