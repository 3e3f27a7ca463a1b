"""Store data served outside the page's websocket, each checked at the moment it is served.

- `/evidence/{incident}/snapshot.jpg` and `/evidence/{incident}/clip.mp4`: an incident's
  evidence files (the clip with range requests, for the video player); `?download=1` sends
  the file as an attachment; `?revealed=1` the unblurred file (privacy.files UNBLURRED_*);
- `/camera/{camera}/live.jpg`: a camera's newest frame with its zones outlined;
- `/export/incidents.csv?...`: the incident list as CSV, the filters in the address;
- `/export/evidence-log.csv?...`: the evidence access log as CSV (admins only), the
  Evidence log page's filters in the address.

Every request is checked by the gate when it arrives (the session its cookie names, asked in
PostgreSQL: streamlit_app.sessions.signed_in_user); the route then asks for that account's
stores now and reads through the query layer with that scope. Nothing is prepared ahead and
kept: a link copied from a page, or handed to someone else, serves whatever the person
holding it may see when they open it, and nothing after a sign-out, a password change, a
change of stores or a disabled account. Something outside the viewer's stores and something
that does not exist get the same 404. Streamlit's own media store (`/media/`) is closed
(streamlit_app.gate_rules).

Every evidence file and live frame served is logged in the evidence access log
(warehouse.evidence_log) before it is sent: who (the signed-in account), from where (the
request's address, a trusted proxy's X-Forwarded-For as for sign-in), which incident or
camera, and `detail` {"file": "snapshot" | "clip" | "live"} (and "revealed": true), action
"view", or "download" with `?download=1`. Nothing is logged for a 401 or a 404, nor for a
HEAD. A video player fetches a clip in ranges and the Live page asks for a new frame every
second, so the same person's same access to the same file is one row per ONCE_PER_S (ten
minutes): one watching, one row. The incident list's CSV holds no images and is not
evidence.

Who may have which evidence file is decided in privacy.access, which the API's evidence route
calls too; this module hands it the viewer and the settings. An incident's files are found by
the evidence layout (privacy.files, from shrinkwatch.contracts.snapshot_name(camera,
incident)); the incident's `snapshot` column only says whether it has a snapshot to show
(retention clears it with the file), and a kind whose deletion is marked
(`snapshot_purged_at`, `clip_purged_at`) is never served, even when a file of it is on disk
again (written after its purge, until the next purge sweeps it). The unblurred files are
served only to an analyst or admin whose reveal of that incident is in force now
(warehouse.evidence_log.revealed_until, settings.reveal_minutes), asked when each request is
served; anyone else, or after it has lapsed, gets the same 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from privacy import access as evidence_access
from privacy.access import REVEALERS as REVEALERS
from privacy.access import File as File
from privacy.access import evidence_on_disk as evidence_on_disk
from privacy.access import may_reveal as may_reveal
from privacy.access import valid_id as valid_id
from shrinkwatch import wording
from shrinkwatch.site_file import Zone
from shrinkwatch.spreadsheets import csv_bytes
from streamlit_app.gate_rules import client_address
from streamlit_app.sessions import DB, on_own_connection, signed_in_user
from warehouse.accounts import scope_of
from warehouse.db import Connection
from warehouse.evidence_log import ACTIONS, LOG_COLUMNS, ONCE_PER_S, access_log, record
from warehouse.incidents import incidents_csv
from warehouse.scope import IncidentFilter, QueryError, Scope, User, check_text
from warehouse.site_tables import cameras_in_scope, store_names


@dataclass(frozen=True)
class Viewer:
    """The account a request signs in, and the stores it may see, as of now."""

    user: User
    scope: Scope


PRIVATE = {"Cache-Control": "private, no-store"}  # never kept by a browser or a proxy


def evidence_path(incident_id: str, name: str, *, revealed: bool = False, download: bool = False) -> str:
    """The address of an incident's snapshot (`snapshot.jpg`) or clip (`clip.mp4`): the
    unblurred one with `revealed`, as an attachment with `download`."""
    query = {"revealed": "1"} if revealed else {}
    query |= {"download": "1"} if download else {}
    return f"/evidence/{incident_id}/{name}" + (f"?{urlencode(query)}" if query else "")


def live_path(camera_id: str, version: float | int = 0) -> str:
    """The address of a camera's newest frame (`version` tells the browser it changed)."""
    return f"/camera/{camera_id}/live.jpg?v={int(version)}"


# -- filters in an export's address ---------------------------------------------------
@dataclass(frozen=True)
class _Param:
    """One filter in an export's address: its name there, the filter's field, and its kind
    (a comma-separated list, a day, a moment with its offset, a number or a text)."""

    name: str
    field: str
    kind: Literal["list", "day", "time", "number", "text"]


_PARSE: dict[str, tuple[Callable[[str], Any], str]] = {
    "day": (date.fromisoformat, "is not a date (YYYY-MM-DD)"),
    "time": (datetime.fromisoformat, "is not a time (ISO 8601, with its offset)"),
    "number": (float, "is not a number"),
    "text": (str, ""),
}


def _query_of(filters: object, params: tuple[_Param, ...]) -> str:
    """The address query naming `filters` (empty values left out), with its `?`."""
    query: dict[str, str] = {}
    for param in params:
        value = getattr(filters, param.field)
        if not value:
            continue
        if param.kind == "list":
            query[param.name] = ",".join(value)
        elif param.kind in ("day", "time"):
            query[param.name] = value.isoformat()
        elif param.kind == "number":
            query[param.name] = f"{value:g}"
        else:
            query[param.name] = str(value)
    return f"?{urlencode(query)}" if query else ""


def _values_of(query: Mapping[str, str], params: tuple[_Param, ...]) -> dict[str, Any]:
    """The filter's fields an address names; QueryError naming an unknown filter or a bad value."""
    unknown = sorted(set(query) - {p.name for p in params})
    if unknown:
        msg = f"unknown filter(s): {', '.join(unknown)}"
        raise QueryError(msg)
    values: dict[str, Any] = {}
    for param in params:
        raw = query.get(param.name)
        if raw is None or (param.kind == "text" and not raw):
            continue
        if param.kind == "list":
            values[param.field] = tuple(v for v in raw.split(",") if v)
            continue
        parse, wrong = _PARSE[param.kind]
        try:
            values[param.field] = parse(raw)
        except ValueError:
            msg = f"{param.name}: {raw!r} {wrong}"
            raise QueryError(msg) from None
    return values


# -- the incident filters in an export's address -----------------------------------------
_INCIDENT_PARAMS = (
    *(_Param(n, n, "list") for n in ("stores", "cameras", "types", "levels", "statuses", "review")),
    _Param("first_day", "first_day", "day"),
    _Param("last_day", "last_day", "day"),
    _Param("min_score", "min_score", "number"),
)


def export_path(filters: IncidentFilter) -> str:
    """The address of the CSV export of every incident matching `filters`."""
    return "/export/incidents.csv" + _query_of(filters, _INCIDENT_PARAMS)


def export_filter(query: Mapping[str, str]) -> IncidentFilter:
    """The filters an export's address names; QueryError naming what is wrong."""
    filters = IncidentFilter(**_values_of(query, _INCIDENT_PARAMS))
    filters.check()
    return filters


# -- the evidence log's filters in an export's address ------------------------------------
@dataclass(frozen=True)
class LogFilter:
    """What the Evidence log page shows: rows at or after `since` and before `until`, by
    these users, of these actions, in these stores, about this incident (empty: any)."""

    since: datetime | None = None
    until: datetime | None = None
    usernames: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    store_ids: tuple[str, ...] = ()
    incident_id: str | None = None

    def check(self) -> None:
        """QueryError naming a filter no row could match (an unknown action, a naive time,
        text PostgreSQL cannot be sent)."""
        unknown = sorted(set(self.actions) - set(ACTIONS))
        if unknown:
            msg = f"actions: unknown {', '.join(unknown)} (of {', '.join(ACTIONS)})"
            raise QueryError(msg)
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                msg = f"{name}: {moment.isoformat()} has no time zone"
                raise QueryError(msg)
        check_text("users", *self.usernames)
        check_text("stores", *self.store_ids)
        check_text("incident", self.incident_id)


_LOG_PARAMS = (
    _Param("users", "usernames", "list"),
    _Param("actions", "actions", "list"),
    _Param("stores", "store_ids", "list"),
    _Param("since", "since", "time"),
    _Param("until", "until", "time"),
    _Param("incident", "incident_id", "text"),
)


def log_export_path(filters: LogFilter) -> str:
    """The address of the CSV of the evidence log's rows matching `filters`."""
    return "/export/evidence-log.csv" + _query_of(filters, _LOG_PARAMS)


def log_export_filter(query: Mapping[str, str]) -> LogFilter:
    """The filters an evidence log export's address names; QueryError naming what is wrong."""
    filters = LogFilter(**_values_of(query, _LOG_PARAMS))
    filters.check()
    return filters


LOG_CSV_COLUMNS = ("at_utc", "store_time", *(c for c in LOG_COLUMNS if c != "at"))


LOG_PAGE_ROWS = 10_000  # the page's table; the CSV holds up to LOG_CSV_ROWS
LOG_CSV_ROWS = 100_000


def log_rows(conn: Connection, filters: LogFilter, *, limit: int = LOG_PAGE_ROWS) -> pd.DataFrame:
    """The evidence log's rows matching `filters`, newest first, at most `limit` (LOG_COLUMNS,
    and `store_time`: when, on the clock of the row's store, UTC for a row of no store)."""
    frame = access_log(
        conn,
        since=filters.since,
        until=filters.until,
        usernames=filters.usernames,
        actions=filters.actions,
        store_ids=filters.store_ids,
        incident_id=filters.incident_id,
        limit=limit,
    )
    frame = frame.astype(object).where(frame.notna(), None)  # a missing value is None, never NaN
    zones = {store_id: zone for store_id, (_name, zone) in store_names(conn).items()}
    frame["store_time"] = [
        wording.store_clock(at, zones.get(store_id)).strftime("%Y-%m-%d %H:%M:%S %Z")
        for at, store_id in zip(frame["at"], frame["store_id"], strict=True)
    ]
    return frame


def log_csv(conn: Connection, filters: LogFilter) -> bytes:
    """The evidence log's rows matching `filters` as CSV (LOG_CSV_COLUMNS; no cell runs as a
    formula in a spreadsheet: shrinkwatch.spreadsheets)."""
    cells = (
        row | {"at_utc": row["at"].isoformat(), "detail": json.dumps(row["detail"], sort_keys=True)}
        for row in log_rows(conn, filters, limit=LOG_CSV_ROWS).to_dict("records")
    )
    rows = ([row[c] for c in LOG_CSV_COLUMNS] for row in cells)
    return csv_bytes(LOG_CSV_COLUMNS, rows)


# -- the routes ----------------------------------------------------------------------------
def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404, headers=PRIVATE)


def _signed_out() -> Response:
    return PlainTextResponse("sign in first", status_code=401, headers=PRIVATE)


async def _viewer(request: Request) -> Viewer | None:
    user = signed_in_user(request.scope)
    return None if user is None else Viewer(user, await run_in_threadpool(DB.call, scope_of, user))


def _client(request: Request) -> str:
    """Where the request came from (the peer, or a trusted proxy's X-Forwarded-For)."""
    peer = request.client.host if request.client else "unknown"
    return client_address(peer, request.headers.get("x-forwarded-for"), DB.settings.dashboard_trusted_proxies)


@dataclass(frozen=True)
class Access:
    """One request for an incident's file: which, how, by whom and from where."""

    viewer: Viewer
    incident_id: str
    file: File
    revealed: bool
    download: bool
    client: str
    logged: bool  # a GET (a HEAD sends no file and is not logged)


def checked_evidence(conn: Connection, access: Access) -> Path | None:
    """The file `access` asks for, when the viewer may have it now (privacy.access: the
    incident is in their stores, and for the unblurred file their role may reveal and their
    reveal is in force). The access is logged before the path is returned; None (nothing
    logged) otherwise."""
    request = evidence_access.EvidenceRequest(
        username=access.viewer.user.username,
        user=access.viewer.user,
        scope=access.viewer.scope,
        incident_id=access.incident_id,
        file=access.file,
        revealed=access.revealed,
        download=access.download,
        client=access.client,
        logged=access.logged,
    )
    return evidence_access.checked_evidence(
        conn, request, evidence_dir=DB.settings.evidence_dir(), reveal_minutes=DB.settings.reveal_minutes
    )


async def evidence(request: Request) -> Response:
    """An incident's snapshot or clip, if the incident is in the viewer's stores now (logged)."""
    viewer = await _viewer(request)
    if viewer is None:
        return _signed_out()
    incident_id, name = request.path_params["incident_id"], request.path_params["name"]
    if name not in evidence_access.FILE_NAMES or not valid_id(incident_id):
        return _not_found()
    access = Access(
        viewer,
        incident_id,
        evidence_access.FILE_NAMES[name],
        revealed=request.query_params.get("revealed") == "1",
        download=request.query_params.get("download") == "1",
        client=_client(request),
        logged=request.method == "GET",
    )
    path = await run_in_threadpool(DB.call, checked_evidence, access)
    if path is None:
        return _not_found()
    headers = dict(PRIVATE)
    if access.download:
        unblurred = "-unblurred" if access.revealed else ""
        filename = f"{incident_id}-{access.file}{unblurred}{path.suffix}"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return FileResponse(path, media_type=evidence_access.media_type(path), headers=headers)


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
    """A camera's newest frame with its zones, if the camera is in the viewer's stores now
    (logged). (The frame is decoded and drawn off the shared connection's lock: it guards every
    session check at the door.)"""
    viewer = await _viewer(request)
    if viewer is None:
        return _signed_out()
    camera_id = request.path_params["camera_id"]
    if not valid_id(camera_id):
        return _not_found()
    zones = await run_in_threadpool(DB.call, _zones_if_in_scope, viewer, camera_id)
    jpeg = await run_in_threadpool(_drawn_frame, camera_id, zones) if zones is not None else None
    if jpeg is None:
        return _not_found()
    if request.method == "GET":
        await run_in_threadpool(
            DB.call,
            record,
            username=viewer.user.username,
            action="view",
            camera_id=camera_id,
            client=_client(request),
            detail={"file": "live"},
            once_per_s=ONCE_PER_S,
        )
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


async def export_evidence_log(request: Request) -> Response:
    """The evidence log's rows matching the address's filters, as CSV: for admins only (anyone
    else gets the 404 of something that does not exist)."""
    viewer = await _viewer(request)
    if viewer is None:
        return _signed_out()
    if not viewer.user.is_admin:
        return _not_found()
    try:
        filters = log_export_filter(request.query_params)
    except QueryError as exc:
        return PlainTextResponse(f"bad export: {exc}", status_code=400, headers=PRIVATE)
    body = await run_in_threadpool(on_own_connection, log_csv, filters)
    name = f"evidence-log-{datetime.now(UTC):%Y%m%d-%H%M}.csv"
    headers = PRIVATE | {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


ROUTES = [
    Route("/evidence/{incident_id}/{name}", evidence, methods=["GET", "HEAD"]),
    Route("/camera/{camera_id}/live.jpg", live_frame, methods=["GET", "HEAD"]),
    Route("/export/incidents.csv", export_incidents, methods=["GET"]),
    Route("/export/evidence-log.csv", export_evidence_log, methods=["GET"]),
]
