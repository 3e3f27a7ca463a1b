"""The token's stores are all it sees, on every endpoint: Leeds's store manager's token
asking for anything of Boston gets exactly the 404 of an id nobody ever wrote, and the lists
hold nothing of Boston, while Boston's rows are in the warehouse (a token of every store sees
them). A new endpoint must be added to one of the tables here (the last test checks)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from api.app import endpoints
from tests.api.conftest import NOW, Api, with_analytics
from warehouse.db import connect
from warehouse.evidence_log import access_log

pytestmark = pytest.mark.services

FIRST, LAST = str((NOW - timedelta(days=40)).date()), str((NOW + timedelta(days=2)).date())
DAYS = {"first_day": FIRST, "last_day": LAST}
MONTHS = {"first_month": FIRST, "last_month": LAST}


def at(path: str, **params: str) -> str:
    """The address with its query."""
    return f"{path}?{urlencode(params)}" if params else path


# Route: (what Leeds's manager asks of Boston, the same asked of something that does not exist).
OUTSIDE: dict[str, list[tuple[str, str]]] = {
    "/v1/incidents/{incident_id}": [("/v1/incidents/b-0", "/v1/incidents/x-0")],
    "/v1/incidents/{incident_id}/evidence/{name}": [
        (at(f"/v1/incidents/b-0/evidence/{n}", **q), at(f"/v1/incidents/x-0/evidence/{n}", **q))
        for n in ("snapshot.jpg", "clip.mp4")
        for q in ({}, {"download": "1"})
    ],
    "/v1/cameras": [(at("/v1/cameras", store="store-002"), at("/v1/cameras", store="store-999"))],
    "/v1/zones": [(at("/v1/zones", camera="cam-2"), at("/v1/zones", camera="cam-9"))],
    "/v1/analytics/footfall": [
        (at("/v1/analytics/footfall", store=store, **DAYS), at("/v1/analytics/footfall", store="x", **DAYS))
        for store in ("store-002",)
    ],
    "/v1/analytics/heatmap": [
        (at("/v1/analytics/heatmap", camera=camera, **DAYS), at("/v1/analytics/heatmap", camera="x", **DAYS))
        for camera in ("cam-2",)
    ],
}
POSTED = {"/v1/incidents/{incident_id}/verdict": ("/v1/incidents/b-0/verdict", "/v1/incidents/x-0/verdict")}
# A stream: tests/api/test_events.py checks that another store's changes never arrive.
STREAMED = {"/v1/events"}


def _ids(key: str) -> Any:
    return lambda body: sorted({row[key] for row in body["items"]})


def _total(body: dict[str, Any]) -> int:
    return sum(row["incidents"] for row in body["items"] if row.get("signal", "*") == "*")


LEEDS, BOTH = ["store-001"], ["store-001", "store-002"]
# Route: (its parameters, what of the answer tells the stores' rows apart, that for Leeds
# alone, and for every store).
LISTS: dict[str, tuple[dict[str, str], Any, Any, Any]] = {
    "/v1/stores": ({}, _ids("id"), LEEDS, BOTH),
    "/v1/cameras": ({}, _ids("store_id"), LEEDS, BOTH),
    "/v1/zones": ({}, _ids("camera_id"), ["cam-1"], ["cam-1", "cam-2"]),
    "/v1/cameras/health": ({}, _ids("store_id"), LEEDS, BOTH),
    "/v1/incidents": ({}, _ids("store_id"), LEEDS, BOTH),
    "/v1/analytics/risk-patterns": (DAYS, _total, 5, 7),  # incidents: Leeds has 5, Boston 2
    "/v1/analytics/detection-quality": ({}, _total, 5, 7),
    "/v1/analytics/roi": (MONTHS, _ids("store_id"), LEEDS, BOTH),
}
# Boston named in a list filter: nothing, as for a store that does not exist.
NARROWED = {
    "/v1/incidents": {"stores": "store-002"},
    "/v1/analytics/risk-patterns": DAYS | {"stores": "store-002"},
    "/v1/analytics/detection-quality": {"stores": "store-002"},
    "/v1/analytics/roi": MONTHS | {"stores": "store-002"},
}


def test_anything_of_another_store_is_the_404_of_what_does_not_exist(api: Api) -> None:
    for route, asks in OUTSIDE.items():
        for boston, made_up in asks:
            assert api.get(boston, "all").status_code == 200, boston  # it is there
            for token in ("leeds", "service"):
                theirs, nobodys = api.get(boston, token), api.get(made_up, token)
                assert theirs.status_code == 404, (route, token, theirs.text)
                assert (theirs.status_code, theirs.json(), theirs.headers.get("content-type")) == (
                    nobodys.status_code,
                    nobodys.json(),
                    nobodys.headers.get("content-type"),
                ), route
    with connect(api.settings.database_dsn) as conn:  # only the `all` token's own views are logged
        assert set(access_log(conn)["username"]) == {"ana"}


def test_a_verdict_on_another_stores_incident_is_the_404_of_one_that_does_not_exist(api: Api) -> None:
    for boston, made_up in POSTED.values():
        theirs = api.post(boston, "leeds", {"verdict": "confirmed", "note": "not mine"})
        nobodys = api.post(made_up, "leeds", {"verdict": "confirmed", "note": "not mine"})
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.json() == nobodys.json()
    with connect(api.settings.database_dsn) as conn:
        row = conn.execute("SELECT user_confirmed, reviewed_by FROM incidents WHERE incident_id = 'b-0'")
        assert row.fetchone() == {"user_confirmed": None, "reviewed_by": None}


def test_the_lists_hold_nothing_of_another_store(api: Api) -> None:
    with_analytics(api.settings)
    for route, (params, of, leeds, everyone) in LISTS.items():
        assert of(api.get(route, "all", params=params).json()) == everyone, route
        for token in ("leeds", "service"):
            response = api.get(route, token, params=params)
            assert response.status_code == 200, (route, response.text)
            assert of(response.json()) == leeds, (route, token)
    for route, params in NARROWED.items():
        assert api.get(route, "all", params=params).json()["items"] != [], route
        assert api.get(route, "leeds", params=params).json()["items"] == [], route


def test_every_route_is_in_a_scope_table() -> None:
    assert {path for path, _method in endpoints()} == set(OUTSIDE) | set(LISTS) | set(POSTED) | STREAMED
