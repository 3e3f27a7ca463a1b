"""Hostile input gets a 4xx that says what is wrong, never a 500 or a traceback: ids no
incident could have (a NUL, 10 kB, a path trick), filter values that make no sense, bounds
broken, cursors made up, verdict bodies of the wrong shape; and the incident list's
parameters fuzzed (hypothesis) answer 200 within the token's stores or 422 with a message."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz
from hypothesis import strategies as st

from tests.api.conftest import Api
from warehouse.db import connect

pytestmark = pytest.mark.services

BIG = "x" * 10_000
ODD_IDS = ["a%00b", "%00", BIG, "l-0%0A", "..%2F..%2Fetc%2Fpasswd", "l-0%20", "%F0%9F%98%80", "'%20OR%201=1"]

HEATMAP = "/v1/analytics/heatmap?camera=cam-1&first_day=2026-03-01&last_day=2026-03-08"
# (address, the start of the message it gets with 422)
BAD_LISTS = [
    ("/v1/incidents?levels=hgih", "levels: unknown value(s) 'hgih'"),
    ("/v1/incidents?types=shoplifting", "types: unknown value(s) 'shoplifting'"),
    ("/v1/incidents?statuses=maybe", "statuses: unknown value(s) 'maybe'"),
    ("/v1/incidents?review=perhaps", "review: unknown value(s) 'perhaps'"),
    ("/v1/incidents?stores=a%00b", "stores: 'a\\x00b' must not contain a NUL character"),
    ("/v1/incidents?cameras=%00", "cameras: '\\x00' must not contain a NUL character"),
    ("/v1/incidents?first_day=yesterday", "first_day: "),
    ("/v1/incidents?first_day=2026-03-09&last_day=2026-03-08", "date range: 2026-03-09 is after 2026-03-08"),
    ("/v1/incidents?min_score=2", "min_score: "),
    ("/v1/incidents?min_score=nan", "min_score: "),
    ("/v1/incidents?min_score=-0.5", "min_score: "),
    ("/v1/incidents?limit=-1", "limit: "),
    ("/v1/incidents?limit=0", "limit: "),
    ("/v1/incidents?limit=501", "limit: "),
    ("/v1/incidents?limit=ten", "limit: "),
    ("/v1/incidents?limit=99999999999999999999999", "limit: "),
    ("/v1/incidents?cursor=garbage", "cursor: not a cursor this API gave"),
    ("/v1/incidents?cursor=WyJ4IiwieSJd", "cursor: not a cursor this API gave"),  # ["x","y"]
    (f"/v1/incidents?cursor={BIG}", "cursor: "),
    ("/v1/incidents?level=high", "unknown parameter(s): level"),
    ("/v1/analytics/risk-patterns?first_day=2026-03-01", "last_day: "),
    ("/v1/analytics/risk-patterns?first_day=2026-03-09&last_day=2026-03-08", "date range: "),
    ("/v1/analytics/risk-patterns?first_day=2026-03-01&last_day=2026-03-08&stores=%00", "stores: "),
    ("/v1/analytics/roi?first_month=2026-03-01&last_month=2026-01-01&stores=a", "date range: "),
    ("/v1/analytics/roi?first_month=2026-03-01&last_month=2026-04-01&stores=a%00", "stores: "),
    ("/v1/analytics/detection-quality?stores=%00", "stores: "),
    (f"{HEATMAP}&from_hour=9&to_hour=9", "hours: from_hour 9 is not before to_hour 9"),
    (f"{HEATMAP}&to_hour=25", "to_hour: "),
    ("/v1/analytics/footfall?store=store-001&first_day=2026-13-01&last_day=2026-03-02", "first_day: "),
]
BAD_VERDICTS = [
    ({"verdict": "maybe"}, "verdict: "),
    ({"verdict": "confirmed", "note": "a\x00b"}, "note: "),
    ({"verdict": "confirmed", "note": "n" * 2001}, "note: "),
    ({"verdict": "confirmed", "note": 7}, "note: "),
    ({"verdict": "confirmed", "by": "someone else"}, "by: "),
    ({}, "verdict: "),
    ([], "request: "),
    ("confirmed", "request: "),
]


def assert_problem(response: httpx.Response, status: int, starts: str = "") -> None:
    """A JSON problem of this status whose message starts so (`not found` in any case: the
    router's own 404 for an address no route has says `Not Found`)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    detail = body["detail"].lower() if starts == "not found" else body["detail"]
    assert detail.startswith(starts), body


def test_an_id_no_incident_could_have_is_not_found(api: Api) -> None:
    for odd in ODD_IDS:
        for path in (f"/v1/incidents/{odd}", f"/v1/incidents/{odd}/evidence/snapshot.jpg"):
            assert_problem(api.get(path, "all"), 404, "not found")
        posted = api.client.post(
            f"/v1/incidents/{odd}/verdict",
            headers={"Authorization": f"Bearer {api.tokens['all']}"},
            json={"verdict": "confirmed"},
        )
        assert_problem(posted, 404, "not found")
    assert_problem(api.get("/v1/incidents/l-0/evidence/snapshot.unblurred.jpg", "all"), 422, "name: ")
    assert_problem(api.get("/v1/incidents/l-0/evidence/..%2F..%2Fsecret", "all"), 404)
    for address in ("/v1/cameras?store=%00", f"/v1/cameras?store={BIG[:128]}", "/v1/zones?camera=a%0A"):
        assert_problem(api.get(address, "all"), 404, "not found")


def test_a_parameter_that_makes_no_sense_is_422_naming_it(api: Api) -> None:
    for address, message in BAD_LISTS:  # (one warehouse for them all: a loop, not parametrize)
        response = api.get(address, "all")
        assert response.status_code == 422, (address, response.text)
        assert_problem(response, 422, message)


def test_a_verdict_of_the_wrong_shape_is_422_and_writes_nothing(api: Api) -> None:
    for body, message in BAD_VERDICTS:
        response = api.client.post(
            "/v1/incidents/l-0/verdict", headers={"Authorization": f"Bearer {api.tokens['all']}"}, json=body
        )
        assert_problem(response, 422, message)
    not_json = api.client.post(
        "/v1/incidents/l-0/verdict",
        headers={"Authorization": f"Bearer {api.tokens['all']}", "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert_problem(not_json, 422)
    with connect(api.settings.database_dsn) as conn:
        row = conn.execute("SELECT user_confirmed FROM incidents WHERE incident_id = 'l-0'").fetchone()
    assert row == {"user_confirmed": None}


NAMES = st.sampled_from(
    ["stores", "cameras", "types", "levels", "statuses", "review", "first_day", "last_day", "min_score"]
    + ["cursor", "limit", "x", ""]
)
VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["store-001", "store-002", "cam-2", "high", "closed", "2026-03-08", "0.5", "-1", "1e309", "nan", ","]
        + ["\x00", "' OR 1=1 --", "%s", "%(scope)s", BIG]
    ),
)


@fuzz(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=80,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(query=st.lists(st.tuples(NAMES, VALUES), max_size=4))
def test_any_list_query_is_answered_within_the_scope_or_refused_with_a_message(
    api: Api, query: list[tuple[str, str]]
) -> None:
    response = api.get("/v1/incidents", "leeds", params=query)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert {row["store_id"] for row in response.json()["items"]} <= {"store-001"}
    else:
        assert_problem(response, 422)
