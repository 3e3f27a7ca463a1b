"""The site (owner of `stores`, `cameras` and `zones`): apply a validated site configuration
atomically, read it back, and the stores and cameras a caller may see.

The site file is the one way stores, cameras and zones are written, so an admin's change on
the dashboard (a camera, a store's ROI assumptions) is applied through here too. A site
file's alert recipients are written in the same transaction through
`warehouse.alert_recipients`, which owns them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg.types.json import Jsonb

from shrinkwatch.recipients import Recipient, environment_problems
from shrinkwatch.site_file import (
    Camera,
    Economics,
    SiteConfig,
    SiteConfigError,
    SiteProblem,
    Store,
    Zone,
    recipient_site_problems,
)
from warehouse.alert_recipients import save_recipient
from warehouse.db import Connection
from warehouse.scope import Scope

if TYPE_CHECKING:  # pandas only for the dashboard's two readers: the detector and flows never load it
    import pandas as pd


@dataclass(frozen=True)
class ApplyResult:
    """What `apply_site_config` wrote."""

    stores: int
    cameras: int
    zones: int
    zones_removed: int
    recipients: int = 0


def _check_references(conn: Connection, config: SiteConfig, environ: Mapping[str, str]) -> list[Recipient]:
    """Every store a camera or a recipient names exists (in this file or the database), and
    every ${VAR} of a recipient's secrets is set to a value that works; the recipients, their
    secrets still references (they are read again when a message is sent, never stored)."""
    in_file = {s.id for s in config.stores}
    entries = config.alerts.recipients
    wanted = ({c.store_id for c in config.cameras} | {s for r in entries for s in r.stores}) - in_file
    known = set()
    if wanted:
        rows = conn.execute("SELECT id FROM stores WHERE id = ANY(%s)", (sorted(wanted),))
        known = {r["id"] for r in rows}
    problems = [
        SiteProblem(f"cameras[{i}].store_id", f"no store {cam.store_id!r} in this file or the database")
        for i, cam in enumerate(config.cameras)
        if cam.store_id not in in_file and cam.store_id not in known
    ]
    recipients = []
    for i, entry in enumerate(entries):
        problems += [
            SiteProblem(
                f"alerts.recipients[{i}].stores[{j}]", f"no store {store!r} in this file or the database"
            )
            for j, store in enumerate(entry.stores)
            if store not in in_file and store not in known
        ]
        recipient = entry.to_recipient()
        problems += recipient_site_problems(recipient, i, environment_problems(recipient, environ))
        recipients.append(recipient)
    if problems:
        source = "site configuration"
        raise SiteConfigError(source, problems)
    return recipients


def apply_site_config(
    conn: Connection,
    config: SiteConfig,
    environ: Mapping[str, str] | None = None,
    *,
    new_cameras: bool = False,
) -> ApplyResult:
    """Insert or update stores, cameras and alert recipients by id; each camera's zones become
    those in the file. A recipient's `${VAR}` secrets must be set in `environ` (default: this
    process's environment) to values that work; what is stored is the reference.

    With `new_cameras`, the cameras are added, never replaced: one whose id exists (in any
    store) is a problem and nothing changes.

    Runs in one transaction: on any error nothing changes.
    """
    removed = 0
    with conn.transaction():
        recipients = _check_references(conn, config, os.environ if environ is None else environ)
        for store in config.stores:
            conn.execute(
                """INSERT INTO stores (id, name, city, timezone, hours, subscription_active, economics,
                                     thresholds, privacy)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET
                     name = EXCLUDED.name, city = EXCLUDED.city, timezone = EXCLUDED.timezone,
                     hours = EXCLUDED.hours, subscription_active = EXCLUDED.subscription_active,
                     economics = EXCLUDED.economics, thresholds = EXCLUDED.thresholds,
                     privacy = EXCLUDED.privacy, updated_at = now()""",
                (
                    store.id,
                    store.name,
                    store.city,
                    store.timezone,
                    None if store.hours is None else Jsonb(store.hours),
                    store.subscription_active,
                    Jsonb(store.economics.model_dump(exclude_none=True)),
                    Jsonb(store.thresholds.model_dump(exclude_none=True)),
                    Jsonb(store.privacy.model_dump()),
                ),
            )
        for i, cam in enumerate(config.cameras):
            # One statement decides "new or taken", so two admins adding one id cannot both win.
            written = conn.execute(
                """INSERT INTO cameras (id, store_id, name, location, stream_url, fps, motion_gating)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET
                     store_id = EXCLUDED.store_id, name = EXCLUDED.name,
                     location = EXCLUDED.location, stream_url = EXCLUDED.stream_url,
                     fps = EXCLUDED.fps, motion_gating = EXCLUDED.motion_gating, updated_at = now()
                   WHERE %s
                   RETURNING id""",
                (cam.id, cam.store_id, cam.name, cam.location, cam.stream_url, cam.fps, cam.motion_gating)
                + (not new_cameras,),
            ).fetchone()
            if written is None:  # the same words whoever holds the id: nothing about that camera
                source = "site configuration"
                taken = SiteProblem(f"cameras[{i}].id", f"{cam.id!r} is taken: choose another id")
                raise SiteConfigError(source, [taken])
            cur = conn.execute(
                "DELETE FROM zones WHERE camera_id = %s AND NOT (id = ANY(%s))",
                (cam.id, [z.id for z in cam.zones]),
            )
            removed += cur.rowcount
            for zone in cam.zones:
                conn.execute(
                    """INSERT INTO zones (camera_id, id, name, kind, polygon)
                       VALUES (%s, %s, %s, %s, %s)
                       ON CONFLICT (camera_id, id) DO UPDATE SET
                         name = EXCLUDED.name, kind = EXCLUDED.kind,
                         polygon = EXCLUDED.polygon, updated_at = now()""",
                    (cam.id, zone.id, zone.name, zone.kind, Jsonb([list(p) for p in zone.polygon])),
                )
        for recipient in recipients:
            save_recipient(conn, recipient)
    return ApplyResult(
        stores=len(config.stores),
        cameras=len(config.cameras),
        zones=sum(len(c.zones) for c in config.cameras),
        zones_removed=removed,
        recipients=len(recipients),
    )


def load_cameras(conn: Connection, camera_ids: list[str] | None = None) -> list[Camera]:
    """Enabled cameras with their zones, optionally only those named."""
    rows = conn.execute(
        """SELECT id, store_id, name, location, stream_url, fps, motion_gating FROM cameras
           WHERE enabled AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s)) ORDER BY id""",
        {"ids": camera_ids},
    ).fetchall()
    zones = load_zones(conn, [r["id"] for r in rows])
    return [Camera(**row, zones=zones.get(row["id"], [])) for row in rows]


def load_stores(conn: Connection) -> list[Store]:
    """Every store of the site configuration."""
    rows = conn.execute(
        """SELECT id, name, city, timezone, hours, subscription_active, economics, thresholds, privacy
           FROM stores ORDER BY id"""
    ).fetchall()
    return [Store(**row) for row in rows]


def load_zones(conn: Connection, camera_ids: list[str] | None = None) -> dict[str, list[Zone]]:
    """Zones by camera id."""
    rows = conn.execute(
        """SELECT camera_id, id, name, kind, polygon FROM zones
           WHERE (%(ids)s::text[] IS NULL OR camera_id = ANY(%(ids)s)) ORDER BY camera_id, id""",
        {"ids": camera_ids},
    )
    out: dict[str, list[Zone]] = {}
    for row in rows:
        camera_id = row.pop("camera_id")
        out.setdefault(camera_id, []).append(Zone(**row))
    return out


def set_store_economics(conn: Connection, scope: Scope, store_id: str, economics: Economics) -> bool:
    """Replace a store's ROI assumptions (checked already: `warehouse.economics`); False when
    the store is not in scope."""
    with conn.transaction():
        done = conn.execute(
            """UPDATE stores SET economics = %s, updated_at = now()
               WHERE id = %s AND id = ANY(%s)""",
            (Jsonb(economics.model_dump(exclude_none=True)), store_id, sorted(scope.store_ids)),
        ).rowcount
    return bool(done)


def stores_in_scope(conn: Connection, scope: Scope) -> pd.DataFrame:
    """The stores the caller may see. Columns: id, name, timezone, economics."""
    import pandas as pd

    rows = conn.execute(
        "SELECT id, name, timezone, economics FROM stores WHERE id = ANY(%s) ORDER BY id",
        (sorted(scope.store_ids),),
    ).fetchall()
    return pd.DataFrame(rows, columns=["id", "name", "timezone", "economics"])


def cameras_in_scope(conn: Connection, scope: Scope) -> pd.DataFrame:
    """The cameras of the stores the caller may see. Columns: id, store_id, name, location."""
    import pandas as pd

    rows = conn.execute(
        "SELECT id, store_id, name, location FROM cameras WHERE store_id = ANY(%s) ORDER BY store_id, id",
        (sorted(scope.store_ids),),
    ).fetchall()
    return pd.DataFrame(rows, columns=["id", "store_id", "name", "location"])


def store_names(conn: Connection, ids: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
    """(name, time zone) of every store, or of those with these ids, by id: what an alert or
    a digest says of a store."""
    wanted = None if ids is None else list(ids)
    rows = conn.execute(
        "SELECT id, name, timezone FROM stores WHERE %s::text[] IS NULL OR id = ANY(%s)", (wanted, wanted)
    )
    return {r["id"]: (r["name"], r["timezone"]) for r in rows}
