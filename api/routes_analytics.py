"""The analytics pages' questions over the API: risk patterns, footfall, a camera's heatmap,
detection quality and return on investment (warehouse.analytics, warehouse.economics), read
from the rollups with the caller's scope.

Days are store-local and inclusive; a reversed range is 422. A store or camera that is the
subject of the question (`store=`, `camera=`) and outside the token's stores is the 404 of one
that does not exist; `stores=`, a comma-separated narrowing, simply finds nothing of a store
it may not see (as the incident list's filter).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth import Db, Reader
from api.models import (
    FootfallList,
    FootfallRow,
    Heatmap,
    QualityList,
    QualityRow,
    RiskPatternList,
    RiskPatternRow,
    RoiList,
    RoiRow,
)
from api.routes_site import ERRORS, MISSING, records
from privacy.access import valid_id
from warehouse.analytics import camera_heatmap, detection_quality, footfall_by_zone, risk_patterns
from warehouse.economics import roi_by_month
from warehouse.scope import QueryError, check_text
from warehouse.site_tables import cameras_in_scope

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
FirstDay = Annotated[date, Query(description="The first store-local day (YYYY-MM-DD).")]
LastDay = Annotated[date, Query(description="The last store-local day, inclusive (YYYY-MM-DD).")]
Stores = Annotated[
    str | None, Query(description="Comma-separated store ids (default: all the token's).", max_length=4096)
]


def _stores(value: str | None) -> tuple[str, ...]:
    """The store ids of a comma-separated list (QueryError for text no id could be)."""
    stores = tuple(v for v in (value or "").split(",") if v)
    check_text("stores", *stores)
    return stores


def _not_found() -> HTTPException:
    return HTTPException(404, "not found")


@router.get(
    "/risk-patterns",
    response_model=RiskPatternList,
    responses=ERRORS,
    summary="Incidents by weekday and hour",
)
def risk_pattern(
    who: Reader, conn: Db, first_day: FirstDay, last_day: LastDay, stores: Stores = None
) -> RiskPatternList:
    """Incidents by store-local weekday and hour over the days, summed over the stores."""
    frame = risk_patterns(conn, who.scope, first_day, last_day, _stores(stores))
    return RiskPatternList(items=[RiskPatternRow(**r) for r in records(frame)])


@router.get(
    "/footfall",
    response_model=FootfallList,
    responses=ERRORS | MISSING,
    summary="Footfall and dwell per zone and day",
)
def footfall(
    who: Reader,
    conn: Db,
    store: Annotated[str, Query(description="The store.", max_length=128)],
    first_day: FirstDay,
    last_day: LastDay,
) -> FootfallList:
    """Footfall and dwell in each camera zone of the store, per store-local day."""
    if not valid_id(store) or store not in who.scope.store_ids:
        raise _not_found()
    frame = footfall_by_zone(conn, who.scope, store, first_day, last_day)
    return FootfallList(items=[FootfallRow(**r) for r in records(frame)])


@router.get("/heatmap", response_model=Heatmap, responses=ERRORS | MISSING, summary="A camera's heatmap")
def heatmap(
    who: Reader,
    conn: Db,
    camera: Annotated[str, Query(description="The camera.", max_length=128)],
    first_day: FirstDay,
    last_day: LastDay,
    from_hour: Annotated[int, Query(ge=0, le=23, description="Only store-local hours from this one ...")] = 0,
    to_hour: Annotated[int, Query(ge=1, le=24, description="... up to (not including) this one.")] = 24,
) -> Heatmap:
    """Where people were in the camera's frame over the days (or some hours of each day; the
    hourly grids are kept for `retention_heatmap_days` only). Empty grids where nothing was seen."""
    if not valid_id(camera) or camera not in set(cameras_in_scope(conn, who.scope)["id"]):
        raise _not_found()
    if from_hour >= to_hour:
        msg = f"hours: from_hour {from_hour} is not before to_hour {to_hour}"
        raise QueryError(msg)
    found = camera_heatmap(conn, who.scope, camera, first_day, last_day, (from_hour, to_hour))
    if found is None:
        return Heatmap(camera_id=camera, days=0, person_s=[], dwell_s=[])
    return Heatmap(camera_id=camera, days=found.days, person_s=found.person_s, dwell_s=found.dwell_s)


@router.get(
    "/detection-quality",
    response_model=QualityList,
    responses=ERRORS,
    summary="How often analysts confirm each signal",
)
def quality(who: Reader, conn: Db, stores: Stores = None) -> QualityList:
    """Per signal (`*`: all incidents), over all time: incidents, verdicts, the confirmation
    rate and the median hours to a verdict."""
    frame = detection_quality(conn, who.scope, _stores(stores))
    return QualityList(items=[QualityRow(**r) for r in records(frame)])


@router.get("/roi", response_model=RoiList, responses=ERRORS, summary="Return on investment by month")
def roi(
    who: Reader,
    conn: Db,
    first_month: Annotated[date, Query(description="A day of the first month (YYYY-MM-DD).")],
    last_month: Annotated[date, Query(description="A day of the last month (YYYY-MM-DD).")],
    stores: Stores = None,
) -> RoiList:
    """Each store's confirmed incidents priced by its economics, month by month."""
    frame = roi_by_month(conn, who.scope, first_month, last_month, _stores(stores))
    return RoiList(items=[RoiRow(**r) for r in records(frame)])
