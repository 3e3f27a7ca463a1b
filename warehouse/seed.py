"""`shrinkwatch warehouse seed`: realistic synthetic history, for demos and benchmarks.

Stores (`seed-001`, ...) in several time zones with opening hours and economics, cameras with
five zones each, and for every open hour of every day: occupancy minutes per zone following
daily and weekly seasonality, an hourly heatmap along the walking path (entrance -> shelf ->
checkout -> exit, people lingering at the shelf and queueing at the checkout), and incidents
in a plausible mix of types, most of them reviewed by an analyst with a confirmation rate
that depends on the type and the risk level. The same arguments give the same history.
Rows carry the change times the flows would have given them (a minute's row written as it
closed, an incident as it ended), so incremental rollup refreshes see them as old.

Everything seeded belongs to stores whose ids start with `seed-`; `--replace` removes a
previous seed first, and nothing else is touched.
"""

from __future__ import annotations

import io
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from psycopg.types.json import Jsonb

from shrinkwatch.contracts import risk_level
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.hours import open_at
from shrinkwatch.site_file import Camera, Economics, SiteConfig, Store, Zone
from warehouse.db import Connection
from warehouse.partitions import ensure_partitions
from warehouse.site_tables import apply_site_config

PREFIX = "seed-"
ROLLUP_NAMES = ("risk_pattern", "roi_monthly", "footfall_hourly", "heatmap_daily", "detection_quality")
TIMEZONES = (
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
)
HOURS = {day: "08:00-21:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat")} | {"sun": "10:00-17:00"}
ZONES = (  # id, kind, polygon, share of the camera's people found in it
    ("z-entrance", "entrance", [(0.0, 0.55), (0.15, 0.55), (0.15, 1.0), (0.0, 1.0)], 0.25),
    ("z-shelf", "high_value", [(0.25, 0.5), (0.5, 0.5), (0.55, 0.95), (0.2, 0.95)], 0.35),
    ("z-checkout", "checkout", [(0.6, 0.55), (0.75, 0.55), (0.75, 1.0), (0.6, 1.0)], 0.25),
    ("z-exit", "exit", [(0.85, 0.55), (1.0, 0.55), (1.0, 1.0), (0.85, 1.0)], 0.2),
    ("z-stock", "restricted", [(0.8, 0.05), (0.95, 0.05), (0.95, 0.3), (0.8, 0.3)], 0.01),
)
# Share of incidents by type, the zones they concern, and how often analysts confirm them.
MIX: tuple[tuple[str, float, list[str], float], ...] = (
    ("loitering_high_value", 0.33, ["z-shelf"], 0.35),
    ("exit_without_checkout", 0.2, ["z-entrance", "z-shelf", "z-exit"], 0.55),
    ("concealment_suspected", 0.15, ["z-shelf"], 0.6),
    ("restricted_zone", 0.1, ["z-stock"], 0.5),
    ("running_exit", 0.08, ["z-shelf", "z-exit"], 0.45),
    ("crowding", 0.08, ["z-shelf"], 0.15),
    ("after_hours", 0.06, [], 0.7),
)
SIGNAL_OF = {
    "loitering_high_value": "dwell_high_value_s",
    "exit_without_checkout": "skipped_checkout",
    "concealment_suspected": "concealment_cue_s",
    "restricted_zone": "restricted_zone_s",
    "running_exit": "running_exit",
    "crowding": "crowd_size",
    "after_hours": "after_hours_s",
}
GRID_W, GRID_H = 64, 36
HOUR = timedelta(hours=1)
NAMESPACE = uuid.UUID("1b0c2a7e-53d3-4a4e-8f0e-5e3a9c2d7b11")


def _hour_profile(hour: int) -> float:
    """Shoppers through the day: a lunchtime and an after-work peak."""
    return 0.35 + math.exp(-((hour - 12.5) ** 2) / 4) + 1.2 * math.exp(-((hour - 17.5) ** 2) / 3)


WEEKDAY = (1.0, 0.95, 1.0, 1.05, 1.2, 1.45, 1.1)  # Monday .. Sunday


@dataclass(frozen=True)
class SeedSummary:
    """What a seed wrote."""

    stores: int
    cameras: int
    incidents: int
    reviewed: int
    occupancy_rows: int
    heatmap_rows: int


def _path_pattern(rng: random.Random) -> tuple[dict[int, float], dict[int, float]]:
    """One camera's walking path as cell weights (all time, and time spent still)."""
    waypoints = [(0.07, 0.8), (0.37, 0.75), (0.67, 0.8), (0.92, 0.8)]
    waypoints = [(x + rng.uniform(-0.03, 0.03), y + rng.uniform(-0.05, 0.05)) for x, y in waypoints]
    spent: dict[int, float] = {}
    still: dict[int, float] = {}
    for (x0, y0), (x1, y1) in zip(waypoints, waypoints[1:], strict=False):
        for step in range(40):
            t = step / 40
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    x = x0 + (x1 - x0) * t + dx / GRID_W
                    y = y0 + (y1 - y0) * t + dy / GRID_H
                    cell = min(int(y * GRID_H), GRID_H - 1) * GRID_W + min(int(x * GRID_W), GRID_W - 1)
                    spent[cell] = spent.get(cell, 0.0) + (1.0 if dx == dy == 0 else 0.3)
    for (x, y), linger in ((waypoints[1], 6.0), (waypoints[2], 3.0)):  # the shelf, the checkout queue
        for dx in range(-2, 3):
            for dy in range(-2, 3):
                cell = min(int(y * GRID_H) + dy, GRID_H - 1) * GRID_W + min(int(x * GRID_W) + dx, GRID_W - 1)
                weight = linger / (1 + abs(dx) + abs(dy))
                spent[cell] = spent.get(cell, 0.0) + weight
                still[cell] = still.get(cell, 0.0) + weight * 0.8
    total = sum(spent.values())
    return {c: w / total for c, w in spent.items()}, {c: w / total for c, w in still.items()}


def site(stores: int, cameras: int, rng: random.Random) -> SiteConfig:
    """The seeded stores, cameras and zones, validated like any site file."""
    store_list = [
        Store(
            id=f"{PREFIX}{i + 1:03d}",
            name=f"Seed store {i + 1}",
            city=TIMEZONES[i % len(TIMEZONES)].split("/")[1].replace("_", " "),
            timezone=TIMEZONES[i % len(TIMEZONES)],
            hours=HOURS,
            economics=Economics(
                currency="GBP" if i % len(TIMEZONES) == 0 else "EUR" if i % len(TIMEZONES) == 1 else "USD",
                avg_loss_per_incident=round(rng.uniform(40, 150), 2),
                recovery_rate=round(rng.uniform(0.4, 0.8), 2),
                monthly_cost=rng.choice([199.0, 299.0, 399.0, 499.0]),
            ),
        )
        for i in range(stores)
    ]
    camera_list = [
        Camera(
            id=f"{store.id}-cam-{j + 1:02d}",
            store_id=store.id,
            name=f"Aisle {j + 1}",
            location=f"aisle {j + 1}",
            stream_url=f"rtsp://${{SEED_CAM_USER}}:${{SEED_CAM_PASS}}@10.0.{i}.{j + 10}/stream1",
            fps=5,
            zones=[Zone(id=z, name=z[2:].title(), kind=k, polygon=p) for z, k, p, _ in ZONES],
        )
        for i, store in enumerate(store_list)
        for j in range(cameras)
    ]
    return SiteConfig(stores=store_list, cameras=camera_list)


def seeded_stores(conn: Connection) -> int:
    """How many seeded stores the warehouse holds."""
    row = conn.execute("SELECT count(*) AS n FROM stores WHERE id LIKE %s", (f"{PREFIX}%",)).fetchone()
    return int(row["n"]) if row else 0


def _remove_previous(conn: Connection) -> None:
    like = f"{PREFIX}%"
    with conn.transaction():
        cameras = "SELECT id FROM cameras WHERE store_id LIKE %(like)s"
        for statement in (
            f"DELETE FROM occupancy_minutes WHERE camera_id IN ({cameras})",
            f"DELETE FROM heatmap_hours WHERE camera_id IN ({cameras})",
            f"DELETE FROM rollup_changes WHERE id IN ({cameras})",
            "DELETE FROM incidents WHERE store_id LIKE %(like)s",
            *(f"DELETE FROM rollup_{name} WHERE store_id LIKE %(like)s" for name in ROLLUP_NAMES),
            "DELETE FROM zones WHERE camera_id IN (SELECT id FROM cameras WHERE store_id LIKE %(like)s)",
            "DELETE FROM cameras WHERE store_id LIKE %(like)s",
            "DELETE FROM risk_weights WHERE store_id LIKE %(like)s",
            "DELETE FROM stores WHERE id LIKE %(like)s",
        ):
            conn.execute(statement, {"like": like})


def seed_history(
    conn: Connection,
    *,
    days: int,
    stores: int,
    cameras: int,
    until: datetime | None = None,
    seed: int = 7,
    replace: bool = False,
    progress: Callable[[str], None] = print,
) -> SeedSummary:
    """Write `days` days of history up to `until` (default: the start of this hour)."""
    if days < 1 or stores < 1 or cameras < 1:
        msg = "--days, --stores and --cameras must each be at least 1"
        raise ShrinkwatchError(msg)
    existing = seeded_stores(conn)
    if existing:
        if not replace:
            msg = f"{existing} seeded store(s) exist already; pass --replace to seed again"
            raise ShrinkwatchError(msg)
        progress("removing the previous seed")
        _remove_previous(conn)
    rng = random.Random(seed)
    end = (until or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    config = site(stores, cameras, rng)
    apply_site_config(conn, config)
    ensure_partitions(conn, start.date(), end.date())  # the seeded days have theirs
    period = f"{start:%Y-%m-%d} to {end:%Y-%m-%d %H:%M}Z"
    progress(f"seeding {days} days x {stores} stores x {cameras} cameras, {period}")
    counts = {"incidents": 0, "reviewed": 0, "occupancy": 0, "heat": 0}
    np_rng = np.random.default_rng(seed)
    by_store = {s.id: s for s in config.stores}
    for index, camera in enumerate(config.cameras):
        store = by_store[camera.store_id]
        _seed_camera(conn, camera.id, store, start, end, rng, np_rng, counts)
        if (index + 1) % max(1, len(config.cameras) // 10) == 0 or index + 1 == len(config.cameras):
            progress(
                f"  {index + 1}/{len(config.cameras)} cameras: {counts['incidents']} incidents, "
                f"{counts['occupancy']} occupancy minutes, {counts['heat']} heatmap hours"
            )
    return SeedSummary(
        len(config.stores),
        len(config.cameras),
        counts["incidents"],
        counts["reviewed"],
        counts["occupancy"],
        counts["heat"],
    )


def _open_hours(store: Store, start: datetime, end: datetime) -> list[datetime]:
    """UTC hour starts in [start, end) when the store is open at the start of the hour."""
    zone = ZoneInfo(store.timezone)
    hours: dict[str, str] = {day: span for day, span in (store.hours or {}).items()}
    found = []
    hour = start
    while hour < end:
        local = hour.astimezone(zone)
        if open_at(hours, local.weekday(), local.strftime("%H:%M")):
            found.append(hour)
        hour += timedelta(hours=1)
    return found


def _seed_camera(
    conn: Connection,
    camera_id: str,
    store: Store,
    start: datetime,
    end: datetime,
    rng: random.Random,
    np_rng: np.random.Generator,
    counts: dict[str, int],
) -> None:
    zone = ZoneInfo(store.timezone)
    spent_pattern, still_pattern = _path_pattern(rng)
    cells = np.array(sorted(spent_pattern), dtype=np.int16)
    spent_w = np.array([spent_pattern[c] for c in cells])
    still_w = np.array([still_pattern.get(c, 0.0) for c in cells])
    size = rng.uniform(0.6, 1.6)  # busier and quieter cameras
    minutes = io.StringIO()
    heat_rows = []
    incidents = []
    for hour in _open_hours(store, start, end):
        local = hour.astimezone(zone)
        visitors_per_hour = 60 * size * _hour_profile(local.hour) * WEEKDAY[local.weekday()]
        present = np_rng.poisson(visitors_per_hour * 4 / 60, 60)  # about 4 minutes in view each
        stamps = [(hour + timedelta(minutes=minute)).isoformat() for minute in range(61)]
        # occupancy minutes: the whole view and each zone (its share of the people there)
        for zone_id, share in [("*", 1.0), *((z, s) for z, _, _, s in ZONES)]:
            people = np_rng.binomial(present, share) if share < 1 else present
            avg = np.round(people * np_rng.uniform(0.7, 1.0, 60), 3)
            peak = people + np_rng.integers(0, 2, 60)
            minutes.writelines(
                f"{camera_id}\t{zone_id}\t{stamps[m]}\t300\t{n}\t{a}\t{k}\t{stamps[m + 1]}\n"
                for m, (n, a, k) in enumerate(zip(people.tolist(), avg.tolist(), peak.tolist(), strict=True))
            )
            counts["occupancy"] += 60
        person_seconds = float(present.sum()) * 60 * 0.8
        noise = np_rng.uniform(0.8, 1.2, len(cells))
        heat_rows.append(
            (
                camera_id,
                hour,
                GRID_W,
                GRID_H,
                18000,
                cells.tolist(),
                np.round(spent_w * noise * person_seconds, 3).tolist(),
                np.round(still_w * noise * person_seconds, 3).tolist(),
                hour + HOUR,
            )
        )
        for _ in range(np_rng.poisson(0.12 * size * _hour_profile(local.hour) * WEEKDAY[local.weekday()])):
            incidents.append(
                _incident(camera_id, store.id, hour + timedelta(seconds=rng.uniform(0, 3599)), end, rng)
            )
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(
            "COPY occupancy_minutes (camera_id, zone_id, minute, frames, visitors, people_avg, people_peak, "
            "updated_at) FROM STDIN"
        ) as copy:
            copy.write(minutes.getvalue())
        with cur.copy(
            "COPY heatmap_hours (camera_id, hour, grid_w, grid_h, frames, cells, person_s, dwell_s, "
            "updated_at) FROM STDIN"
        ) as copy:
            for row in heat_rows:
                copy.write_row(row)
        with cur.copy("COPY rollup_changes (source, id, period, changed_at) FROM STDIN") as copy:
            for row in heat_rows:  # an hour of minutes and its heatmap, written as it closed
                copy.write_row(("occupancy", camera_id, row[1], row[-1]))
                copy.write_row(("heatmap", camera_id, row[1], row[-1]))
        with cur.copy(
            """COPY incidents (incident_id, version, store_id, camera_id, track_id, incident_type, risk_score,
                   risk_level, status, started_at, updated_at, ended_at, zone_ids, signals,
                   user_confirmed, reviewed_by, reviewed_at, first_seen_at, last_written_at) FROM STDIN"""
        ) as copy:
            for row in incidents:
                copy.write_row(row)
    counts["heat"] += len(heat_rows)
    counts["incidents"] += len(incidents)
    counts["reviewed"] += sum(1 for row in incidents if row[14] is not None)


def _incident(camera_id: str, store_id: str, started: datetime, end: datetime, rng: random.Random) -> tuple:
    kind, _share, zones, confirm_rate = rng.choices(MIX, weights=[m[1] for m in MIX])[0]
    score = round(min(1.0, max(0.1, rng.betavariate(4, 4) + (0.15 if kind == "after_hours" else 0))), 4)
    level = risk_level(score)
    duration = rng.uniform(5, 180)
    ended = started + timedelta(seconds=duration)
    signal = SIGNAL_OF[kind]
    value = round(duration if signal.endswith("_s") else 1.0, 3)
    signals = [{"name": signal, "value": value, "contribution": score}]
    reviewed_at = started + timedelta(hours=rng.uniform(0.2, 30))
    confirmed = None
    if reviewed_at < end and rng.random() < 0.8:
        bump = {"high": 0.2, "medium": 0.0, "low": -0.2}[level]
        confirmed = rng.random() < min(0.95, max(0.02, confirm_rate + bump))
    track = rng.randint(1, 100_000) if kind != "crowding" else None
    incident_id = str(uuid.uuid5(NAMESPACE, f"{camera_id}/{started.isoformat()}"))
    return (
        incident_id,
        3,
        store_id,
        camera_id,
        track,
        kind,
        score,
        level,
        "closed",
        started,
        ended,
        ended,
        zones,
        Jsonb(signals),
        confirmed,
        "seed-analyst" if confirmed is not None else None,
        reviewed_at if confirmed is not None else None,
        started,
        ended,
    )
