"""The site as the token sees it: its stores, their cameras and zones, and the cameras' health
(warehouse.site_tables, warehouse.camera_health), each read with the caller's scope.

A store or camera named in the address (`?store=`, `?camera=`) that the token may not see is
the 404 of one that does not exist; without one, the lists hold everything in scope.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, HTTPException, Query

from api.auth import UNAUTHORISED, Db, Reader
from api.models import (
    UNAVAILABLE,
    Camera,
    CameraHealth,
    CameraHealthList,
    CameraList,
    Store,
    StoreList,
    Zone,
    ZoneList,
    problem,
)
from privacy.access import valid_id
from warehouse.camera_health import camera_status
from warehouse.site_tables import cameras_in_scope, load_zones, stores_in_scope

router = APIRouter(prefix="/v1", tags=["site"])
NOT_FOUND = "not found"
# The error responses of the site and analytics routes (the same for both).
ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("No valid token.", UNAUTHORISED),
    403: problem("The token lacks the permission this needs.", "this token lacks the 'review' permission"),
    422: problem(
        "A parameter that makes no sense (named in the message).",
        "levels: unknown value(s) 'hgih'; expected low, medium, high",
    ),
    503: problem(
        "PostgreSQL is not answering, or every database connection of the API is in use (see Retry-After).",
        UNAVAILABLE,
    ),
}
MISSING: dict[int | str, dict[str, Any]] = {
    404: problem("No such store or camera, or not one of the token's stores.", NOT_FOUND)
}


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A query function's rows as dicts, a missing value as None (never NaN or NaT)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def not_found() -> HTTPException:
    """The one 404 of the API: what does not exist and what is outside the token's stores."""
    return HTTPException(404, NOT_FOUND)


@router.get("/stores", response_model=StoreList, responses=ERRORS, summary="The token's stores")
def stores(who: Reader, conn: Db) -> StoreList:
    """Every store the token may see."""
    rows = records(stores_in_scope(conn, who.scope))
    return StoreList(items=[Store(id=r["id"], name=r["name"], timezone=r["timezone"]) for r in rows])


@router.get("/cameras", response_model=CameraList, responses=ERRORS | MISSING, summary="The token's cameras")
def cameras(
    who: Reader,
    conn: Db,
    store: Annotated[str | None, Query(description="Only this store's cameras.", max_length=128)] = None,
) -> CameraList:
    """The cameras of the token's stores (of one of them with `store`)."""
    rows = records(cameras_in_scope(conn, who.scope))
    if store is not None:
        if not valid_id(store) or store not in who.scope.store_ids:
            raise not_found()
        rows = [r for r in rows if r["store_id"] == store]
    return CameraList(items=[Camera(**r) for r in rows])


@router.get("/zones", response_model=ZoneList, responses=ERRORS | MISSING, summary="The cameras' zones")
def zones(
    who: Reader,
    conn: Db,
    camera: Annotated[str | None, Query(description="Only this camera's zones.", max_length=128)] = None,
) -> ZoneList:
    """The zones of the cameras of the token's stores (of one camera with `camera`)."""
    ids = list(cameras_in_scope(conn, who.scope)["id"])
    if camera is not None:
        if not valid_id(camera) or camera not in ids:
            raise not_found()
        ids = [camera]
    found = load_zones(conn, ids) if ids else {}
    return ZoneList(
        items=[
            Zone(camera_id=camera_id, id=z.id, name=z.name, kind=z.kind, polygon=list(z.polygon))
            for camera_id in ids
            for z in found.get(camera_id, [])
        ]
    )


@router.get(
    "/cameras/health", response_model=CameraHealthList, responses=ERRORS, summary="The cameras' health"
)
def cameras_health(who: Reader, conn: Db) -> CameraHealthList:
    """Each camera of the token's stores with its reader's newest report (`unknown` where no
    reader has reported)."""
    rows = records(camera_status(conn, who.scope))
    return CameraHealthList(items=[CameraHealth(**(r | {"status": r["status"] or "unknown"})) for r in rows])
