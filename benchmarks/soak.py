"""Soak: the central services under a steady live load for half an hour; does anything grow?

`shrinkwatch run --role central` runs as a child process, as users run it (the three flows,
the calibration and rollups schedulers, the alert dispatcher and the dashboard), on the run's
own services and data (benchmarks.common) and a home of its own (.shrinkwatch-bench/soak-<hex>).
The site: `--stores` stores, `--cameras` cameras in all, each with an entrance, a high-value
shelf, a checkout and an exit zone; one alert recipient per store, by email (every level,
up to 1,000 an hour, so each incident is an email rather than a summary), to a local SMTP
server that keeps the messages (infra.mail_sink). Load, in real time:
- a publisher sends every camera's detections at `--fps` (timestamps = now): about
  `--people` shoppers walking between random points through the zones, and on each camera,
  every DWELL_EVERY_S (staggered), one who stands at the high-value shelf for LOITER_S + 6 s,
  so loitering incidents and their alerts happen all along; each camera's health every 5 s;
- an open dashboard: Debian's Chromium, signed in, goes to the Incidents page and to the
  Live page in turn every `--reload-s` (its session stays open in between; the Live panels
  rerun by themselves).
The schedulers run faster than their defaults (rollups every 60 s, calibration every 300 s)
so that a half-hour run sees them many times.

Every `--sample-s` it samples: the consumer lag of each flow and the dispatcher
(cli.lag.service_lags), each supervised process's RSS, open files and PostgreSQL connections
(its process tree: pids from <home>/run/status.json), the run database's connections
(pg_stat_activity), its size (pg_database_size) and each table's rows, the disk taken by the
home's parts (each flow's recovery store, logs, evidence, live frames, mail) and by the run's
topics in the Kafka log dir, and the page's render time. Nothing writes evidence here (no
detector runs: the frames are synthetic), so an incident email waits alerts_snapshot_wait_s
(2 s) for a snapshot that never comes, then goes without.

Samples go to <home>/soak.csv (long form: t_s, metric, subject, value); at the end the plots
go to docs/soak/ (lag, memory, connections and open files, disk) and a table prints first /
last / max of each series with a growth verdict: the slope over the second half per hour,
and over the last quarter ("flat": the second half moved less than 2 % of the series' level
(or a small absolute amount); "levels off": the last quarter's slope is under a quarter of
the first half's; else "grows").
Usage: python -m benchmarks.soak [--cameras 20] [--fps 5] [--minutes 30]
       python -m benchmarks.soak --replot .shrinkwatch-bench/soak-<hex>/soak.csv  (table and plots again)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Producer

from benchmarks.common import BENCH_HOME, bench_settings, child_environment, machine, services
from shrinkwatch.contracts import CameraHealth, DetectedObject, Detection, encode
from shrinkwatch.net import free_port
from shrinkwatch.settings import REPO_ROOT, Settings
from shrinkwatch.site_file import parse_site_config

LOITER_S = 8.0
DWELL_EVERY_S = 120.0
HEALTH_EVERY_S = 5.0
PLOTS = REPO_ROOT / "docs" / "soak"
SHELF = (0.2, 0.4)  # the high-value zone's x range (y 0.5..1.0)
SITE_STORE = """\
  - {id: %(id)s, name: Soak %(i)d, timezone: UTC, thresholds: {loiter_s: %(loiter)s},
     hours: {mon: "00:00-24:00", tue: "00:00-24:00", wed: "00:00-24:00", thu: "00:00-24:00",
             fri: "00:00-24:00", sat: "00:00-24:00", sun: "00:00-24:00"}}
"""
SITE_CAMERA = """\
  - id: %(id)s
    store_id: %(store)s
    name: Aisle %(i)d
    stream_url: /dev/null
    fps: %(fps)d
    zones:
      - {id: z-entrance, name: Entrance, kind: entrance,
         polygon: [[0.0, 0.5], [0.1, 0.5], [0.1, 1.0], [0.0, 1.0]]}
      - {id: z-shelf, name: Shelf, kind: high_value,
         polygon: [[0.2, 0.5], [0.4, 0.5], [0.4, 1.0], [0.2, 1.0]]}
      - {id: z-checkout, name: Checkout, kind: checkout,
         polygon: [[0.5, 0.5], [0.65, 0.5], [0.65, 1.0], [0.5, 1.0]]}
      - {id: z-exit, name: Exit, kind: exit, polygon: [[0.85, 0.5], [1.0, 0.5], [1.0, 1.0], [0.85, 1.0]]}
"""
SITE_RECIPIENT = """\
    - {id: manager-%(store)s, name: Manager, email: manager@%(store)s.example, channels: [email],
       stores: [%(store)s], min_level: low, max_per_hour: 1000}
"""


def store_ids(stores: int) -> list[str]:
    return [f"soak-{s + 1}" for s in range(stores)]


def camera_ids(cameras: int) -> list[str]:
    return [f"cam-{c + 1:02d}" for c in range(cameras)]


def site_yaml(cameras: int, stores: int, fps: int) -> str:
    """The soak's site: stores, cameras (shared out in turn) with four zones, a recipient per store."""
    ids = store_ids(stores)
    return (
        "stores:\n"
        + "".join(SITE_STORE % {"id": s, "i": i + 1, "loiter": LOITER_S} for i, s in enumerate(ids))
        + "cameras:\n"
        + "".join(
            SITE_CAMERA % {"id": cam, "store": ids[c % stores], "i": c + 1, "fps": fps}
            for c, cam in enumerate(camera_ids(cameras))
        )
        + "alerts:\n  recipients:\n"
        + "".join(SITE_RECIPIENT % {"store": s} for s in ids)
    )


# ---------------------------------------------------------------- the cameras, live


@dataclass
class Walker:
    track: int
    x: float
    y: float
    tx: float
    ty: float
    frames_left: int
    dwell_frames: int = 0  # > 0: standing still


@dataclass
class Camera:
    """One camera's shoppers, moved one frame at a time."""

    camera_id: str
    store_id: str
    offset_s: float  # its dwellers are staggered across DWELL_EVERY_S
    rng: random.Random
    people: int
    fps: int
    walkers: list[Walker] = field(default_factory=list)
    next_track: int = 1
    frame_id: int = 0
    next_dweller_s: float = 0.0

    def __post_init__(self) -> None:
        self.next_dweller_s = self.offset_s

    def _new(self, x: float, y: float, frames: int) -> Walker:
        walker = Walker(self.next_track, x, y, self.rng.random(), 0.55 + 0.4 * self.rng.random(), frames)
        self.next_track += 1
        return walker

    def frame(self, elapsed_s: float, now: datetime) -> Detection:
        """The next frame at `elapsed_s` into the run: everyone moves (or stands) one step."""
        rng, step = self.rng, 0.05 / self.fps  # 0.05 of the width per second
        while sum(1 for w in self.walkers if not w.dwell_frames) < self.people:
            self.walkers.append(
                self._new(rng.random(), 0.55 + 0.4 * rng.random(), rng.randint(30, 60) * self.fps)
            )
        if elapsed_s >= self.next_dweller_s:  # one who stops at the shelf, then walks on
            self.next_dweller_s += DWELL_EVERY_S
            dweller = self._new(sum(SHELF) / 2, 0.8, int((LOITER_S + 6) * self.fps) + 20 * self.fps)
            dweller.dwell_frames = int((LOITER_S + 6) * self.fps)
            dweller.tx, dweller.ty = 0.95, 0.8  # then to the exit
            self.walkers.append(dweller)
        objects = []
        for w in self.walkers:
            if w.dwell_frames:
                w.dwell_frames -= 1
            else:
                w.x += max(-step, min(step, w.tx - w.x))
                w.y += max(-step, min(step, w.ty - w.y))
                if abs(w.tx - w.x) < step and abs(w.ty - w.y) < step:
                    w.tx, w.ty = rng.random(), 0.55 + 0.4 * rng.random()
            w.frames_left -= 1
            objects.append(
                DetectedObject(
                    track_id=w.track,
                    class_name="person",
                    class_id=0,
                    conf=0.8,
                    box=(max(0.0, w.x - 0.03), max(0.0, w.y - 0.2), min(1.0, w.x + 0.03), w.y),
                )
            )
        self.walkers = [w for w in self.walkers if w.frames_left > 0]
        self.frame_id += 1
        return Detection(
            camera_id=self.camera_id,
            store_id=self.store_id,
            frame_id=self.frame_id,
            ts=now,
            frame_w=768,
            frame_h=576,
            objects=objects,
        )


def publish(
    settings: Settings, cameras: list[Camera], fps: int, stop: threading.Event, sent: list[int]
) -> None:
    """Every camera's frame every 1/fps s in real time, and its health every HEALTH_EVERY_S,
    until `stop`; sent[0] counts the frames."""
    producer = Producer({"bootstrap.servers": settings.kafka_servers, "linger.ms": 20, "log_level": 3})
    detections, health = settings.topic("detections"), settings.topic("camera-health")
    start = time.monotonic()
    tick = 0
    next_health = start
    while not stop.is_set():
        due = start + tick / fps
        if (wait := due - time.monotonic()) > 0:
            stop.wait(wait)
        tick += 1
        now = datetime.now(UTC)
        for cam in cameras:
            frame = cam.frame(time.monotonic() - start, now)
            producer.produce(detections, key=cam.camera_id.encode(), value=encode(frame))
        sent[0] += len(cameras)
        if time.monotonic() >= next_health:
            next_health += HEALTH_EVERY_S
            for cam in cameras:
                beat = CameraHealth(
                    camera_id=cam.camera_id,
                    store_id=cam.store_id,
                    ts=now,
                    status="online",
                    fps_in=float(fps),
                    fps_analysed=float(fps),
                    last_frame_ts=now,
                    error=None,
                )
                producer.produce(health, key=cam.camera_id.encode(), value=encode(beat))
        producer.poll(0)
    producer.flush(10)


# ---------------------------------------------------------------- the open dashboard


def browse(
    url: str, user: str, password: str, every_s: float, stop: threading.Event, out: dict[str, Any]
) -> None:
    """Sign in, then Incidents and Live in turn every `every_s` until `stop`; out['render_s']
    is the last page's render time, out['loads'] / out['errors'] count."""
    from streamlit_app.browser import browser_page, sign_in, wait_rendered

    pages = (("/", "Incidents"), ("/live", "Live"))
    try:
        with browser_page() as page:
            sign_in(page, url, user, password)
            n = 0
            while not stop.wait(every_s):
                path, heading = pages[n % len(pages)]
                n += 1
                start = time.perf_counter()
                try:
                    page.goto(f"{url}{path}")
                    wait_rendered(page, heading)
                    out["render_s"] = time.perf_counter() - start
                    out["loads"] += 1
                except Exception as exc:  # a slow render is a data point, not the end of the run
                    out["errors"] += 1
                    out["last_error"] = str(exc).splitlines()[0][:200]
    except Exception as exc:
        out["fatal"] = str(exc).splitlines()[0][:200]


# ---------------------------------------------------------------- sampling


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (those still there)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def process_figures(procs: list[psutil.Process], pg_port: int) -> tuple[float, int, int, float]:
    """(RSS MiB, open files, PostgreSQL connections, CPU seconds) summed over `procs`."""
    rss = fds = pg = 0
    cpu = 0.0
    for proc in procs:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                fds += proc.num_fds()
                times = proc.cpu_times()
                cpu += times.user + times.system
            pg += sum(1 for c in proc.net_connections(kind="tcp") if c.raddr and c.raddr.port == pg_port)
        except psutil.Error:
            continue
    return rss / 2**20, fds, pg, cpu


def du(path: Path) -> float:
    """MiB of disk the files under `path` take (blocks, not length: Kafka's index files are
    sparse, 10 MiB long from the start); 0 when it is not there."""
    items = [path] if path.is_file() else list(path.rglob("*")) if path.is_dir() else []
    total = 0
    for item in items:
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_blocks * 512
        except OSError:  # a file rotated or compacted away while being counted
            continue
    return total / 2**20


def supervised_pids(home: Path) -> dict[str, int]:
    from infra.supervisor import read_status

    state = read_status(home)
    if state is None:
        return {}
    return {svc["name"]: int(svc["pid"]) for svc in state["services"] if svc.get("pid")}


def lag_figures(settings: Settings) -> Iterator[tuple[str, float]]:
    from cli.lag import service_lags

    for name, text in service_lags(settings).items():
        head = text.split()[0] if text else "?"
        yield name, float(head) if head.isdigit() else math.nan


def database_figures(settings: Settings) -> Iterator[tuple[str, str, float]]:
    from warehouse.db import connect

    with connect(settings.database_dsn, timeout_s=5) as conn:
        row = conn.execute(
            "SELECT count(*) AS n, pg_database_size(current_database()) AS size FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        assert row is not None
        yield "pg_connections", "database (all)", float(row["n"])
        yield "disk_mib", "database", row["size"] / 2**20
        for row in conn.execute(
            "SELECT state, count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() GROUP BY state"
        ).fetchall():
            yield "pg_connections_by_state", str(row["state"]), float(row["n"])
        for row in conn.execute("SELECT relname, n_live_tup FROM pg_stat_user_tables").fetchall():
            yield "rows", row["relname"], float(row["n_live_tup"])


HOME_PARTS = (
    "recovery/incidents",
    "recovery/occupancy",
    "recovery/health",
    "logs",
    "evidence",
    "live",
    "mail",
)


class Sampler:
    """Takes one sample of everything and appends it to the CSV."""

    def __init__(self, settings: Settings, csv_path: Path, browser: dict[str, Any], sent: list[int]) -> None:
        self.settings, self.browser, self.sent = settings, browser, sent
        self.rows: list[tuple[float, str, str, float]] = []
        self._file = csv_path.open("w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["t_s", "metric", "subject", "value"])
        self._cpu: dict[str, tuple[float, float]] = {}

    def take(self, t: float, supervisor_pid: int) -> None:
        settings = self.settings
        out: list[tuple[str, str, float]] = []
        pids = {"supervisor": supervisor_pid, **supervised_pids(settings.home)}
        for name, pid in pids.items():
            procs = tree(pid) if name != "supervisor" else tree(pid)[:1]
            rss, fds, pg, cpu = process_figures(procs, settings.postgres_port)
            out += [("rss_mib", name, rss), ("open_files", name, fds), ("pg_connections", name, float(pg))]
            last = self._cpu.get(name)
            if last is not None and t > last[0]:
                out.append(("cpu_pct", name, 100 * max(0.0, cpu - last[1]) / (t - last[0])))
            self._cpu[name] = (t, cpu)
        try:
            out += [("lag_msgs", name, value) for name, value in lag_figures(settings)]
        except Exception as exc:  # a broker that does not answer is in the plot as a gap
            print(f"  lag not read: {exc}", file=sys.stderr)
        try:
            out += list(database_figures(settings))
        except Exception as exc:
            print(f"  database not read: {exc}", file=sys.stderr)
        for part in HOME_PARTS:
            out.append(("disk_mib", f"home/{part}", du(settings.home / part)))
        data = BENCH_HOME / "kafka" / "data"
        topics = [d for d in data.glob(f"{settings.topic_prefix}*")] if data.is_dir() else []
        out.append(("disk_mib", "kafka (run's topics)", sum(du(d) for d in topics)))
        out.append(("disk_mib", "kafka (all)", du(data)))
        out.append(("frames_sent", "publisher", float(self.sent[0])))
        if "render_s" in self.browser:
            out.append(("render_s", "dashboard", self.browser["render_s"]))
        for metric, subject, value in out:
            self.rows.append((t, metric, subject, value))
            self._csv.writerow([f"{t:.1f}", metric, subject, f"{value:.3f}"])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------- the verdict and the plots


def slope_per_h(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t_s, value) points, per hour (0 with fewer than 3 points)."""
    points = [(t, v) for t, v in points if not math.isnan(v)]
    if len(points) < 3:
        return 0.0
    mt = sum(t for t, _ in points) / len(points)
    mv = sum(v for _, v in points) / len(points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else 3600 * sum((t - mt) * (v - mv) for t, v in points) / den


def verdict(points: list[tuple[float, float]], tolerance: float) -> tuple[float, float, str]:
    """(slope over the second half /h, over the last quarter /h, flat | levels off | grows)."""
    if len(points) < 8:
        return 0.0, 0.0, "too short"
    end = points[-1][0]
    first = [p for p in points if p[0] < end / 2]
    second = [p for p in points if p[0] >= end / 2]
    last = [p for p in points if p[0] >= 3 * end / 4]
    s1, s2, s4 = slope_per_h(first), slope_per_h(second), slope_per_h(last)
    level = max(abs(v) for _, v in second if not math.isnan(v)) if second else 0.0
    moved = abs(s2) * (end / 2) / 3600
    if moved <= max(0.02 * level, tolerance):
        return s2, s4, "flat"
    if s1 > 0 and s4 < 0.25 * s1:
        return s2, s4, "levels off"
    return s2, s4, "grows"


# What a series may move over the second half and still be flat (besides 2 % of its level);
# a series not named here (CPU, render time) gets no verdict.
TOLERANCE = {
    "rss_mib": 2.0,
    "open_files": 2.0,
    "pg_connections": 1.0,
    "disk_mib": 0.5,
    "lag_msgs": 500.0,
    "rows": 0.0,
}


def series(rows: list[tuple[float, str, str, float]]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    out: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for t, metric, subject, value in rows:
        out[(metric, subject)].append((t, value))
    return out


def summary(rows: list[tuple[float, str, str, float]]) -> list[str]:
    """The table: first / last / max of each series, and its growth over the second half."""
    lines = [
        f"{'metric':16s} {'subject':26s} {'first':>10s} {'last':>10s} {'max':>10s} "
        f"{'2nd half /h':>12s} {'last 1/4 /h':>12s}  verdict"
    ]
    for (metric, subject), points in sorted(series(rows).items()):
        if metric in ("frames_sent", "pg_connections_by_state"):
            continue
        if metric == "rows" and max(v for _, v in points) == 0:
            continue
        values = [v for _, v in points if not math.isnan(v)]
        if not values:
            continue
        s2, s4, word = verdict(points, TOLERANCE[metric]) if metric in TOLERANCE else (0.0, 0.0, "-")
        lines.append(
            f"{metric:16s} {subject[:26]:26s} {values[0]:10.1f} {values[-1]:10.1f} {max(values):10.1f} "
            f"{s2:12.1f} {s4:12.1f}  {word}"
        )
    return lines


def plot(rows: list[tuple[float, str, str, float]], out: Path, title: str) -> list[Path]:
    """lag.png, memory.png, connections.png (and open files), disk.png under `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = series(rows)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def panel(ax: Any, metric: str, ylabel: str, skip: tuple[str, ...] = ()) -> None:
        for (m, subject), points in sorted(data.items()):
            if metric == "rows" and points[0][1] == points[-1][1]:
                continue  # the tables that did not change (most are empty) would hide those that did
            if m == metric and subject not in skip:
                ax.plot([t / 60 for t, _ in points], [v for _, v in points], label=subject, linewidth=1.2)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("minutes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", ncol=2)

    figures = (
        ("lag", (("lag_msgs", "consumer lag (messages)"),)),
        ("memory", (("rss_mib", "RSS (MiB, with children)"), ("cpu_pct", "CPU (% of one core)"))),
        ("connections", (("pg_connections", "PostgreSQL connections"), ("open_files", "open files"))),
        ("disk", (("disk_mib", "MiB"), ("rows", "rows of the tables that changed"))),
    )
    for name, panels in figures:
        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 4 * len(panels)), squeeze=False)
        for ax, (metric, label) in zip(axes[:, 0], panels, strict=True):
            panel(ax, metric, label, skip=("kafka (all)",) if metric == "disk_mib" else ())
            if metric == "disk_mib":
                ax.set_yscale("symlog", linthresh=1)
        fig.suptitle(f"{title}: {name}", fontsize=10)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


# ---------------------------------------------------------------- the run


def read_samples(path: Path) -> list[tuple[float, str, str, float]]:
    """The samples of an earlier run's CSV (or .csv.gz, as docs/soak keeps them)."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", newline="") as handle:
            return [parse_sample(r) for r in csv.DictReader(handle)]
    with path.open(newline="") as handle:
        return [parse_sample(r) for r in csv.DictReader(handle)]


def parse_sample(row: dict[str, str]) -> tuple[float, str, str, float]:
    return float(row["t_s"]), row["metric"], row["subject"], float(row["value"])


def report(rows: list[tuple[float, str, str, float]], plots: Path, title: str) -> None:
    """Print the summary table and write the plots."""
    for line in summary(rows):
        print(line)
    for path in plot(rows, plots, title):
        print(f"  {path}")


def wait_for(what: str, check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    msg = f"{what} did not come within {timeout_s:.0f} s"
    raise SystemExit(msg)


def dashboard_up(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).close()
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--fps", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--stores", type=int, default=2)
    parser.add_argument("--people", type=int, default=4, help="shoppers walking in each camera's view")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument(
        "--reload-s", type=float, default=30.0, help="the dashboard's page changes this often"
    )
    parser.add_argument("--plots", type=Path, default=PLOTS, help="where the PNGs go (default docs/soak)")
    parser.add_argument(
        "--replot",
        type=Path,
        metavar="CSV",
        help="run nothing: the table and plots of an earlier run's soak.csv",
    )
    args = parser.parse_args()
    title = f"{args.cameras} cameras x {args.fps} fps, {args.minutes:g} min"
    if args.replot is not None:
        report(read_samples(args.replot), args.plots, title)
        return
    from infra.mail_sink import MailSink
    from warehouse.accounts import add_user
    from warehouse.db import connect
    from warehouse.site_tables import apply_site_config

    with services(bench_settings()) as bench:  # a database and topics of its own
        home = BENCH_HOME / f"soak-{bench.topic_prefix.strip('.')}"
        home.mkdir(parents=True, exist_ok=True)
        sink = MailSink(home / "mail")
        sink.start()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = bench.model_copy(
            update={
                "home": home,
                "smtp_host": "127.0.0.1",
                "smtp_port": sink.port,
                "smtp_security": "none",
                "dashboard_port": port,
                "api_port": free_port(),
                "dashboard_public_url": url,
                "rollups_interval_s": 60.0,
                "calibration_interval_s": 300.0,
            }
        )
        password = secrets.token_urlsafe(12)
        with connect(settings.database_dsn) as conn:
            apply_site_config(
                conn, parse_site_config(site_yaml(args.cameras, args.stores, args.fps), "soak site")
            )
            add_user(conn, "soak", "admin", password=password)
        log = (home / "supervisor.log").open("wb")
        central = subprocess.Popen(
            [sys.executable, "-m", "cli", "run", "--role", "central"],
            env=child_environment(settings, "soak-settings"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stop = threading.Event()
        browser: dict[str, Any] = {"loads": 0, "errors": 0}
        sent = [0]
        sampler = Sampler(settings, home / "soak.csv", browser, sent)
        threads: list[threading.Thread] = []
        print(
            f"# soak: {args.cameras} cameras x {args.fps} fps in {args.stores} store(s) "
            f"for {args.minutes:g} min; home {home}; {machine()}",
            flush=True,
        )
        try:
            wait_for("the dashboard", lambda: dashboard_up(url), 120)
            wait_for("the services", lambda: len(supervised_pids(home)) >= 7, 60)
            rng = random.Random(19)
            stores = store_ids(args.stores)
            cameras = [
                Camera(
                    cam,
                    stores[c % args.stores],
                    c * DWELL_EVERY_S / args.cameras,
                    random.Random(rng.random()),
                    args.people,
                    args.fps,
                )
                for c, cam in enumerate(camera_ids(args.cameras))
            ]
            threads = [
                threading.Thread(target=publish, args=(settings, cameras, args.fps, stop, sent), daemon=True),
                threading.Thread(
                    target=browse, args=(url, "soak", password, args.reload_s, stop, browser), daemon=True
                ),
            ]
            for thread in threads:
                thread.start()
            start = time.monotonic()
            end = start + args.minutes * 60
            next_sample = start
            while time.monotonic() < end:
                if central.poll() is not None:
                    msg = f"shrinkwatch run exited ({central.returncode}); see {home / 'supervisor.log'}"
                    raise SystemExit(msg)
                if time.monotonic() >= next_sample:
                    t = time.monotonic() - start
                    sampler.take(t, central.pid)
                    next_sample += args.sample_s
                    if int(t) % 60 < args.sample_s:
                        print(
                            f"  [{t / 60:5.1f} min] frames sent {sent[0]}, page loads {browser['loads']} "
                            f"({browser['errors']} failed), emails {len(sink.messages())}",
                            flush=True,
                        )
                time.sleep(0.2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            central.send_signal(signal.SIGTERM)
            try:
                central.wait(timeout=120)
            except subprocess.TimeoutExpired:
                central.kill()
            log.close()
            sampler.close()
            sink.stop()
        with connect(settings.database_dsn) as conn:
            incidents = conn.execute("SELECT count(*) AS n FROM incidents").fetchone()
            outbox = conn.execute("SELECT status, count(*) AS n FROM alert_outbox GROUP BY status").fetchall()
        from infra.supervisor import read_status

        state = read_status(home) or {"services": []}
        restarts = {s["name"]: s["restarts"] for s in state["services"] if s["restarts"]}
        queued = ", ".join(f"{r['status']} {r['n']}" for r in outbox) or "empty"
        page = f"page loads {browser['loads']} ({browser['errors']} failed)"
        if "last_error" in browser:
            page += f"; last failure: {browser['last_error']}"
        if "fatal" in browser:
            page += f"; the browser stopped: {browser['fatal']}"
        print(
            f"frames sent {sent[0]}; incidents {incidents['n'] if incidents else 0}; alert outbox {queued}; "
            f"emails received {len(sink.messages())}; {page}; restarts {restarts or 'none'}"
        )
        report(sampler.rows, args.plots, title)
        print(f"  samples: {home / 'soak.csv'}")


if __name__ == "__main__":
    main()
