"""`python -m tests.faults`: every fault against the whole pipeline, and the table of what each cost.

Usage: python -m tests.faults [--only ci|all|"kill alerts" ...] [--cameras 4] [--outage-s 30]
Starts its own Kafka and PostgreSQL (ports 31490-31494, under .shrinkwatch-faults), so it
runs beside the tests and the benchmarks; takes about 15 minutes for every fault.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from tests.faults.pipeline import Scenario, all_scenarios
from tests.faults.suite import CI, run_suite, table


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="*", default=["all"], help='"ci", "all", or faults like "kill alerts"'
    )
    parser.add_argument("--cameras", type=int, default=4, help="synthetic cameras at 5 fps")
    parser.add_argument("--real-camera", action="store_true", help="also a camera reader on the sample video")
    parser.add_argument("--outage-s", type=float, default=30.0, help="how long a stop or a freeze lasts")
    args = parser.parse_args()
    every = all_scenarios(real_camera=args.real_camera)
    chosen: list[Scenario] = []
    for name in args.only:
        if name == "all":
            chosen += every
        elif name == "ci":
            chosen += CI
        else:
            fault, _, component = name.partition(" ")
            chosen.append(Scenario(component, fault))
    print(
        f"{machine()}; {len(chosen)} fault(s), {args.cameras} cameras at 5 fps, "
        f"outages of {args.outage_s:g} s"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shrinkwatch-faults-") as root:
        report = run_suite(
            chosen, Path(root), cameras=args.cameras, outage_s=args.outage_s, real_camera=args.real_camera
        )
    print(f"\nran {time.monotonic() - started:.0f} s")
    for line in table(report):
        print(line)
    problems = report.problems()
    for problem in problems:
        print("!!", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
