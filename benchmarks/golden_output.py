"""Golden output of the behaviour rules and the occupancy step: a renovation must not change it.

Drives the behaviour engine and the occupancy step directly (no Kafka, no database) over a
deterministic workload: `--cameras` cameras x `--seconds` s at 5 fps, `--people` people in
view at a time, walking scripted visits (browsing, loitering at a shelf, skipping the
checkout, the stock room, a concealment gesture, running out, gathering in a crowd), some
with bags and pose keypoints, over rectangle and polygon zones, in four stores: open and
closing mid-run, closed all run, hours unknown, and open past midnight (local time, each
store its own time zone, thresholds and weights), with an extension signal registered.
Frames go through the wire format (`encode`, then the flows' own parser); now and then one
arrives twice or a minute late. Every incident version and every occupancy row (minutes,
heatmap hours, late frames) is written as a canonical JSON line, in the order produced; the
counts and the file's SHA-256 are printed. Two checkouts agree when their digests do.

An incident's `snapshot` is left out of its line: earlier engines left it empty for the
detector to fill in, later ones name it from the start. Where it is set it must be
`{camera_id}/{incident_id}.jpg`; the run fails otherwise.

Runs against older checkouts too (the rules moved from flows/*.py into flows/behaviour/):
    cd /work/base && PYTHONPATH=$PWD python /path/to/benchmarks/golden_output.py --out /tmp/golden-base.jsonl
Usage: python -m benchmarks.golden_output [--out golden.jsonl] [--cameras 30] [--seconds 150]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shrinkwatch.contracts import INCIDENT_TYPES, DetectedObject, Detection, Incident, encode

try:  # the behaviour package (issue 18)
    from flows.behaviour import signals
    from flows.behaviour.engine import BehaviourEngine
    from flows.behaviour.frames import Frame, parse_frame
    from flows.behaviour.risk import Weights
    from flows.behaviour.stores import StoreInfo
    from flows.behaviour.tracks import Thresholds
    from flows.behaviour.zones import ZoneArea, ZoneIndex
except ImportError:  # before it: one module each under flows/
    from flows import signals
    from flows.behaviour import BehaviourEngine
    from flows.frames import Frame, parse_frame
    from flows.risk import Weights
    from flows.stores import StoreInfo
    from flows.tracks import Thresholds
    from flows.zones import ZoneArea, ZoneIndex
from flows.occupancy import CameraMinutes, close, observe

FPS = 5
T0 = datetime(2026, 3, 2, 20, 58, 30, tzinfo=UTC)  # a Monday; London is on UTC until 29 March
LATENESS_US = 10_000_000
TAIL_S = 6  # empty frames after the workload: every track and crowd ends


def rect(zone_id: str, kind: str, x0: float, y0: float, x1: float, y1: float) -> ZoneArea:
    return ZoneArea(zone_id, kind, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


# Two camera layouts: rectangles (each tested by its box) and polygons (ray casting), each
# with the points a script walks to (inside the zone of that kind).
LAYOUTS: list[tuple[list[ZoneArea], dict[str, tuple[float, float]]]] = [
    (
        [
            rect("z-entrance", "entrance", 0.0, 0.5, 0.1, 1.0),
            rect("z-shelf", "high_value", 0.2, 0.5, 0.4, 1.0),
            rect("z-checkout", "checkout", 0.5, 0.5, 0.65, 1.0),
            rect("z-exit", "exit", 0.85, 0.5, 1.0, 1.0),
            rect("z-stock", "restricted", 0.45, 0.0, 0.6, 0.3),
            rect("z-aisle", "general", 0.1, 0.3, 0.9, 0.5),
        ],
        {
            "entrance": (0.05, 0.8),
            "shelf": (0.3, 0.8),
            "checkout": (0.57, 0.8),
            "exit": (0.93, 0.8),
            "stock": (0.52, 0.2),
        },
    ),
    (
        [
            ZoneArea("z-door", "entrance", ((0.0, 0.55), (0.12, 0.6), (0.12, 1.0), (0.0, 1.0))),
            ZoneArea("z-spirits", "high_value", ((0.15, 0.55), (0.45, 0.5), (0.42, 0.98), (0.18, 0.95))),
            ZoneArea("z-razors", "high_value", ((0.6, 0.1), (0.8, 0.1), (0.7, 0.35))),
            ZoneArea(
                "z-tills", "checkout", ((0.5, 0.6), (0.62, 0.55), (0.7, 0.7), (0.66, 0.95), (0.52, 0.9))
            ),
            ZoneArea("z-way-out", "exit", ((0.86, 0.55), (1.0, 0.5), (1.0, 1.0), (0.82, 1.0))),
            ZoneArea("z-office", "restricted", ((0.3, 0.05), (0.5, 0.0), (0.52, 0.3), (0.28, 0.28))),
        ],
        {
            "entrance": (0.06, 0.85),
            "shelf": (0.3, 0.75),
            "checkout": (0.6, 0.75),
            "exit": (0.93, 0.8),
            "stock": (0.4, 0.15),
        },
    ),
]

DEFAULT_WEIGHTS = dict(signals.BUILT_IN_WEIGHTS)
STORES = [
    # Open until 21:00 (London): closes mid-run; its own weights, a calibrated version.
    StoreInfo(
        "store-a",
        "Europe/London",
        tuple((day, "08:00-21:00") for day in ("mon", "tue", "wed", "thu", "fri", "sat")),
        Thresholds(),
        Weights({**DEFAULT_WEIGHTS, "dwell_high_value_s": 0.7, "golden_zones": 0.2}, 4),
    ),
    # Open at weekends only (New York): closed all run.
    StoreInfo(
        "store-b",
        "America/New_York",
        (("sat", "10:00-16:00"), ("sun", "10:00-16:00")),
        Thresholds(after_hours_s=8),
    ),
    # Hours unknown: never after hours; quick thresholds.
    StoreInfo(
        "store-c",
        "UTC",
        None,
        Thresholds(loiter_s=12, crowd_people=3, crowd_s=10, restricted_s=1.5, incident_update_s=5),
    ),
    # Open from Monday 18:00 to Tuesday 06:00 (Tokyo): it is Tuesday there, closing at 06:00.
    StoreInfo(
        "store-d",
        "Asia/Tokyo",
        (("mon", "18:00-06:00"),),
        Thresholds(concealment_s=1.5, running_speed=1.2, crowd_s=15),
    ),
]


def store_of(camera: int) -> StoreInfo:
    return STORES[0 if camera < 10 else 1 if camera < 17 else 2 if camera < 25 else 3]


def zones_visited(track: Any, rules: Any) -> tuple[float, float]:
    """The extension signal: distinct zones visited (as flows/examples/zone_hops.py)."""
    count = len(set(track.path))
    return float(count), min(1.0, max(0.0, (count - 2) / 3))


# -- people -------------------------------------------------------------------------------

Waypoint = tuple[float, float, float, str]  # time from the person's start, x, y, pose from there


@dataclasses.dataclass
class Walker:
    """One person's scripted visit."""

    track_id: int
    start: float
    waypoints: list[Waypoint]
    height: float
    bag: str | None
    keypoints: bool
    hidden: set[int]  # frame indexes in which the tracker misses them

    @property
    def end(self) -> float:
        return self.start + self.waypoints[-1][0]

    def at(self, t: float) -> tuple[float, float, str]:
        """Where the feet are at time t (linear between waypoints), and the pose."""
        rel = t - self.start
        for (ta, xa, ya, pose), (tb, xb, yb, _) in zip(self.waypoints, self.waypoints[1:], strict=False):
            if ta <= rel <= tb:
                r = 0.0 if tb == ta else (rel - ta) / (tb - ta)
                return xa + r * (xb - xa), ya + r * (yb - ya), pose
        _, x, y, pose = self.waypoints[-1]
        return x, y, pose


def script(kind: str, points: dict[str, tuple[float, float]], rng: random.Random) -> list[Waypoint]:
    """The waypoints of one kind of visit, with some randomness (and its near misses)."""

    def near(name: str, spread: float = 0.02) -> tuple[float, float]:
        x, y = points[name]
        return x + rng.uniform(-spread, spread), y + rng.uniform(-spread, spread)

    def floor() -> tuple[float, float]:
        return rng.uniform(0.12, 0.85), rng.uniform(0.35, 0.97)

    out: list[Waypoint] = [(0.0, *near("entrance"), "sides")]

    def go(to: tuple[float, float], speed: float = 0.12, pose: str = "sides", stay: float = 0.0) -> None:
        t, x, y, _ = out[-1]
        t += max(0.2, ((to[0] - x) ** 2 + (to[1] - y) ** 2) ** 0.5 / speed)
        out.append((t, *to, pose))
        if stay:
            out.append((t + stay, to[0] + rng.uniform(-0.005, 0.005), to[1], pose))

    if kind == "browse":
        for _ in range(rng.randint(2, 4)):
            go(floor(), stay=rng.uniform(0, 4))
        go(near("checkout"), stay=rng.uniform(1, 5))
        go(near("exit"))
    elif kind == "loiter":
        go(near("shelf"), stay=rng.uniform(8, 45))
        go(near("checkout"), stay=rng.uniform(1, 4))
        go(near("exit"))
    elif kind == "skip":  # round the checkout, not through it
        go(near("shelf"), stay=rng.uniform(2, 8))
        go((0.45, 0.45))
        go((0.8, 0.45))
        go(near("exit"), stay=1)
    elif kind == "stock":
        go(near("stock", 0.01), stay=rng.uniform(0.8, 5))
        go(near("checkout"))
        go(near("exit"))
    elif kind == "conceal":
        go(near("shelf", 0.01), stay=rng.uniform(1, 3))
        t, x, y, _ = out[-1]
        out.append((t + 0.01, x, y, rng.choice(["front", "bag"])))
        out.append((t + rng.uniform(0.6, 4.5), x, y, "sides"))
        go(near("checkout"))
        go(near("exit"))
    elif kind == "run":
        go(floor())
        ex, ey = near("exit")
        dash = rng.uniform(0.4, 0.8)  # units per second; a body is about 0.2 high
        start = (max(0.12, ex - 0.45), ey)
        go(start)
        go((ex, ey), speed=dash)
        if rng.random() < 0.3:  # a near miss: stops short, walks the rest later
            t, x, y, _ = out[-1]
            out[-1] = (t, ex - 0.12, ey, "sides")
            out.append((t + 4, ex - 0.12, ey, "sides"))
            go((ex, ey), speed=0.05)
        go((ex + 0.04, ey), stay=1)
    else:  # "gather": join the crowd at the shelf (the caller sets the time)
        go(near("shelf", 0.03), stay=rng.uniform(25, 35))
        go(near("checkout"))
        go(near("exit"))
    return out


KINDS = ["browse", "browse", "loiter", "skip", "stock", "conceal", "run"]


def poses(
    box: tuple[float, float, float, float], pose: str, bag: tuple[float, ...] | None
) -> list[list[float]]:
    """17 COCO keypoints for a standing person: hands at the sides, in front, or in the bag."""
    x1, y1, x2, y2 = box
    cx, h = (x1 + x2) / 2, y2 - y1
    shoulder_y, hip_y = y1 + 0.25 * h, y1 + 0.55 * h
    points = [[cx, y1 + 0.05 * h, 0.9] for _ in range(17)]
    points[5], points[6] = [cx - 0.02, shoulder_y, 0.9], [cx + 0.02, shoulder_y, 0.9]
    points[11], points[12] = [cx - 0.015, hip_y, 0.9], [cx + 0.015, hip_y, 0.9]
    if pose == "front":
        points[9], points[10] = [cx, hip_y - 0.05 * h, 0.9], [cx + 0.03, hip_y, 0.9]
    elif pose == "bag" and bag is not None:
        points[9] = [(bag[0] + bag[2]) / 2, (bag[1] + bag[3]) / 2, 0.8]
        points[10] = [cx + 0.03, hip_y + 0.05 * h, 0.3]  # not confident: does not count
    else:
        points[9], points[10] = [cx - 0.03, hip_y + 0.05 * h, 0.9], [cx + 0.03, hip_y + 0.05 * h, 0.9]
    return [[min(1.0, max(0.0, v)) for v in p] for p in points]


def camera_frames(camera: int, seconds: int, people: int, seed: int) -> Iterator[tuple[float, Detection]]:
    """One camera's frames (and the odd repeated or late one), as (delivery time, message)."""
    rng = random.Random(seed * 1000 + camera)
    camera_id, store = f"cam-{camera:02d}", store_of(camera)
    points = LAYOUTS[camera % 2][1]
    offset = camera * 0.013  # cameras' clocks are not in step
    walkers: list[Walker] = []
    next_id = 1
    gather = 12.0 + (camera % 5) * 15 if camera % 3 == 0 else None  # a crowd on every third camera
    sent: list[Detection] = []
    total = seconds * FPS
    for i in range(total + TAIL_S * FPS):
        t = i / FPS
        live = i < total
        walkers = [w for w in walkers if w.end > t]
        arriving = [rng.choice(KINDS) for _ in range(people - len(walkers))] if live else []
        if gather is not None and t >= gather:  # a group comes in together
            arriving += ["gather"] * (4 + camera % 2)
            gather = None
        for kind in arriving:
            walkers.append(
                Walker(
                    track_id=next_id,
                    start=t,
                    waypoints=script(kind, points, rng),
                    height=rng.uniform(0.15, 0.3),
                    bag=rng.choice([None, None, "handbag", "backpack", "suitcase"]),
                    keypoints=rng.random() < 0.7 or kind in ("conceal", "gather"),
                    hidden={i + k for k in range(400) if rng.random() < 0.02},
                )
            )
            next_id += 1
        objects: list[DetectedObject] = []
        for w in walkers:
            if i in w.hidden:
                continue
            x, y, pose = w.at(t)
            x = min(0.99, max(0.01, x + rng.gauss(0, 0.002)))
            y = min(1.0, max(w.height, y + rng.gauss(0, 0.002)))
            half = 0.15 * w.height
            box = (max(0.0, x - half), y - w.height, min(1.0, x + half), y)
            bag = None
            if w.bag is not None:
                # Carried low at the side: it overlaps the person's box, the hanging hand does not reach in.
                bag = (
                    min(1.0, x + 0.6 * half),
                    y - 0.35 * w.height,
                    min(1.0, x + 2 * half),
                    y - 0.1 * w.height,
                )
                objects.append(
                    DetectedObject(track_id=None, class_name=w.bag, class_id=26, conf=0.6, box=bag)
                )
            objects.append(
                DetectedObject(
                    track_id=w.track_id,
                    class_name="person",
                    class_id=0,
                    conf=round(rng.uniform(0.5, 0.95), 3),
                    box=box,
                    keypoints=poses(box, pose, bag) if w.keypoints else None,
                )
            )
        if live and i % 97 == 0:  # objects the rules must ignore: an untracked person, a cart
            objects.append(
                DetectedObject(
                    track_id=None, class_name="person", class_id=0, conf=0.4, box=(0.4, 0.4, 0.45, 0.6)
                )
            )
            objects.append(
                DetectedObject(
                    track_id=900 + i, class_name="cart", class_id=80, conf=0.7, box=(0.6, 0.7, 0.7, 0.8)
                )
            )
        detection = Detection(
            camera_id=camera_id,
            store_id=store.store_id,
            frame_id=i,
            ts=T0 + timedelta(seconds=t + offset),
            frame_w=768,
            frame_h=432,
            objects=objects,
        )
        sent.append(detection)
        yield t + offset, detection
        if live and i % 53 == 17:  # the same frame again (a replay)
            yield t + offset + 0.001, detection
        if live and i % 211 == 200 and i > 400:  # a frame held up for over a minute
            yield t + offset + 0.002, sent[i - 350]


def workload(cameras: int, seconds: int, people: int, seed: int) -> list[tuple[float, int, Detection]]:
    """Every camera's frames in the order they arrive (delivery time, then camera)."""
    frames = [(at, c, d) for c in range(cameras) for at, d in camera_frames(c, seconds, people, seed)]
    frames.sort(key=lambda item: (item[0], item[1]))
    return frames


# -- output -------------------------------------------------------------------------------


def canonical(kind: str, values: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, **values}, sort_keys=True, separators=(",", ":"), default=str)


def incident_line(incident: Incident) -> str:
    values = incident.model_dump(mode="json", by_alias=True)
    snapshot = values.pop("snapshot", None)
    expected = f"{incident.camera_id}/{incident.incident_id}.jpg"
    if snapshot is not None and snapshot != expected:
        msg = f"incident {incident.incident_id}: snapshot {snapshot!r}, expected {expected!r}"
        raise SystemExit(msg)
    return canonical("incident", values)


def row_line(row: Any) -> str:
    values = {
        f.name: (v.isoformat() if isinstance(v, datetime) else v)
        for f in dataclasses.fields(row)
        for v in [getattr(row, f.name)]
    }
    return canonical(type(row).__name__, values)


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    say(
        f"building the workload: {args.cameras} cameras x {args.seconds} s at {FPS} fps, {args.people} people"
    )
    frames = workload(args.cameras, args.seconds, args.people, args.seed)
    raw = [(c, encode(d)) for _, c, d in frames]
    say(f"{len(raw)} messages; running the rules")
    engines = {
        c: BehaviourEngine(f"cam-{c:02d}", LAYOUTS[c % 2][0], store_of(c)) for c in range(args.cameras)
    }
    zone_indexes = {c: ZoneIndex(LAYOUTS[c % 2][0]) for c in range(args.cameras)}
    states: dict[int, Any] = {}
    minutes = {c: CameraMinutes() for c in range(args.cameras)}
    counts: Counter[str] = Counter()
    versions_by_type: Counter[str] = Counter()
    incidents: set[str] = set()
    with_snapshot = 0
    digest = hashlib.sha256()
    signals.register_signal("golden_zones", weight=0.1)(zones_visited)
    engine_s = 0.0
    started = time.perf_counter()
    try:
        with open(args.out, "w", encoding="utf-8") as out:

            def write(line: str) -> None:
                out.write(line + "\n")
                digest.update(line.encode() + b"\n")

            step = max(1, len(raw) // 10)
            for n, (c, value) in enumerate(raw, 1):
                frame: Frame = parse_frame(value)
                before = time.perf_counter()
                states[c], found = engines[c].step(states.get(c), frame)
                engine_s += time.perf_counter() - before
                for incident in found:
                    write(incident_line(incident))
                    counts["incident versions"] += 1
                    versions_by_type[incident.incident_type] += 1
                    incidents.add(incident.incident_id)
                    with_snapshot += incident.snapshot is not None
                for row in observe(minutes[c], frame, zone_indexes[c], LATENESS_US):
                    write(row_line(row))
                    counts[type(row).__name__] += 1
                if n % step == 0:
                    say(f"  {n}/{len(raw)} messages, {counts['incident versions']} incident versions")
            for c in range(args.cameras):  # the input ends: every open minute and hour is written
                for row in close(minutes[c], f"cam-{c:02d}", 2**62, quiet=True):
                    write(row_line(row))
                    counts[type(row).__name__] += 1
    finally:
        signals.unregister_signal("golden_zones")
    missing = [t for t in INCIDENT_TYPES if not versions_by_type[t]]
    return {
        "messages": len(raw),
        "incidents": len(incidents),
        "counts": counts,
        "by_type": versions_by_type,
        "missing": missing,
        "with_snapshot": with_snapshot,
        "sha256": digest.hexdigest(),
        "engine_s": engine_s,
        "total_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="See the module docstring for the workload."
    )
    parser.add_argument("--out", type=Path, default=Path("golden.jsonl"), help="the JSON lines file to write")
    parser.add_argument("--cameras", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=150, help="of frames per camera, at 5 fps")
    parser.add_argument("--people", type=int, default=7, help="in view at a time, per camera")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args()

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    result = run(args, say)
    counts = result["counts"]
    print(f"rules from {BehaviourEngine.__module__}; wrote {args.out}")
    print(
        f"messages {result['messages']} | incidents {result['incidents']} "
        f"({counts['incident versions']} versions, {result['with_snapshot']} naming their snapshot) | "
        f"minute rows {counts['MinuteRow']} | heatmap rows {counts['HeatRow']} | "
        f"late frames {counts['LateFrame']}"
    )
    print("versions by type: " + ", ".join(f"{t} {result['by_type'][t]}" for t in INCIDENT_TYPES))
    print(f"engine {result['engine_s']:.2f} s of {result['total_s']:.2f} s")
    print(f"sha256 {result['sha256']}")
    if result["missing"]:
        print(f"not every incident type fired: {', '.join(result['missing'])}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
