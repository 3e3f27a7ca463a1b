"""The fault suite's CI subset: kill -9 every supervised service of the pipeline in turn, and
stop PostgreSQL and Kafka for 30 s each, under live cameras; then nothing may be lost or
duplicated against an uninterrupted run over the same input (tests.faults.verify), and every
fault must be recovered from. The rest (every freeze, the servers' kill -9) runs in
`python -m tests.faults`, which prints the table quoted in docs/OPERATIONS.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.faults.suite import CI, run_suite, table


@pytest.mark.faults
@pytest.mark.timeout(2400)
def test_no_fault_loses_or_duplicates_anything(tmp_path: Path) -> None:
    report = run_suite(CI, tmp_path, say=lambda m: print(m, file=sys.stderr))
    print("\n".join(table(report)), file=sys.stderr)
    assert [o.scenario.name for o in report.outcomes] == [s.name for s in CI]
    assert [o.scenario.name for o in report.outcomes if o.recovery_s is None] == []
    # There was something to lose: incidents, alerts, minutes and hours, every frame counted.
    for kind in ("incidents", "alerts queued", "alerts received", "occupancy minutes", "heatmap hours"):
        assert report.totals.get(kind, 0) > 0, kind
    assert report.totals["frames"] > 0
    assert report.problems() == []
