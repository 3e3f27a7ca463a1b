"""Store data served outside the page's websocket, each checked at the moment it is served.

- `/evidence/{incident}/snapshot.jpg` and `/evidence/{incident}/clip.mp4`: an incident's
  evidence files (the clip with range requests, for the video player);
- `/camera/{camera}/live.jpg`: a camera's newest frame with its zones outlined;
- `/export/incidents.csv?...`: the incident list as CSV, the filters in the address.

Every request is checked by the gate when it arrives (the session its cookie names, asked in
PostgreSQL: streamlit_app.sessions.signed_in_user); the route then asks for that account's
stores now and reads through the query layer with that scope. Nothing is prepared ahead and
kept: a link copied from a page, or handed to someone else, serves whatever the person
holding it may see when they open it, and nothing after a sign-out, a password change, a
change of stores or a disabled account. Something outside the viewer's stores and something
that does not exist get the same 404. Streamlit's own media store (`/media/`) is closed
(streamlit_app.gate_rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from shrinkwatch.paths import evidence_file
from shrinkwatch.site_file import Zone
from streamlit_app.sessions import DB, on_own_connection, signed_in_user
from warehouse.accounts import scope_of
from warehouse.db import Connection
from warehouse.incidents import incident_detail, incidents_csv
from warehouse.scope import IncidentFilter, QueryError, Scope, User
from warehouse.site_tables import cameras_in_scope


@dataclass(frozen=True)
class Viewer:
    """The account a request signs in, and the stores it may see, as of now."""

    user: User
    scope: Scope


PRIVATE = {"Cache-Control": "private, no-store"}  # never kept by a browser or a proxy
_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_EVIDENCE = {"snapshot.jpg": (".jpg", "image/jpeg"), "clip.mp4": (".mp4", "video/mp4")}


def evidence_path(incident_id: str, name: str) -> str:
    """The address of an incident's snapshot (`snapshot.jpg`) or clip (`clip.mp4`)."""
    return f"/evidence/{incident_id}/{name}"


def live_path(camera_id: str, version: float | int = 0) -> str:
    """The address of a camera's newest frame (`version` tells the browser it changed)."""
    return f"/camera/{camera_id}/live.jpg?v={int(version)}"


# -- the incident filters in an export's address -----------------------------------------
_LISTS = ("stores", "cameras", "types", "levels", "statuses", "review")
_DAYS = ("first_day", "last_day")


def export_path(filters: IncidentFilter) -> str:
    """The address of the CSV export of every incident matching `filters`."""
    query: dict[str, str] = {}
    for name in _LISTS:
        values = getattr(filters, name)
        if values:
            query[name] = ",".join(values)
    for name in _DAYS:
        day = getattr(filters, name)
        if day is not None:
            query[name] = day.isoformat()
    if filters.min_score:
        query["min_score"] = f"{filters.min_score:g}"
    return "/export/incidents.csv" + (f"?{urlencode(query)}" if query else "")


def export_filter(query: Mapping[str, str]) -> IncidentFilter:
    """The filters an export's address names; QueryError naming what is wrong."""
    unknown = sorted(set(query) - {*_LISTS, *_DAYS, "min_score"})
    if unknown:
        msg = f"unknown filter(s): {', '.join(unknown)}"
        raise QueryError(msg)
    values: dict[str, Any] = {n: tuple(v for v in query[n].split(",") if v) for n in _LISTS if n in query}
    for name in _DAYS:
        if name in query:
            try:
                values[name] = date.fromisoformat(query[name])
            except ValueError:
                msg = f"{name}: {query[name]!r} is not a date (YYYY-MM-DD)"
                raise QueryError(msg) from None
    if "min_score" in query:
        try:
            values["min_score"] = float(query["min_score"])
        except ValueError:
            msg = f"min_score: {query['min_score']!r} is not a number"
            raise QueryError(msg) from None
    filters = IncidentFilter(**values)
    filters.check()
    return filters


# -- the routes ----------------------------------------------------------------------------
def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404, headers=PRIVATE)


def _signed_out() -> Response:
    return PlainTextResponse("sign in first", status_code=401, headers=PRIVATE)


async def _viewer(request: Request) -> Viewer | None:
    user = signed_in_user(request.scope)
    return None if user is None else Viewer(user, await run_in_threadpool(DB.call, scope_of, user))


async def evidence(request: Request) -> Response:
    """An incident's snapshot or clip, if the incident is in the viewer's stores now."""
    viewer = await _viewer(request)
    if viewer is None:
        return _signed_out()
    incident_id, name = request.path_params["incident_id"], request.path_params["name"]
    if name not in _EVIDENCE or not _ID.match(incident_id):
        return _not_found()
    row = await run_in_threadpool(DB.call, incident_detail, viewer.scope, incident_id)
    suffix, media_type = _EVIDENCE[name]
    path = evidence_file(DB.settings.evidence_dir(), row["snapshot"], suffix) if row else None
    if path is None:
        return _not_found()
    return FileResponse(path, media_type=media_type, headers=PRIVATE)


def _zones_if_in_scope(conn: Connection, viewer: Viewer, camera_id: str) -> list[Zone] | None:
    """The camera's zones, or None when it is not one of the viewer's stores' cameras."""
    from warehouse.site_tables import load_zones

    if camera_id not in set(cameras_in_scope(conn, viewer.scope)["id"]):
        return None
    return load_zones(conn, [camera_id]).get(camera_id, [])


def _drawn_frame(camera_id: str, zones: list[Zone]) -> bytes | None:
    from streamlit_app.data import with_zones

    try:
        jpeg = (DB.settings.live_dir() / f"{camera_id}.jpg").read_bytes()
    except OSError:
        return None
    return with_zones(jpeg, zones)


async def live_frame(request: Request) -> Response:
    """A camera's newest frame with its zones, if the camera is in the viewer's stores now.
    (The frame is decoded and drawn off the shared connection's lock: it guards every
    session check at the door.)"""
    viewer = await _viewer(request)
    if viewer is None:
        return _signed_out()
    camera_id = request.path_params["camera_id"]
    if not _ID.match(camera_id):
        return _not_found()
    zones = await run_in_threadpool(DB.call, _zones_if_in_scope, viewer, camera_id)
    jpeg = await run_in_threadpool(_drawn_frame, camera_id, zones) if zones is not None else None
    if jpeg is None:
        return _not_found()
    return Response(jpeg, media_type="image/jpeg", headers=PRIVATE)


async def export_incidents(request: Request) -> Response:
    """The incidents matching the address's filters, within the viewer's stores now, as CSV."""
    viewer = await _viewer(request)
    if viewer is None:
        return _signed_out()
    try:
        filters = export_filter(request.query_params)
    except QueryError as exc:
        return PlainTextResponse(f"bad export: {exc}", status_code=400, headers=PRIVATE)
    body = await run_in_threadpool(on_own_connection, incidents_csv, viewer.scope, filters)
    name = f"incidents-{datetime.now(UTC):%Y%m%d-%H%M}.csv"
    headers = PRIVATE | {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


ROUTES = [
    Route("/evidence/{incident_id}/{name}", evidence, methods=["GET", "HEAD"]),
    Route("/camera/{camera_id}/live.jpg", live_frame, methods=["GET", "HEAD"]),
    Route("/export/incidents.csv", export_incidents, methods=["GET"]),
]
