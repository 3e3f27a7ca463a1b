"""One store on one box, measured as a store runs it (issue 21): cameras sustained end to end,
and capture -> incident row latency under that load.

Each trial is a whole store: N live MJPEG cameras (vtest.avi looping in real time at its
10 fps, served by detector.camera_sim from JPEGs encoded once, each camera from another point
of the loop, in one process of its own whose CPU is printed: a real camera encodes on its own
hardware), a site with the demo's zones on each camera, and `shrinkwatch run --role all` as a
subprocess: exactly what a one-box store starts (detect with default settings, camera fps 5;
the incidents, occupancy and health flows; calibration, rollups, privacy purge, alerts and the
dashboard, idle), on the benchmark's own Kafka and PostgreSQL (benchmarks.common.services).
Every trial has its own database, topics and home.

Measured over a window after warm-up (every camera published, then `--warmup-s`):
- per camera, the frames analysed: detections published whose capture ts is in the window,
  kept = analysed / (5 fps x window); a count is sustained when every camera keeps >= 95 %;
- capture -> incident row (loitering after 6 s, the demo's threshold, and a new version
  every 2 s of more dwell instead of 10, for more samples): for each open incident version
  written in the window (polled), the row's `last_written_at` (PostgreSQL now() of the
  upsert's transaction) minus its `updated_at` (the capture ts of the frame that made the
  version); p50 and p95; and detect's share of it, capture -> detections handed to Kafka
  (each message's CreateTime);
- each service's CPU over the window (its process tree, from /proc), and from it detect's
  CPU per analysed frame and the other services' cores, which give an estimate of the
  cameras the box's cores would carry if the store had them to itself: (cores - the others)
  / (5 fps x detect's CPU per frame). On a machine shared with other work the measured
  frames are what the store got; the estimate is what it would need.
The largest count where every camera keeps >= 95 % and p95 <= 120 ms is the box's capacity.

"with all" is the default settings plus the optimisations not (yet) defaults (`WITH`:
precision int8, which `auto` is only once `shrinkwatch models export --precision auto` has
checked its accuracy; printed; `--defaults-only` leaves it off). `--without OPT` runs each
count again with one optimisation off, in the same run, for a "with all / without X" table:
`streams` (infer_streams 1: the cameras' frames through the model one at a time, instead of
each on a stream of its own), `gating` (the cameras' motion gating off), `int8` (precision
fp32). `--instead batch` tries batching across cameras (infer_batch 4, detector.scheduler) in
place of the streams. Decoding only the frames analysed (detector.sources) has no switch: its
saving is printed as the JPEG decode time of the frames a 10 fps camera analysed at 5 fps
skips, and batching's as the model's CPU per frame alone and in batches.

Usage: python -m benchmarks.store_box [--cameras 1 2 4 8] [--window-s 60] [--without streams gating int8]
       [--instead batch]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BENCH_HOME,
    bench_settings,
    child_environment,
    footage,
    machine,
    new_prefix,
    own_data,
    services,
)
from shrinkwatch.settings import Settings

TARGET_FPS = 5.0
SUSTAINED = 0.95
P95_MS = 120.0
CORES = os.cpu_count() or 1
LOITER_S = 6.0  # the demo's: incidents come regularly on the sample video
UPDATE_S = 2.0  # a new version of an open incident every 2 s of more dwell (10 by default): more samples

# The demo's zones (infra/demo_site.yaml): kind -> polygon.
ZONES = {
    "entrance": [[0.0, 0.28], [0.14, 0.28], [0.14, 0.52], [0.0, 0.52]],
    "high_value": [[0.31, 0.29], [0.65, 0.29], [0.67, 0.57], [0.29, 0.57]],
    "checkout": [[0.66, 0.30], [0.76, 0.30], [0.76, 0.58], [0.66, 0.58]],
    "exit": [[0.76, 0.30], [1.0, 0.30], [1.0, 0.62], [0.76, 0.62]],
    "privacy": [[0.42, 0.05], [0.75, 0.05], [0.75, 0.19], [0.42, 0.19]],
}

# The optimisations that are not (yet) defaults, on for "with all": each is printed.
WITH: dict[str, Any] = {"precision": "int8"}  # int8 whether or not auto's check has run

# What `--without OPT` changes: settings of the store's processes, or the cameras' gating.
# `streams`: each camera's frame on a stream of its own (the default) -> one at a time.
WITHOUT: dict[str, dict[str, Any]] = {
    "streams": {"infer_streams": 1},
    "gating": {},
    "int8": {"precision": "fp32"},
}
# What `--instead OPT` tries in place of a default: `batch` (the frames waiting when the model
# is free in one call of up to 4: infer_batch 4, detector.scheduler) instead of streams.
INSTEAD: dict[str, dict[str, Any]] = {"batch": {"infer_batch": 4}}


def site(cameras: list[tuple[str, int]], gating: bool) -> str:
    """A one-store site: each camera (id, port) with the demo's zones."""
    lines = [
        "stores: [{id: bench-store, name: Bench store, timezone: Europe/London, "
        'hours: {mon: "00:00-24:00", tue: "00:00-24:00", wed: "00:00-24:00", thu: "00:00-24:00", '
        'fri: "00:00-24:00", sat: "00:00-24:00", sun: "00:00-24:00"}}]',
        "cameras:",
    ]
    for camera, port in cameras:
        lines += [
            f"  - id: {camera}",
            "    store_id: bench-store",
            f"    name: {camera}",
            f"    stream_url: http://127.0.0.1:{port}/video.mjpg",
            f"    fps: {TARGET_FPS:g}",
            f"    motion_gating: {'true' if gating else 'false'}",
            "    zones:",
            *(
                f"      - {{id: z-{k.replace('_', '-')}, name: {k}, kind: {k}, polygon: {p}}}"
                for k, p in ZONES.items()
            ),
        ]
    return "\n".join(lines) + "\n"


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# -- CPU per process tree -------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def _procs() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent, CPU seconds so far, command line) of every process now."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, cmd)
    return out


def _tree(procs: dict[int, tuple[int, float, str]], roots: set[int]) -> set[int]:
    members, grew = set(roots) & set(procs), True
    while grew:
        more = {pid for pid, (parent, _, _) in procs.items() if parent in members} - members
        members |= more
        grew = bool(more)
    return members


def cpu_by_group(groups: dict[str, set[int]]) -> dict[str, dict[int, float]]:
    """CPU seconds used so far by each process of each group's trees (those alive now); the
    supervisor's tree is the supervisor alone (its children are the services)."""
    procs = _procs()
    return {
        name: {p: procs[p][1] for p in (roots & set(procs) if name == "supervisor" else _tree(procs, roots))}
        for name, roots in groups.items()
    }


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """Each group's CPU seconds between two snapshots: the processes alive at the second,
    each from its first snapshot (or its start); a process that ended between is missed,
    never subtracted."""
    return {
        name: sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
        for name, pids in after.items()
    }


def process_groups(home: Path, sims: int) -> dict[str, set[int]]:
    """The store's processes by what they are: each supervised service (its pid from the
    supervisor's status file), the camera simulators, Kafka and PostgreSQL (the benchmark's)."""
    state = json.loads((home / "run" / "status.json").read_text())
    groups: dict[str, set[int]] = {"supervisor": {state["pid"]}}
    for service in state["services"]:
        if service.get("pid"):
            groups[service["name"]] = {service["pid"]}
    procs = _procs()
    groups["camera-sims"] = {sims}
    bench = str(BENCH_HOME)
    groups["kafka"] = {p for p, (_, _, cmd) in procs.items() if "java" in cmd and bench in cmd}
    groups["postgres"] = {
        p for p, (_, _, cmd) in procs.items() if "postgres" in cmd and bench in cmd and " -D " in cmd
    }
    return groups


# -- one trial -------------------------------------------------------------------------------


@dataclass
class Trial:
    cameras: int
    variant: str
    fps: dict[str, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    produced_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0
    note: str = ""

    @property
    def kept(self) -> float:
        return min(self.fps.values(), default=0.0) / TARGET_FPS

    def percentile(self, q: float) -> float | None:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else None
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    @property
    def sustained(self) -> bool:
        p95 = self.percentile(95)
        return self.kept >= SUSTAINED and p95 is not None and p95 <= P95_MS


@contextmanager
def _running(command: list[str], stop_s: float, **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in a session of its own for the block: SIGTERM at the end, then its whole
    process group killed if it has not ended within `stop_s`."""
    proc = subprocess.Popen(command, start_new_session=True, **popen)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=stop_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def camera_sims(ports: list[int]) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """The cameras (one process serving every port), stopped when the block ends."""
    command = [sys.executable, "-m", "benchmarks.store_box", "--serve", *map(str, ports)]
    return _running(command, 10, stdout=subprocess.DEVNULL)


@contextmanager
def store(settings: Settings, home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`shrinkwatch run --role all` on these settings, stopped (SIGTERM) when the block ends."""
    env = child_environment(settings, "store_box")
    command = [sys.executable, "-m", "cli", "run", "--role", "all"]
    with (
        (home / "run.log").open("wb") as log,
        _running(command, 60, env=env, stdout=log, stderr=subprocess.STDOUT) as proc,
    ):
        yield proc


class Detections:
    """Reads the detections topic from its start; counts each camera's frames by capture ts."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": f"store-box-{uuid.uuid4()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        self.consumer.subscribe([settings.topic("detections")])
        self.ts: dict[str, list[datetime]] = defaultdict(list)
        self.published: list[tuple[datetime, float]] = []  # (capture ts, capture -> produced ms)

    def poll(self, timeout_s: float = 0.2) -> None:
        for msg in self.consumer.consume(1000, timeout=timeout_s):
            if msg.error() is None and msg.value():
                body = json.loads(msg.value())
                ts = datetime.fromisoformat(body["ts"].replace("Z", "+00:00"))
                self.ts[body["camera_id"]].append(ts)
                # The message's CreateTime: when detect handed it to its producer.
                self.published.append((ts, msg.timestamp()[1] - ts.timestamp() * 1000))

    def produced_ms(self, start: datetime, end: datetime) -> list[float]:
        """Capture -> handed to Kafka, for the frames captured in the window."""
        return sorted(ms for ts, ms in self.published if start <= ts < end)

    def fps(self, cameras: list[str], start: datetime, end: datetime) -> dict[str, float]:
        seconds = (end - start).total_seconds()
        return {c: sum(start <= t < end for t in self.ts.get(c, [])) / seconds for c in cameras}

    def close(self) -> None:
        self.consumer.close()


def incident_versions(conn: Any, since: datetime) -> set[tuple[str, int, float]]:
    """(incident, version, capture -> row ms) of open incident versions written since `since`."""
    rows = conn.execute(
        "SELECT incident_id, version, "
        "EXTRACT(EPOCH FROM (last_written_at - updated_at)) * 1000 AS ms "
        "FROM incidents WHERE status = 'open' AND last_written_at >= %s",
        (since,),
    ).fetchall()
    return {(r["incident_id"], r["version"], float(r["ms"])) for r in rows}


def trial(
    base: Settings, count: int, variant: str, warmup_s: float, window_s: float, overrides: dict[str, Any]
) -> Trial:
    from shrinkwatch.site_file import parse_site_config
    from warehouse.db import connect
    from warehouse.site_tables import apply_site_config

    result = Trial(count, variant)
    ports = free_ports(count + 2)
    cameras = [(f"cam-{i + 1}", port) for i, port in enumerate(ports[:count])]
    ids = [c for c, _ in cameras]
    with (
        own_data(base.model_copy(update={"topic_prefix": new_prefix()})) as data,
        tempfile.TemporaryDirectory(prefix="store-box-") as tmp,
        camera_sims(ports[:count]) as sims,
    ):
        home = Path(tmp)
        settings = data.model_copy(
            update={
                "home": home,
                "dashboard_port": ports[count],
                "api_port": ports[count + 1],
                "loiter_threshold_s": LOITER_S,
                "incident_update_s": UPDATE_S,
                **overrides,
            }
        )
        with connect(settings.database_dsn) as conn:
            gating = variant != "without gating"
            apply_site_config(conn, parse_site_config(site(cameras, gating), "store_box"))
        detections = Detections(settings)
        poll_conn = connect(settings.database_dsn, autocommit=True)  # one: a new one per poll costs the box
        try:
            with store(settings, home) as proc:
                deadline = time.monotonic() + 300
                while set(ids) - set(detections.ts):  # every camera published: the model is loaded
                    if proc.poll() is not None or time.monotonic() > deadline:
                        result.note = "the store did not start (see its run.log)"
                        print((home / "run.log").read_text()[-3000:], file=sys.stderr)
                        return result
                    detections.poll(0.5)
                end_warmup = time.monotonic() + warmup_s
                while time.monotonic() < end_warmup:
                    detections.poll(0.5)
                groups = process_groups(home, sims.pid)
                cpu0 = cpu_by_group(groups)
                start = datetime.now(UTC)
                versions: set[tuple[str, int, float]] = set()
                next_poll = time.monotonic()
                end = time.monotonic() + window_s
                while time.monotonic() < end:
                    detections.poll(0.2)
                    if time.monotonic() >= next_poll:
                        versions |= incident_versions(poll_conn, start)
                        next_poll = time.monotonic() + 0.25
                stop = datetime.now(UTC)
                cpu1 = cpu_by_group(groups)
                # Frames captured in the window may still be on their way: read them in.
                drain = time.monotonic() + 5
                while time.monotonic() < drain:
                    detections.poll(0.5)
                versions |= incident_versions(poll_conn, start)
        finally:
            detections.close()
            poll_conn.close()
        result.window_s = (stop - start).total_seconds()
        result.fps = detections.fps(ids, start, stop)
        result.produced_ms = detections.produced_ms(start, stop)
        cut = {(i, v): ms for i, v, ms in versions}  # one sample per version
        result.latencies_ms = sorted(cut.values())
        result.cpu_s = cpu_used(cpu0, cpu1)
    return result


def decode_saving() -> str:
    """What decoding only the frames analysed saves: the JPEG decode time of the sample video's
    frames, times the 5 frames a second a 10 fps camera analysed at 5 fps skips."""
    import cv2
    import numpy as np

    from detector.camera_sim import encoded_loop

    jpegs = encoded_loop(footage())[:100]
    start = time.perf_counter()
    for data in jpegs:
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    per_frame = (time.perf_counter() - start) / len(jpegs)
    return (
        f"decoding only the frames analysed: {per_frame * 1000:.2f} ms per 768x576 JPEG, "
        f"5 frames/s skipped per camera = {per_frame * 5 * 100:.1f} % of a core per camera saved"
    )


def batch_saving(settings: Settings, most: int) -> str:
    """The model's CPU per frame alone and in batches of `most`, on the same 32 frames, best
    of 3 (CPU time, not wall time: the figure a busy machine does not distort much)."""
    from benchmarks.common import frames
    from detector.model import Detector

    detector = Detector(settings)
    images = frames(32)
    detector.infer_faint_batch(images[:most])  # warm-up (and compile)
    best = {1: float("inf"), most: float("inf")}
    for _ in range(3):
        for size in best:
            start = time.process_time()
            for i in range(0, len(images), size):
                detector.infer_faint_batch(images[i : i + size])
            best[size] = min(best[size], (time.process_time() - start) / len(images) * 1000)
    return (
        f"the model's CPU per frame ({Path(detector.source).name}, imgsz {settings.imgsz}): "
        f"{best[1]:.1f} ms alone, {best[most]:.1f} ms in batches of {most} "
        f"(ratio {best[most] / best[1]:.2f})"
    )


def report(t: Trial) -> str:
    if t.note:
        return f"  {t.cameras:2d} cameras, {t.variant:16s}: {t.note}"
    p50, p95 = t.percentile(50), t.percentile(95)
    lat = f"p50 {p50:5.0f} ms p95 {p95:5.0f} ms" if p50 is not None and p95 is not None else "no incidents"
    produced = (
        f"p50 {statistics.median(t.produced_ms):.0f} ms p95 "
        f"{statistics.quantiles(t.produced_ms, n=100, method='inclusive')[94]:.0f} ms"
        if len(t.produced_ms) >= 2
        else "-"
    )
    slowest = min(t.fps.values(), default=0.0)
    cpu = ", ".join(f"{k} {v / t.window_s:.2f}" for k, v in sorted(t.cpu_s.items(), key=lambda kv: -kv[1]))
    frames = sum(t.fps.values()) * t.window_s
    detect_ms = t.cpu_s.get("cameras", 0.0) / max(frames, 1) * 1000
    others = sum(v for k, v in t.cpu_s.items() if k not in ("cameras", "camera-sims")) / t.window_s
    fits = (CORES - others) / (TARGET_FPS * detect_ms / 1000) if detect_ms else 0.0
    return (
        f"  {t.cameras:2d} cameras, {t.variant:16s}: slowest {slowest:4.2f} fps "
        f"(kept {t.kept:5.1%}), capture->incident row {lat} over {len(t.latencies_ms)} versions -> "
        f"{'SUSTAINED' if t.sustained else 'not sustained'}\n"
        f"      capture -> detections handed to Kafka (detect's share): {produced}\n"
        f"      CPU cores used: {cpu}\n"
        f"      detect's CPU per analysed frame {detect_ms:.0f} ms, the other services {others:.2f} cores -> "
        f"{fits:.1f} cameras at {TARGET_FPS:g} fps would fit {CORES} cores the store had to itself "
        "(an estimate for a busy machine, not a measurement)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3, 4, 8])
    parser.add_argument("--warmup-s", type=float, default=20.0)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--without", choices=sorted(WITHOUT), nargs="*", default=[])
    parser.add_argument("--instead", choices=sorted(INSTEAD), nargs="*", default=[])
    parser.add_argument("--imgsz", type=int, default=None, help="inference size (default: the default)")
    parser.add_argument("--model", default=None, help="a model other than the default (path)")
    parser.add_argument(
        "--defaults-only", action="store_true", help="'with all' is the default settings alone (no WITH)"
    )
    parser.add_argument("--serve", type=int, nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        from detector.camera_sim import serve_encoded

        serve_encoded(footage(), args.serve, announce=lambda _m: None)
        return
    settings = bench_settings()
    common: dict[str, Any] = {} if args.defaults_only else dict(WITH)
    if args.imgsz:
        common["imgsz"] = args.imgsz
    if args.model:
        common["model"] = args.model
    shown = settings.model_copy(update=common)
    print(f"# store box: {machine()}")
    print(f"# beyond the defaults: {common or 'nothing'}")
    print(
        f"# shrinkwatch run --role all; cameras: live MJPEG, vtest.avi at 10 fps, "
        f"analysed at {TARGET_FPS:g} fps; "
        f"model {Path(shown.model).name}, backend {shown.backend}, precision {shown.precision}, "
        f"imgsz {shown.imgsz}, infer_batch {shown.infer_batch}, infer_streams {shown.infer_streams} "
        "(0: one per core), motion gating on, evidence "
        f"{'on' if shown.evidence else 'off'}, loiter {LOITER_S:g} s, incident update {UPDATE_S:g} s; "
        f"warm-up {args.warmup_s:g} s, "
        f"window {args.window_s:g} s; sustained = every camera >= {SUSTAINED:.0%} of its frames and "
        f"capture->incident row p95 <= {P95_MS:g} ms",
        flush=True,
    )
    print(f"# {decode_saving()}", flush=True)
    print(f"# {batch_saving(shown, INSTEAD['batch']['infer_batch'])}", flush=True)
    variants: dict[str, dict[str, Any]] = {"with all": {}}
    variants |= {f"without {v}": WITHOUT[v] for v in args.without}
    variants |= {f"{v} instead": INSTEAD[v] for v in args.instead}
    results: list[Trial] = []
    with services(settings) as base:
        for count in args.cameras:
            for variant, change in variants.items():
                t = trial(base, count, variant, args.warmup_s, args.window_s, {**common, **change})
                results.append(t)
                print(report(t), flush=True)
    best = {
        v: max((t.cameras for t in results if t.variant == v and t.sustained), default=0) for v in variants
    }
    print("cameras sustained: " + "; ".join(f"{v}: {n}" for v, n in best.items()))
    if len(variants) > 1:
        base_n = max(best["with all"], 1)
        print(
            "ratio to 'with all' (same run): "
            + "; ".join(f"{v}: {n / base_n:.2f}" for v, n in best.items() if v != "with all")
        )


if __name__ == "__main__":
    main()
