"""Incidents: the filtered list in cursor pages, one incident with its evidence links, its
evidence files, and the analyst's verdict. Every read goes through the query layer
(warehouse.incidents) with the caller's scope, so an incident of another store is the 404 of
one that does not exist, in every route.

- The list's filters have the names, and the forms, of the dashboard's CSV export address
  (streamlit_app.served's incident parameters): `stores`, `cameras`, `types`, `levels`,
  `statuses` and `review` as comma-separated lists, `first_day` and `last_day` as store-local
  days, `min_score`; so a dashboard export link's query string asks the API the same question.
  A parameter it does not know is refused (422), as a value that makes no sense is
  (warehouse.scope.QueryError's message, which names the filter).
- Pages are keyset pages, newest first (warehouse.incidents.incidents_page): `limit` 1..500
  (50), and `next_cursor`, opaque, to pass back as `cursor` with the same filters.
- Evidence is served through privacy.access, the dashboard's own check and access log: the
  log names the token's account, or `token:<name>` for a service token, with the token's
  name in the row's detail. Only the files as stored (heads blurred where the store says so):
  the unblurred ones never leave through the API. An attachment (`?download=1`) needs the
  `export` permission.
- A verdict (`review` permission) is recorded by warehouse.incidents.record_verdict, as the
  Review page records it, with the token's account as the reviewer, or `token:<name>` for a
  service token (which marks nothing seen: seen marks are an account's).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse

from api.auth import Db, Reader, Reviewer, client_of, identity, settings_of
from api.models import (
    EvidenceLink,
    EvidenceName,
    Incident,
    IncidentDetail,
    IncidentPage,
    VerdictIn,
    problem,
)
from api.routes_site import ERRORS, NOT_FOUND, not_found, records
from privacy.access import (
    FILE_NAMES,
    EvidenceRequest,
    checked_evidence,
    evidence_on_disk,
    media_type,
    valid_id,
)
from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.settings import Settings
from warehouse.incidents import incident_detail, incidents_page, record_verdict
from warehouse.scope import REVIEW_STATES, RISK_LEVELS, STATUSES, Cursor, IncidentFilter, QueryError

router = APIRouter(prefix="/v1", tags=["incidents"])
PRIVATE = {"Cache-Control": "private, no-store"}  # evidence is never kept by a proxy
LIMIT_MAX = 500
_CURSOR_MAX = 512

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: problem("No such incident, or not one of the token's stores.", NOT_FOUND)
}
# FastAPI's own answer to a body it cannot decode at all (not UTF-8), before any model reads it.
_UNREADABLE: dict[int | str, dict[str, Any]] = {
    400: problem(
        "A body that is not UTF-8 text (FastAPI cannot parse it).", "There was an error parsing the body"
    )
}
_IncidentId = Annotated[str, Path(description="The incident's id.", examples=["9f1c2e7a0b"])]


# -- the list's filters, named as in the dashboard's export address ------------------------------
_LISTS: dict[str, tuple[str, ...]] = {"stores": (), "cameras": (), "types": INCIDENT_TYPES}
_LISTS |= {"levels": RISK_LEVELS, "statuses": STATUSES, "review": REVIEW_STATES}
LIST_PARAMETERS = (*_LISTS, "first_day", "last_day", "min_score", "cursor", "limit")


def _listed(name: str) -> Any:
    allowed = _LISTS[name]
    choices = f" of {', '.join(allowed)}" if allowed else ""
    return Query(description=f"Comma-separated{choices}.", max_length=4096)


def incident_filter(
    request: Request,
    stores: Annotated[str | None, _listed("stores")] = None,
    cameras: Annotated[str | None, _listed("cameras")] = None,
    types: Annotated[str | None, _listed("types")] = None,
    levels: Annotated[str | None, _listed("levels")] = None,
    statuses: Annotated[str | None, _listed("statuses")] = None,
    review: Annotated[str | None, _listed("review")] = None,
    first_day: Annotated[date | None, Query(description="Store-local, inclusive (YYYY-MM-DD).")] = None,
    last_day: Annotated[date | None, Query(description="Store-local, inclusive (YYYY-MM-DD).")] = None,
    min_score: Annotated[float, Query(ge=0.0, le=1.0, description="Risk score at least this.")] = 0.0,
) -> IncidentFilter:
    """The filters the address names (a parameter it does not know: 422)."""
    unknown = sorted(set(request.query_params) - set(LIST_PARAMETERS))
    if unknown:
        named = ", ".join(n if 0 < len(n) <= 40 and n.isprintable() else repr(n[:40]) for n in unknown[:5])
        msg = f"unknown parameter(s): {named} (known: {', '.join(LIST_PARAMETERS)})"
        raise QueryError(msg)

    def split(value: str | None) -> tuple[str, ...]:
        return tuple(v for v in (value or "").split(",") if v)

    filters = IncidentFilter(
        stores=split(stores),
        cameras=split(cameras),
        types=split(types),
        levels=split(levels),
        statuses=split(statuses),
        review=split(review),
        first_day=first_day,
        last_day=last_day,
        min_score=min_score,
    )
    filters.check()
    return filters


# -- cursors ---------------------------------------------------------------------------------------
def encode_cursor(cursor: Cursor) -> str:
    """The opaque text of a page's end (what `next_cursor` says)."""
    raw = json.dumps([cursor.started_at.isoformat(), cursor.incident_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The page's end a cursor names; QueryError when it is not one `encode_cursor` could make."""
    try:
        if len(text) > _CURSOR_MAX:
            raise ValueError
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        started_at, incident_id = json.loads(raw)
        moment = datetime.fromisoformat(started_at)
        if moment.tzinfo is None or not isinstance(incident_id, str) or not valid_id(incident_id):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):  # (JSON and Unicode errors are ValueErrors)
        msg = "cursor: not a cursor this API gave (pass next_cursor back as it came)"
        raise QueryError(msg) from None
    return Cursor(moment, incident_id)


# -- rows to answers -------------------------------------------------------------------------------
def incident_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """An incident row's fields as the API names them (the verdict as `review`)."""
    confirmed = row["user_confirmed"]
    review = "unreviewed" if confirmed is None else "confirmed" if confirmed else "rejected"
    fields = Incident.model_fields.keys() - {"review"}
    return {name: row[name] for name in fields} | {"review": review}


def evidence_links(settings: Settings, row: Mapping[str, Any]) -> list[EvidenceLink]:
    """The incident's files that can be fetched now (on disk, not purged), blurred as stored."""
    links = []
    for name, file in FILE_NAMES.items():
        path = evidence_on_disk(settings.evidence_dir(), row, file)
        if path is not None:
            href = f"/v1/incidents/{row['incident_id']}/evidence/{name}"
            links.append(EvidenceLink(file=cast(EvidenceName, name), href=href, media_type=media_type(path)))
    return links


def detail_of(settings: Settings, row: Mapping[str, Any]) -> IncidentDetail:
    return IncidentDetail(
        **incident_of(row),
        weights_version=row["weights_version"],
        store_name=row["store_name"],
        store_timezone=row["store_timezone"],
        evidence=evidence_links(settings, row),
    )


# -- the routes ------------------------------------------------------------------------------------
@router.get("/incidents", response_model=IncidentPage, responses=ERRORS, summary="Incidents, newest first")
def incidents(
    who: Reader,
    conn: Db,
    filters: Annotated[IncidentFilter, Depends(incident_filter)],
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the page before (the same filters).", max_length=512)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX, description="Incidents per page.")] = 50,
) -> IncidentPage:
    """The incidents of the token's stores that match the filters, newest first, a page at a
    time. The filters are those of the dashboard's incident list (and of its CSV export's
    address)."""
    after = decode_cursor(cursor) if cursor is not None else None
    frame, following = incidents_page(conn, who.scope, filters, after=after, page_size=limit)
    return IncidentPage(
        items=[Incident(**incident_of(row)) for row in records(frame)],
        next_cursor=encode_cursor(following) if following is not None else None,
    )


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    responses=ERRORS | _NOT_FOUND,
    summary="One incident",
)
def incident(incident_id: _IncidentId, who: Reader, conn: Db, request: Request) -> IncidentDetail:
    """The incident with its signals, its verdict and links to its evidence files."""
    row = incident_detail(conn, who.scope, incident_id) if valid_id(incident_id) else None
    if row is None:
        raise not_found()
    return detail_of(settings_of(request), row)


@router.get(
    "/incidents/{incident_id}/evidence/{name}",
    response_class=FileResponse,
    responses=ERRORS
    | _NOT_FOUND
    | {
        200: {
            "description": "The file as stored (heads blurred where the store says so).",
            "content": {"image/jpeg": {}, "video/mp4": {}, "video/x-msvideo": {}},
        }
    },
    summary="An incident's evidence file",
)
def evidence(
    incident_id: _IncidentId,
    name: Annotated[EvidenceName, Path(description="Which file.")],
    who: Reader,
    conn: Db,
    request: Request,
    download: Annotated[bool, Query(description="As an attachment (needs the `export` permission).")] = False,
) -> FileResponse:
    """The incident's snapshot or clip, logged in the evidence access log before it is sent
    (clips answer range requests). Never the unblurred file."""
    if download and not who.may("export"):
        raise HTTPException(403, "this token lacks the 'export' permission")
    settings = settings_of(request)
    asked = EvidenceRequest(
        username=identity(who),
        user=who.user,
        scope=who.scope,
        incident_id=incident_id,
        file=FILE_NAMES[name],
        download=download,
        client=client_of(request),
        # The id too: a name is unique only among live tokens, and may be given again.
        detail={"api_token": who.token.name, "api_token_id": who.token.token_id},
    )
    path = checked_evidence(
        conn, asked, evidence_dir=settings.evidence_dir(), reveal_minutes=settings.reveal_minutes
    )
    if path is None:
        raise not_found()
    headers = dict(PRIVATE)
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{incident_id}-{asked.file}{path.suffix}"'
    return FileResponse(path, media_type=media_type(path), headers=headers)


@router.post(
    "/incidents/{incident_id}/verdict",
    response_model=IncidentDetail,
    responses=ERRORS | _NOT_FOUND | _UNREADABLE,
    summary="Confirm or reject an incident",
)
def verdict(
    incident_id: _IncidentId, body: VerdictIn, who: Reviewer, conn: Db, request: Request
) -> IncidentDetail:
    """Record the verdict and its note (the calibration learns from it), replacing any
    before; the reviewer recorded is the token's account, or `token:<name>`. Answers the
    incident as it now is."""
    if not valid_id(incident_id) or not record_verdict(
        conn,
        who.scope,
        incident_id,
        confirmed=body.verdict == "confirmed",
        reviewer=identity(who),
        note=body.note,
    ):
        raise not_found()
    row = incident_detail(conn, who.scope, incident_id)
    if row is None:  # gone between the two statements (the store left the scope)
        raise not_found()
    return detail_of(settings_of(request), row)
