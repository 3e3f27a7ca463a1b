"""Incidents through the API, read back from what was received and from the warehouse: cursor
pages that hold every incident once, in order; the dashboard export link's filters asking the
same question; one incident with links to the evidence that exists; the evidence served with
its access logged under the token's identity (never unblurred); verdicts recorded as the
Review page records them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from streamlit_app.served import export_path
from tests.api.conftest import CLIP_BYTES, NOW, SNAPSHOT_BYTES, Api
from warehouse.api_tokens import parse_token
from warehouse.db import connect
from warehouse.evidence_log import access_log, record
from warehouse.incidents import incident_detail, incidents_page, mark_evidence_gone
from warehouse.scope import IncidentFilter, Scope

pytestmark = pytest.mark.services

NEWEST_FIRST = ["l-0", "b-0", "l-1", "b-1", "l-2", "l-3", "l-4"]  # l-0 and b-0 started together


def logged(api: Api) -> list[dict[str, Any]]:
    """The evidence access log, oldest first, without the time."""
    with connect(api.settings.database_dsn) as conn:
        rows = access_log(conn).to_dict("records")
    return [{k: v for k, v in row.items() if k != "at"} for row in reversed(rows)]


def test_cursor_pages_hold_every_incident_once_newest_first(api: Api) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        body = api.get("/v1/incidents", "all", params=params).json()
        seen += [row["incident_id"] for row in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["items"]) == 2
    assert seen == NEWEST_FIRST
    assert pages == 4
    # The default page holds them all; the Leeds manager's, Leeds's only.
    assert [r["incident_id"] for r in api.get("/v1/incidents", "all").json()["items"]] == NEWEST_FIRST
    assert [r["incident_id"] for r in api.get("/v1/incidents", "leeds").json()["items"]] == [
        i for i in NEWEST_FIRST if i.startswith("l-")
    ]


def test_a_dashboard_export_links_query_asks_the_api_the_same_question(api: Api) -> None:
    day = NOW.date()  # (Leeds keeps UTC in winter; a day either side for the rest of the year)
    filters = IncidentFilter(
        stores=("store-001", "store-002"),
        cameras=("cam-1",),
        types=("loitering_high_value",),
        levels=("high", "medium"),
        statuses=("closed",),
        review=("unreviewed",),
        first_day=day - timedelta(days=1),
        last_day=day + timedelta(days=1),
        min_score=0.5,
    )
    query = export_path(filters).split("?", 1)[1]
    for name in ("stores", "cameras", "types", "levels", "statuses", "review", "first_day", "last_day"):
        assert f"{name}=" in query  # every filter is in the address
    answer = api.get(f"/v1/incidents?{query}", "all")
    assert answer.status_code == 200, answer.text
    with connect(api.settings.database_dsn) as conn:
        expected, _ = incidents_page(conn, Scope.of("store-001", "store-002"), filters)
    received = [row["incident_id"] for row in answer.json()["items"]]
    assert received == list(expected["incident_id"]) == ["l-0", "l-2", "l-4"]


def test_one_incident_with_its_signals_verdict_and_evidence_links(api: Api) -> None:
    body = api.get("/v1/incidents/l-0", "leeds").json()
    assert body["incident_id"] == "l-0" and body["store_id"] == "store-001" and body["camera_id"] == "cam-1"
    assert body["incident_type"] == "loitering_high_value" and body["risk_level"] == "high"
    assert body["signals"] == [{"name": "dwell_high_value_s", "value": 11.0, "contribution": 0.5}]
    assert body["review"] == "unreviewed" and body["reviewed_by"] is None
    assert body["started_at"] == NOW.isoformat().replace("+00:00", "Z")
    assert (body["store_name"], body["store_timezone"]) == ("Leeds", "Europe/London")
    assert body["evidence"] == [
        {"file": name, "href": f"/v1/incidents/l-0/evidence/{name}", "media_type": kind}
        for name, kind in (("snapshot.jpg", "image/jpeg"), ("clip.mp4", "video/mp4"))
    ]
    assert api.get("/v1/incidents/l-1", "leeds").json()["evidence"] == []  # nothing on disk
    # Retention deleted the clip: no link, and not served, though a file of it is on disk again.
    with connect(api.settings.database_dsn) as conn:
        mark_evidence_gone(conn, "l-0", ["clips"])
        conn.commit()
    assert [e["file"] for e in api.get("/v1/incidents/l-0", "leeds").json()["evidence"]] == ["snapshot.jpg"]
    assert api.get("/v1/incidents/l-0/evidence/clip.mp4", "leeds").status_code == 404


def test_evidence_is_served_and_logged_with_the_tokens_identity(api: Api) -> None:
    snapshot = api.get("/v1/incidents/l-0/evidence/snapshot.jpg", "leeds")
    assert snapshot.status_code == 200 and snapshot.content == SNAPSHOT_BYTES % b"l-0"
    assert snapshot.headers["content-type"] == "image/jpeg"
    assert snapshot.headers["cache-control"] == "private, no-store"
    assert "content-disposition" not in snapshot.headers
    again = api.get("/v1/incidents/l-0/evidence/snapshot.jpg", "leeds")  # the same access: one row
    assert again.status_code == 200
    part = api.get("/v1/incidents/l-0/evidence/clip.mp4", "leeds", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == CLIP_BYTES[:100]
    download = api.get("/v1/incidents/l-0/evidence/snapshot.jpg", "service", params={"download": "1"})
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="l-0-snapshot.jpg"'

    where = {"store_id": "store-001", "camera_id": "cam-1", "incident_id": "l-0", "client": "testclient"}
    where |= {"reason": None}
    ids = {name: parse_token(api.tokens[key]) for key, name in (("leeds", "leeds"), ("service", "soc"))}
    assert logged(api) == [
        {
            "username": user,
            "action": action,
            **where,
            "detail": {"api_token": token, "api_token_id": ids[token], "file": f},
        }
        for user, action, token, f in (
            ("mo", "view", "leeds", "snapshot"),
            ("mo", "view", "leeds", "clip"),
            ("token:soc", "download", "soc", "snapshot"),
        )
    ]


def test_the_unblurred_evidence_never_leaves_through_the_api(api: Api) -> None:
    """Even for an analyst whose reveal of the incident is in force on the dashboard."""
    with connect(api.settings.database_dsn) as conn:
        record(conn, username="ana", action="reveal", incident_id="l-0", reason="a case")
        conn.commit()
    for params in ({}, {"revealed": "1"}, {"revealed": "1", "download": "1"}):
        response = api.get("/v1/incidents/l-0/evidence/snapshot.jpg", "all", params=params)
        assert response.status_code == 200 and response.content == SNAPSHOT_BYTES % b"l-0"
    assert all("revealed" not in row["detail"] for row in logged(api) if row["action"] != "reveal")


def test_a_verdict_is_recorded_as_the_review_page_records_it(api: Api) -> None:
    answer = api.post("/v1/incidents/l-1/verdict", "leeds", {"verdict": "confirmed", "note": " Seen twice. "})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["review"], body["reviewed_by"], body["review_note"]) == ("confirmed", "mo", "Seen twice.")
    with connect(api.settings.database_dsn) as conn:
        row = incident_detail(conn, Scope.of("store-001"), "l-1", viewer="mo")
    assert row is not None
    assert (row["user_confirmed"], row["reviewed_by"], row["review_note"], row["seen"]) == (
        True,
        "mo",
        "Seen twice.",
        True,
    )
    assert api.get("/v1/incidents/l-1", "all").json()["review"] == "confirmed"

    api.post("/v1/incidents/l-1/verdict", "all", {"verdict": "rejected"})  # a second verdict replaces it
    with connect(api.settings.database_dsn) as conn:
        row = incident_detail(conn, Scope.of("store-001"), "l-1")
    assert row is not None
    assert (row["user_confirmed"], row["reviewed_by"], row["review_note"]) == (False, "ana", None)
    listed = {r["incident_id"]: r["review"] for r in api.get("/v1/incidents", "all").json()["items"]}
    assert listed["l-1"] == "rejected" and listed["l-0"] == "unreviewed"
