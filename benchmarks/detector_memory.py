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
`--whole-store` (issue 21: the whole store's processes within 2.5 GB): `shrinkwatch run --role
all` (detect with default settings, the flows, schedulers, alerts and the dashboard) with
`--cameras` live MJPEG cameras (the sample video encoded once and replayed by
detector.camera_sim.serve_encoded in a process apart, as a real camera costs the box nothing),
plus Kafka and PostgreSQL: each service's RSS and PSS (shared pages split between the
processes that share them, so the sum is what the store holds), at the sample where the sum
of PSS peaked, and the sums' peak and median. `--python` runs the store with another install.
Usage: python -m benchmarks.detector_memory [--minutes 30] [--warmup-minutes 3] [--cameras 4]
       python -m benchmarks.detector_memory --compare [--minutes 1.5] [--store-python .venv-store/bin/python]
       python -m benchmarks.detector_memory --whole-store --cameras 8 [--python .venv-store/bin/python]
"""

from __future__ import annotations

import argparse
import shutil
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


def camera_site(ports: list[int]) -> str:
    cameras = "\n".join(
        f'  - {{id: cam-{i}, store_id: bench, name: "Camera {i}", '
        f'stream_url: "http://127.0.0.1:{port}/video.mjpg", fps: 5}}'
        for i, port in enumerate(ports)
    )
    return f"stores: [{{id: bench, name: Bench, timezone: UTC}}]\ncameras:\n{cameras}\n"


def service_of(cmdline: list[str]) -> str:
    """A process's service name: the `cli` command it runs, else its program."""
    if "cli" in cmdline:
        words = cmdline[cmdline.index("cli") + 1 :]
        return " ".join(w for w in words[:3] if not w.startswith("-")) or "run"
    if "-m" in cmdline[:-1]:
        return cmdline[cmdline.index("-m") + 1]  # the dashboard: python -m streamlit
    return Path(cmdline[0]).name if cmdline else "?"


def store_memory(run_pid: int, home: Path) -> dict[str, tuple[float, float]]:
    """RSS and PSS (MiB) per service: `run`'s process tree, and the Kafka and PostgreSQL
    processes under `home` (each with its children)."""
    import psutil

    roots = [psutil.Process(run_pid)]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline and ("java" in cmdline or "postgres" in cmdline) and proc.pid != run_pid:
            roots.append(proc)
    out: dict[str, tuple[float, float]] = {}
    for root in roots:
        try:
            tree = [root, *root.children(recursive=True)]
            top = "kafka" if "java" in " ".join(root.cmdline()) else None
            top = top or ("postgresql" if "postgres" in " ".join(root.cmdline()) else None)
        except psutil.Error:
            continue
        for proc in tree:
            try:
                memory = proc.memory_full_info()
                name = top or service_of(proc.cmdline())
            except psutil.Error:
                continue
            rss, pss = out.get(name, (0.0, 0.0))
            out[name] = (rss + memory.rss / 2**20, pss + memory.pss / 2**20)
    return out


def whole_store(args: argparse.Namespace, settings: Settings) -> None:
    from shrinkwatch.net import free_port
    from shrinkwatch.site_file import parse_site_config
    from warehouse.db import connect
    from warehouse.site_tables import apply_site_config

    print(
        f"# the whole store's memory: shrinkwatch run --role all, {args.cameras} live MJPEG camera(s), "
        f"Kafka, PostgreSQL; {args.warmup_minutes:g} min warm-up + {args.minutes:g} min; "
        f"python {args.python}; {machine()}",
        flush=True,
    )
    ports = [free_port() for _ in range(args.cameras)]
    settings = settings.model_copy(
        update={"dashboard_port": free_port(), "api_port": free_port(), "flow_cluster_port": free_port()}
    )
    serve = (
        "import sys; from pathlib import Path; from detector.camera_sim import serve_encoded; "
        "serve_encoded(Path(sys.argv[1]), [int(p) for p in sys.argv[2:]], announce=lambda _m: None)"
    )
    cameras = subprocess.Popen([sys.executable, "-c", serve, str(footage()), *map(str, ports)], cwd=REPO_ROOT)
    samples: list[dict[str, tuple[float, float]]] = []
    try:
        with services(settings) as settings:
            with connect(settings.database_dsn) as conn:
                apply_site_config(conn, parse_site_config(camera_site(ports)))
            # The flows' recovery of an earlier run (another topic prefix) is not this run's.
            shutil.rmtree(settings.home / "recovery", ignore_errors=True)
            env = child_environment(settings, "memory-store")
            log = (settings.home / "memory-store-run.log").open("wb")
            run = subprocess.Popen(
                [args.python, "-m", "cli", "run", "--role", "all"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
            try:
                start = time.monotonic()
                while time.monotonic() - start < (args.minutes + args.warmup_minutes) * 60:
                    time.sleep(args.every_s)
                    if run.poll() is not None:
                        msg = f"shrinkwatch run exited early with code {run.returncode}"
                        raise SystemExit(msg)
                    if time.monotonic() - start >= args.warmup_minutes * 60:
                        samples.append(store_memory(run.pid, settings.home))
            finally:
                run.send_signal(signal.SIGINT)
                try:
                    run.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    run.kill()
                    run.wait()
    finally:
        cameras.send_signal(signal.SIGINT)
        cameras.wait(timeout=30)
    totals = [sum(pss for _, pss in sample.values()) for sample in samples]
    peak = samples[totals.index(max(totals))]
    for name, (rss, pss) in sorted(peak.items(), key=lambda item: -item[1][1]):
        print(f"  {name:28s} RSS {rss:7.1f} MiB  PSS {pss:7.1f} MiB")
    rss_total = sum(rss for rss, _ in peak.values())
    print(
        f"sum of PSS: peak {max(totals):.0f} MiB, median {statistics.median(totals):.0f} MiB "
        f"(sum of RSS at the peak {rss_total:.0f} MiB; target: within 2.5 GB = 2384 MiB)"
    )


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
    parser.add_argument(
        "--whole-store", action="store_true", help="shrinkwatch run --role all, every process"
    )
    parser.add_argument("--python", default=sys.executable, help="--whole-store: the install to run it with")
    parser.add_argument("--own-services", action="store_true", help="Kafka and PostgreSQL of its own")
    parser.add_argument("--store-python", default=str(REPO_ROOT / ".venv-store" / "bin" / "python"))
    args = parser.parse_args()
    short = args.compare or args.whole_store
    args.minutes = args.minutes if args.minutes is not None else (1.5 if short else 30)
    warmup = 0.5 if args.compare else 1 if args.whole_store else 3
    args.warmup_minutes = args.warmup_minutes if args.warmup_minutes is not None else warmup
    args.every_s = args.every_s if args.every_s is not None else (3 if args.compare else 5 if short else 15)
    int8 = shared_file("models", "yolov8n_int8_openvino_model")
    own: dict[str, object] = {}
    if args.own_services:  # beside another benchmark's services, not on them
        own = {"home": REPO_ROOT / ".shrinkwatch-bench-memory", "kafka_port": 31492}
        own |= {"kafka_controller_port": 31493, "postgres_port": 31494}
    settings = bench_settings(model=str(int8) if int8 else bench_settings().model, **own)
    if args.compare:
        compare(args, settings)
    elif args.whole_store:
        whole_store(args, settings)
    else:
        long_run(args, settings)


if __name__ == "__main__":
    main()
