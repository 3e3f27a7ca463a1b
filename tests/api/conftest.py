"""The API against real PostgreSQL: two stores, each with a camera, zones, camera health,
incidents and evidence files as the recorder lays them out; accounts and API tokens made as
`shrinkwatch users add` and `shrinkwatch tokens add` make them; FastAPI's TestClient over
`create_app(settings)` (its requests run through the app's own thread pool and connections).

Leeds (store-001, cam-1) has five incidents, l-0 newest to l-4 oldest; Boston (store-002,
cam-2) has two, b-0 and b-1. l-0 and b-0 have a snapshot, a clip and an unblurred snapshot on
disk. Tests that assert that a token sees nothing of Boston check first, with a token of every
store, that Boston's rows are there to be seen.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from privacy import files
from shrinkwatch.contracts import CameraHealth, snapshot_name
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import incident
from tests.support import record_review
from warehouse.accounts import add_user
from warehouse.api_tokens import add_token
from warehouse.camera_health import write_health
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.occupancy import HeatRow, MinuteRow, write_occupancy
from warehouse.rollups import run_rollups
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
cameras:
  - id: cam-1
    store_id: store-001
    name: Aisle
    stream_url: /dev/null
    zones:
      - {id: z-razors, name: Razors, kind: high_value,
         polygon: [[0.0, 0.5], [0.4, 0.5], [0.4, 1.0], [0.0, 1.0]]}
  - id: cam-2
    store_id: store-002
    name: Door
    stream_url: /dev/null
    zones:
      - {id: z-door, name: Door, kind: exit, polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0]]}
"""
NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
LEEDS = {"store": "store-001", "camera": "cam-1", "incidents": [f"l-{i}" for i in range(5)]}
BOSTON = {"store": "store-002", "camera": "cam-2", "incidents": ["b-0", "b-1"]}
WITH_EVIDENCE = ("l-0", "b-0")
SNAPSHOT_BYTES = b"\xff\xd8 a snapshot of %s \xff\xd9"
CLIP_BYTES = bytes(range(256)) * 8


def evidence_file(settings: Settings, camera_id: str, incident_id: str, suffix: str) -> Path:
    path = files.evidence_path(settings.evidence_dir(), snapshot_name(camera_id, incident_id), suffix)
    assert path is not None
    return path


def seed(settings: Settings) -> None:
    """The two stores' site, incidents, camera health and evidence files, and the accounts:
    ana, an analyst (every store); mo, Leeds's store manager; bo, Boston's."""
    made = [
        incident(
            1,
            "closed",
            incident_id=incident_id,
            store_id=where["store"],
            camera_id=where["camera"],
            started_at=NOW - timedelta(minutes=10 * n),
            updated_at=NOW - timedelta(minutes=10 * n - 1),
            risk_score=0.8 if n % 2 == 0 else 0.3,
            risk_level="high" if n % 2 == 0 else "low",
            snapshot=snapshot_name(where["camera"], incident_id),
        )
        for where in (LEEDS, BOSTON)
        for n, incident_id in enumerate(where["incidents"])
    ]
    health = [
        CameraHealth(camera_id=c, store_id=s, ts=NOW, status="online", fps_in=25.0, fps_analysed=5.0)
        for c, s in (("cam-1", "store-001"), ("cam-2", "store-002"))
    ]
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        upsert_incidents(conn, made)
        write_health(conn, health)
        add_user(conn, "ana", "analyst", password=None)
        add_user(conn, "mo", "store_manager", password=None, stores=["store-001"])
        add_user(conn, "bo", "store_manager", password=None, stores=["store-002"])
        conn.commit()
    for incident_id, camera_id in (("l-0", "cam-1"), ("b-0", "cam-2")):
        for suffix, content in (
            (files.SNAPSHOT, SNAPSHOT_BYTES % incident_id.encode()),
            (files.UNBLURRED_SNAPSHOT, b"unblurred " + incident_id.encode()),
            (files.CLIP, CLIP_BYTES + incident_id.encode()),
        ):
            path = evidence_file(settings, camera_id, incident_id, suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def make_token(settings: Settings, name: str, **options: Any) -> str:
    """A new token's string, made as `shrinkwatch tokens add` makes it (add_token)."""
    with connect(settings.database_dsn) as conn:
        _token, secret = add_token(conn, name=name, created_by="tests", **options)
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """The app over a seeded warehouse, and tokens by name."""

    settings: Settings
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, token: str | None = None, **options: Any) -> httpx.Response:
        """GET `path` with the token of that name (none: no Authorization header)."""
        headers = bearer(self.tokens[token]) if token else {}
        return self.client.get(path, headers=headers | options.pop("headers", {}), **options)

    def post(self, path: str, token: str | None, body: Any) -> httpx.Response:
        headers = bearer(self.tokens[token]) if token else {}
        return self.client.post(path, headers=headers, json=body)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    """The seeded warehouse with these tokens: `all` (ana's, read/review/export), `reader`
    (ana's, read only), `leeds` (mo's, read/review/export), `service` (a service token of
    Leeds, read/review/export)."""
    seed(settings)
    everything = ("read", "review", "export")
    tokens = {
        "all": make_token(settings, "all", username="ana", permissions=everything),
        "reader": make_token(settings, "reader", username="ana"),
        "leeds": make_token(settings, "leeds", username="mo", permissions=everything),
        "service": make_token(settings, "soc", service=True, stores=["store-001"], permissions=everything),
    }
    with TestClient(create_app(settings)) as client:
        yield Api(settings, client, tokens)


def with_analytics(settings: Settings) -> None:
    """Occupancy for both cameras in the hour of the newest incidents, a verdict in each store,
    both stores' economics, and the rollups built from all of it."""
    hour = NOW.replace(minute=0)
    with connect(settings.database_dsn) as conn:
        conn.execute(
            """UPDATE stores SET economics = '{"currency": "GBP", "avg_loss_per_incident": 100,
                   "recovery_rate": 0.5, "monthly_cost": 50}'"""
        )
        conn.commit()
        write_occupancy(
            conn,
            [
                MinuteRow(camera_id, zone_id, hour + timedelta(minutes=m), 300, 2, 1.0, 2)
                for camera_id, zone_id in (("cam-1", "z-razors"), ("cam-2", "z-door"))
                for m in range(3)
            ]
            + [
                HeatRow("cam-1", hour, 64, 36, 900, [5, 70], [600.0, 300.0], [400.0, 0.0]),
                HeatRow("cam-2", hour, 64, 36, 900, [9], [50.0], [0.0]),
            ],
        )
        record_review(conn, "l-0", confirmed=True)
        record_review(conn, "b-0", confirmed=True)
        conn.commit()
    run_rollups(settings.database_dsn, progress=lambda _m: None)


def answers(url: str, proc: subprocess.Popen[bytes]) -> bool:
    """Whether `shrinkwatch api` (a child process) serves at `url` yet; it must not have exited."""
    assert proc.poll() is None, "shrinkwatch api exited"
    try:
        return httpx.get(f"{url}/openapi.json", timeout=5).status_code == 200
    except httpx.TransportError:
        return False
