"""Memory: the RSS of one `shrinkwatch detect` process with 4 cameras, over a long run.

Target (issue 3): after warm-up, RSS stays within +-10 % over 30 minutes. The cameras are
the sample video in real time (looping) with evidence and the live view on, publishing to
the real broker. Baseline in the same run: the RSS at the end of the warm-up.
Usage: python -m benchmarks.detector_memory [--minutes 30] [--warmup-minutes 3] [--cameras 4]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import bench_settings, child_environment, footage, machine, services
from shrinkwatch.paths import shared_file


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup-minutes", type=float, default=3)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--every-s", type=float, default=15)
    args = parser.parse_args()
    int8 = shared_file("models", "yolov8n_int8_openvino_model")
    settings = bench_settings(model=str(int8) if int8 else bench_settings().model)
    print(
        f"# memory of a {args.cameras}-camera detect process over {args.minutes:g} min "
        f"(+{args.warmup_minutes:g} min warm-up); {machine()}",
        flush=True,
    )
    with services(settings) as settings:
        from shrinkwatch.site_file import parse_site_config
        from warehouse.db import connect
        from warehouse.site_tables import apply_site_config

        cameras = "\n".join(
            f'  - {{id: mem-{i}, store_id: bench, name: "Camera {i}", stream_url: "{footage()}", fps: 5}}'
            for i in range(args.cameras)
        )
        with connect(settings.database_dsn) as conn:
            apply_site_config(
                conn,
                parse_site_config(
                    f"stores: [{{id: bench, name: Bench, timezone: UTC}}]\ncameras:\n{cameras}\n"
                ),
            )
        env = child_environment(settings, "memory-settings")
        ids = [a for i in range(args.cameras) for a in ("--camera", f"mem-{i}")]
        log = (settings.home / "memory-detect.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "detect", "--loop", *ids],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            start = time.monotonic()
            samples: list[tuple[float, float]] = []
            total_s = (args.minutes + args.warmup_minutes) * 60
            while time.monotonic() - start < total_s:
                time.sleep(args.every_s)
                if proc.poll() is not None:
                    msg = f"detect exited early with code {proc.returncode}"
                    raise SystemExit(msg)
                minute = (time.monotonic() - start) / 60
                samples.append((minute, rss_mib(proc.pid)))
                print(f"  {minute:5.1f} min  RSS {samples[-1][1]:7.1f} MiB", flush=True)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    after = [rss for minute, rss in samples if minute >= args.warmup_minutes]
    baseline = after[0]
    median = statistics.median(after)
    low, high = min(after), max(after)
    print(
        f"after warm-up: baseline {baseline:.1f} MiB, median {median:.1f}, min {low:.1f}, max {high:.1f} MiB"
    )
    print(
        f"range vs baseline: {low / baseline - 1:+.1%} .. {high / baseline - 1:+.1%}; "
        f"final/baseline = {after[-1] / baseline:.3f} (target: within +-10%)"
    )


if __name__ == "__main__":
    main()
