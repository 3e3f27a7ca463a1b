"""Privacy zones are never analysed by the flows: no rule looks at them, no incident names one,
no occupancy row is written for one (flows.behaviour.zones.ZoneIndex leaves them out, and every
flow builds its zones through it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bytewax.testing import run_main

from flows.behaviour.engine import BehaviourEngine
from flows.behaviour.frames import Frame
from flows.behaviour.stores import StoreInfo
from flows.behaviour.zones import ZoneArea, ZoneIndex
from flows.catalog import SiteCatalog
from flows.occupancy import CameraMinutes, build_flow, observe
from shrinkwatch.contracts import Incident, encode
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML, frame, person, walk
from tests.support import produce
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SHELF = ZoneArea("z-razors", "high_value", ((0.0, 0.5), (0.4, 0.5), (0.4, 1.0), (0.0, 1.0)))
EXIT = ZoneArea("z-exit", "exit", ((0.8, 0.0), (1.0, 0.0), (1.0, 1.0), (0.8, 1.0)))
# Between the shelf and the exit: everyone leaving the shelf crosses it.
PRIVATE = ZoneArea("z-private", "privacy", ((0.4, 0.5), (0.8, 0.5), (0.8, 1.0), (0.4, 1.0)))
PRIVATE_YAML = """\
      - id: z-private
        name: Staff door
        kind: privacy
        polygon: [[0.4, 0.5], [0.8, 0.5], [0.8, 1.0], [0.4, 1.0]]
"""


def test_an_index_leaves_privacy_zones_out() -> None:
    index = ZoneIndex([SHELF, PRIVATE, EXIT])
    assert [z.zone_id for z in index] == ["z-razors", "z-exit"] and len(index) == 2
    assert index.containing(0.6, 0.8) == []  # inside the privacy zone: in no zone
    assert index.high_value == (SHELF,)


def test_no_incident_names_a_privacy_zone() -> None:
    # From the shelf, through the privacy zone, out of the exit without a checkout.
    frames = walk("cam-1", 7, [(0.0, (0.2, 0.8)), (20.0, (0.2, 0.8)), (26.0, (0.6, 0.8)), (30.0, (0.9, 0.8))])
    engine = BehaviourEngine("cam-1", [SHELF, PRIVATE, EXIT], StoreInfo("store-001"))
    state = None
    out: list[Incident] = []
    for detection in frames:
        state, incidents = engine.step(state, detection)
        out += incidents
    assert "exit_without_checkout" in {i.incident_type for i in out}
    assert all("z-private" not in i.zone_ids for i in out), [i.zone_ids for i in out]
    assert any(i.zone_ids == ["z-razors", "z-exit"] for i in out)


def test_occupancy_writes_no_row_for_a_privacy_zone() -> None:
    state = CameraMinutes()
    rows: list[Any] = []
    index = ZoneIndex([SHELF, PRIVATE, EXIT])
    for i in range(5 * 75):  # 75 s: the first minute closes
        detection = frame("cam-1", i, i / 5, [person(1, (0.6, 0.8)), person(2, (0.2, 0.8))])
        rows += observe(state, Frame.from_detection(detection), index, 10_000_000)
    assert sorted(r.zone_id for r in rows) == ["*", "z-exit", "z-razors"]


def test_the_flows_read_privacy_zones_from_the_site_and_leave_them_out(
    settings: Settings, tmp_path: Path
) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE_YAML + PRIVATE_YAML))
        kinds = conn.execute("SELECT id, kind FROM zones ORDER BY id").fetchall()
    assert {"id": "z-private", "kind": "privacy"} in kinds  # stored with the camera's other zones
    catalog = SiteCatalog.for_settings(settings)
    catalog.load()
    assert sorted(z.zone_id for z in catalog.zones("cam-1")) == ["z-exit", "z-razors"]

    # The occupancy flow on the real services: someone standing in the privacy zone for a
    # minute and a quarter gives rows for the view, the shelf and the exit, none for it.
    frames = [frame("cam-1", i, i / 5, [person(1, (0.6, 0.8)), person(2, (0.2, 0.8))]) for i in range(5 * 75)]
    produce(settings, settings.topic("detections"), [(f.camera_id.encode(), encode(f)) for f in frames])
    run_main(build_flow(settings, tail=False))
    with connect(settings.database_dsn) as conn:
        zones = conn.execute("SELECT DISTINCT zone_id FROM occupancy_minutes ORDER BY zone_id").fetchall()
    assert [r["zone_id"] for r in zones] == ["*", "z-exit", "z-razors"]
