"""The zones of every camera, read from PostgreSQL and refreshed while a flow runs."""

from __future__ import annotations

import logging
import threading
import time

from flows.zones import ZoneArea
from shrinkwatch.sites import Zone

log = logging.getLogger(__name__)


def to_areas(zones: list[Zone]) -> list[ZoneArea]:
    """Site-config zones as geometry."""
    return [ZoneArea(z.id, z.kind, tuple((float(x), float(y)) for x, y in z.polygon)) for z in zones]


class ZoneCatalog:
    """Zones by camera id; re-read every `refresh_s` seconds so edits apply without a restart."""

    def __init__(self, dsn: str, refresh_s: float = 30.0) -> None:
        self.dsn, self.refresh_s = dsn, refresh_s
        self._zones: dict[str, list[ZoneArea]] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read all zones now (raises when the database is unreachable)."""
        from warehouse.db import connect
        from warehouse.sites import load_zones

        with connect(self.dsn) as conn:
            zones = {cam: to_areas(zs) for cam, zs in load_zones(conn).items()}
        with self._lock:
            self._zones, self._loaded_at = zones, time.monotonic()

    def zones(self, camera_id: str) -> list[ZoneArea]:
        """The camera's zones (empty for an unknown camera)."""
        if time.monotonic() - self._loaded_at > self.refresh_s:
            try:
                self.load()
            except Exception as exc:  # keep the zones we have; the flow must not stop
                log.warning("could not refresh zones, keeping the previous ones: %s", exc)
                self._loaded_at = time.monotonic()
        return self._zones.get(camera_id, [])

    @classmethod
    def fixed(cls, zones: dict[str, list[ZoneArea]]) -> ZoneCatalog:
        """A catalog that never reads the database (for tests and benchmarks)."""
        catalog = cls("", refresh_s=float("inf"))
        catalog._zones, catalog._loaded_at = zones, time.monotonic()
        return catalog
