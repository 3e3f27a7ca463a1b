"""Memory: the RSS of one `shrinkwatch detect` process, over a long run or runtime against runtime.

Long run (issue 3): after warm-up, RSS stays within +-10 % over 30 minutes. The cameras are
the sample video in real time (looping) with evidence and the live view on, publishing to
the real broker. Baseline in the same run: the RSS at the end of the warm-up.

`--compare` (issue 21: <= 500 MiB for an 8-camera detector; 1.3-1.5 GB before): the same
detect, model (the shared int8 IR) and cameras with each runtime in turn, 1 and 8 cameras:
`before`, the detector's code at `--before-rev` (Ultralytics' runtime, PyTorch imported) in
the full install; `full`, this tree in the full install; `store`, this tree in the store
box's install (`--store-python`, `make install-store`: no PyTorch). Peak and median RSS after
the warm-up, and each runtime's ratio to `before` for the same cameras.
Usage: python -m benchmarks.detector_memory [--minutes 30] [--warmup-minutes 3] [--cameras 4]
       python -m benchmarks.detector_memory --compare [--minutes 1.5] [--store-python .venv-store/bin/python]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import yaml

from benchmarks.common import bench_settings, child_environment, footage, machine, services
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import REPO_ROOT, Settings


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def add_cameras(settings: Settings, count: int) -> list[str]:
    """`count` cameras on the sample video at 5 fps in the run's database: their `--camera` args."""
    from shrinkwatch.site_file import parse_site_config
    from warehouse.db import connect
    from warehouse.site_tables import apply_site_config

    cameras = "\n".join(
        f'  - {{id: mem-{i}, store_id: bench, name: "Camera {i}", stream_url: "{footage()}", fps: 5}}'
        for i in range(count)
    )
    with connect(settings.database_dsn) as conn:
        apply_site_config(
            conn,
            parse_site_config(f"stores: [{{id: bench, name: Bench, timezone: UTC}}]\ncameras:\n{cameras}\n"),
        )
    return [a for i in range(count) for a in ("--camera", f"mem-{i}")]


def sample_detect(
    env: dict[str, str],
    args: list[str],
    log: Path,
    total_s: float,
    every_s: float,
    python: str = sys.executable,
    tree: Path = REPO_ROOT,
    say: Callable[[float, float], None] | None = None,
) -> list[tuple[float, float]]:
    """Run `python -m cli detect --loop ARGS` in `tree` for `total_s`: (minute, RSS MiB) samples."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, "-m", "cli", "detect", "--loop", *args], cwd=tree, env=env, stdout=out, stderr=out
        )
        try:
            start = time.monotonic()
            samples: list[tuple[float, float]] = []
            while time.monotonic() - start < total_s:
                time.sleep(every_s)
                if proc.poll() is not None:
                    msg = f"detect exited early with code {proc.returncode} (see {log})"
                    raise SystemExit(msg)
                samples.append(((time.monotonic() - start) / 60, rss_mib(proc.pid)))
                if say:
                    say(*samples[-1])
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return samples


def old_tree(rev: str, into: Path) -> Path:
    """The repository at `rev`, as files (git archive), to run that revision's detector."""
    data = subprocess.run(["git", "archive", rev], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    return into


def settings_fields(python: str, tree: Path) -> set[str]:
    probe = "from shrinkwatch.settings import Settings; print(' '.join(Settings.model_fields))"
    done = subprocess.run([python, "-c", probe], cwd=tree, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def env_for(settings: Settings, name: str, python: str, tree: Path) -> dict[str, str]:
    """A child's environment; a settings file with only the keys that tree's Settings knows."""
    env = child_environment(settings, name)
    if tree != REPO_ROOT:
        path = Path(env["SHRINKWATCH_SETTINGS_FILE"])
        known = settings_fields(python, tree)
        values = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({k: v for k, v in values.items() if k in known}))
    return env


def long_run(args: argparse.Namespace, settings: Settings) -> None:
    print(
        f"# memory of a {args.cameras}-camera detect process over {args.minutes:g} min "
        f"(+{args.warmup_minutes:g} min warm-up); {machine()}",
        flush=True,
    )
    with services(settings) as settings:
        ids = add_cameras(settings, args.cameras)
        samples = sample_detect(
            child_environment(settings, "memory-settings"),
            ids,
            settings.home / "memory-detect.log",
            (args.minutes + args.warmup_minutes) * 60,
            args.every_s,
            say=lambda minute, rss: print(f"  {minute:5.1f} min  RSS {rss:7.1f} MiB", flush=True),
        )
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


def compare(args: argparse.Namespace, settings: Settings) -> None:
    runtimes = args.runtimes.split(",")
    print(
        f"# detect RSS by runtime ({', '.join(runtimes)}; before = {args.before_rev}), "
        f"{args.warmup_minutes:g} min warm-up + {args.minutes:g} min, model {Path(settings.model).name}; "
        f"{machine()}",
        flush=True,
    )
    results: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="memory-before-") as tmp, services(settings) as settings:
        trees = {"before": old_tree(args.before_rev, Path(tmp)), "full": REPO_ROOT, "store": REPO_ROOT}
        pythons = {"before": sys.executable, "full": sys.executable, "store": args.store_python}
        for count in args.camera_counts:
            ids = add_cameras(settings, count)
            for runtime in runtimes:
                python, tree = pythons[runtime], trees[runtime]
                env = env_for(settings, f"memory-{runtime}-{count}", python, tree)
                samples = sample_detect(
                    env,
                    ids,
                    settings.home / f"memory-{runtime}-{count}.log",
                    (args.minutes + args.warmup_minutes) * 60,
                    args.every_s,
                    python=python,
                    tree=tree,
                )
                after = [rss for minute, rss in samples if minute >= args.warmup_minutes] or [samples[-1][1]]
                results[runtime, count] = (max(after), statistics.median(after))
                peak, median = results[runtime, count]
                print(
                    f"  {runtime:6s} {count} camera(s): RSS peak {peak:7.1f} MiB, median {median:7.1f} MiB",
                    flush=True,
                )
    for count in args.camera_counts:
        if ("before", count) not in results:
            continue
        base = results["before", count][0]
        ratios = ", ".join(
            f"{runtime}/before = {results[runtime, count][0] / base:.2f}"
            for runtime in runtimes
            if runtime != "before"
        )
        print(f"{count} camera(s), peak RSS: {ratios} (target: store <= 500 MiB at 8 cameras)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="30 for the long run, 1.5 to compare")
    parser.add_argument(
        "--warmup-minutes", type=float, default=None, help="3 for the long run, 0.5 to compare"
    )
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--every-s", type=float, default=None, help="15 for the long run, 3 to compare")
    parser.add_argument("--compare", action="store_true", help="runtime against runtime, 1 and 8 cameras")
    parser.add_argument("--runtimes", default="before,full,store")
    parser.add_argument("--camera-counts", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--before-rev", default="a8dd888", help="the detector before the lean runtime")
    parser.add_argument("--own-services", action="store_true", help="Kafka and PostgreSQL of its own")
    parser.add_argument("--store-python", default=str(REPO_ROOT / ".venv-store" / "bin" / "python"))
    args = parser.parse_args()
    args.minutes = args.minutes if args.minutes is not None else (1.5 if args.compare else 30)
    args.warmup_minutes = (
        args.warmup_minutes if args.warmup_minutes is not None else (0.5 if args.compare else 3)
    )
    args.every_s = args.every_s if args.every_s is not None else (3 if args.compare else 15)
    int8 = shared_file("models", "yolov8n_int8_openvino_model")
    own: dict[str, object] = {}
    if args.own_services:  # beside another benchmark's services, not on them
        own = {"home": REPO_ROOT / ".shrinkwatch-bench-memory", "kafka_port": 31492}
        own |= {"kafka_controller_port": 31493, "postgres_port": 31494}
    settings = bench_settings(model=str(int8) if int8 else bench_settings().model, **own)
    if args.compare:
        compare(args, settings)
    else:
        long_run(args, settings)


if __name__ == "__main__":
    main()
