"""What the rules need from the site configuration, read from PostgreSQL and kept fresh.

Zones by camera, and stores (time zone, opening hours, rule thresholds, the risk weights in
force) by id; re-read every `refresh_s` seconds, so edits and new calibrations apply to a
running flow without a restart.

It belongs to the wiring, not to the rules (flows.behaviour): it builds the rules' values
(`ZoneIndex`, `StoreInfo`, `Thresholds`, `Weights`) from what it reads in PostgreSQL
(`warehouse`) and refreshes them on the wall clock inside a running flow, neither of which the
pure rules may do. Like the flows' input, which parses messages where it reads them, it
converts at the edge: the engine only ever sees its own types.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from flows.behaviour.risk import Weights
from flows.behaviour.stores import StoreInfo
from flows.behaviour.tracks import Thresholds
from flows.behaviour.zones import ZoneArea, ZoneIndex
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import Zone

log = logging.getLogger(__name__)
_NO_ZONES = ZoneIndex()


def zone_index(zones: list[Zone]) -> ZoneIndex:
    """Site-config zones of one camera as geometry."""
    return ZoneIndex(ZoneArea(z.id, z.kind, tuple((float(x), float(y)) for x, y in z.polygon)) for z in zones)


class SiteCatalog:
    """Zones by camera and stores by id, refreshed from PostgreSQL."""

    def __init__(self, dsn: str, defaults: Thresholds, refresh_s: float = 30.0) -> None:
        self.dsn, self.defaults, self.refresh_s = dsn, defaults, refresh_s
        self._zones: dict[str, ZoneIndex] = {}
        self._stores: dict[str, StoreInfo] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read everything now (raises when the database is unreachable)."""
        from warehouse.db import connect
        from warehouse.site_tables import load_stores, load_zones
        from warehouse.weights import latest_weights

        with connect(self.dsn) as conn:
            zones = {cam: zone_index(zs) for cam, zs in load_zones(conn).items()}
            weights = {
                store_id: Weights(w.weights, w.version) for store_id, w in latest_weights(conn).items()
            }
            stores = {
                store.id: StoreInfo(
                    store.id,
                    store.timezone,
                    None if store.hours is None else tuple(sorted(store.hours.items())),
                    replace(self.defaults, **store.thresholds.model_dump(exclude_none=True)),
                    weights.get(store.id, Weights()),
                )
                for store in load_stores(conn)
            }
        with self._lock:
            self._zones, self._stores, self._loaded_at = zones, stores, time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > self.refresh_s:
            try:
                self.load()
            except Exception as exc:  # keep what we have; the flow must not stop
                log.warning("could not refresh the site configuration, keeping the previous: %s", exc)
                self._loaded_at = time.monotonic()

    def zones(self, camera_id: str) -> ZoneIndex:
        """The camera's zones (none for an unknown camera)."""
        self._fresh()
        return self._zones.get(camera_id) or _NO_ZONES

    def store(self, store_id: str) -> StoreInfo:
        """The store's rules (defaults, always open, for an unknown store)."""
        self._fresh()
        return self._stores.get(store_id) or StoreInfo(store_id, thresholds=self.defaults)

    @classmethod
    def for_settings(cls, settings: Settings) -> SiteCatalog:
        """The catalog of the settings' database; the settings' thresholds are every store's
        defaults (a store's own, in the site file, override them)."""
        defaults = Thresholds(
            loiter_s=settings.loiter_threshold_s,
            zone_exit_grace_s=settings.zone_exit_grace_s,
            track_timeout_s=settings.track_timeout_s,
            incident_update_s=settings.incident_update_s,
        )
        return cls(settings.database_dsn, defaults, settings.zones_refresh_s)

    @classmethod
    def fixed(
        cls, zones: dict[str, list[ZoneArea]], stores: dict[str, StoreInfo], defaults: Thresholds
    ) -> SiteCatalog:
        """A catalog that never reads the database (for benchmarks)."""
        catalog = cls("", defaults, refresh_s=float("inf"))
        catalog._zones = {camera: ZoneIndex(areas) for camera, areas in zones.items()}
        catalog._stores, catalog._loaded_at = stores, time.monotonic()
        return catalog
