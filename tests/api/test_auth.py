"""Tokens at the door: every way a token can be wrong is the same 401 (with WWW-Authenticate:
Bearer), checked on every request with no cache, so a revocation, an expiry or a disabled
account counts from the next request; a token without a permission gets 403 and changes
nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.api.conftest import Api, bearer, make_token
from warehouse.accounts import disable_user
from warehouse.api_tokens import revoke_token
from warehouse.db import connect
from warehouse.evidence_log import access_log

pytestmark = pytest.mark.services

UNAUTHORISED = {"detail": "missing, invalid, revoked or expired token"}


def assert_unauthorised(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == UNAUTHORISED
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_request_without_a_good_token_is_refused_the_same_way_whatever_is_wrong(api: Api) -> None:
    good = api.tokens["all"]
    token_id = good.split("_")[1]
    wrong_secret = f"swt_{token_id}_{'0' * 64}"
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {good}"},
        {"Authorization": f"Token {good}"},
        bearer("swt_nonsense"),
        bearer(wrong_secret),
        bearer(good + "0"),
        bearer(good.upper()),
        bearer("x" * 10_000),
    ):
        assert_unauthorised(api.client.get("/v1/incidents", headers=headers))
    assert api.client.get("/v1/incidents", headers=bearer(good)).status_code == 200


def test_a_revoked_token_is_refused_from_the_next_request(api: Api) -> None:
    assert api.get("/v1/stores", "leeds").status_code == 200
    with connect(api.settings.database_dsn) as conn:
        assert revoke_token(conn, "leeds", by="tests")
    assert_unauthorised(api.get("/v1/stores", "leeds"))
    assert_unauthorised(api.get("/v1/incidents/l-0", "leeds"))


def test_an_expired_token_is_refused(api: Api) -> None:
    expired = make_token(api.settings, "gone", username="ana", expires_in=timedelta(seconds=-1))
    assert_unauthorised(api.client.get("/v1/stores", headers=bearer(expired)))


def test_a_disabled_accounts_token_is_refused(api: Api) -> None:
    assert api.get("/v1/stores", "leeds").status_code == 200
    with connect(api.settings.database_dsn) as conn:
        disable_user(conn, "mo")
        conn.commit()
    assert_unauthorised(api.get("/v1/stores", "leeds"))


def verdicts(api: Api) -> dict[str, tuple[object, object, object]]:
    with connect(api.settings.database_dsn) as conn:
        rows = conn.execute("SELECT incident_id, user_confirmed, reviewed_by, review_note FROM incidents")
        return {r["incident_id"]: (r["user_confirmed"], r["reviewed_by"], r["review_note"]) for r in rows}


def test_a_read_only_token_cannot_post_a_verdict_and_nothing_is_written(api: Api) -> None:
    before = verdicts(api)
    response = api.post("/v1/incidents/l-0/verdict", "reader", {"verdict": "confirmed", "note": "no"})
    assert response.status_code == 403
    assert response.json() == {"detail": "this token lacks the 'review' permission"}
    assert verdicts(api) == before
    # Refused before anything else is looked at: an incident that does not exist, the same 403.
    missing = api.post("/v1/incidents/nope/verdict", "reader", {"verdict": "confirmed"})
    assert (missing.status_code, missing.json()) == (403, response.json())


def test_a_service_tokens_verdict_is_recorded_by_its_name_and_marks_nothing_seen(api: Api) -> None:
    """The reviewer is `token:<name>`; seen marks are an account's, so none is made for it."""
    before = verdicts(api)
    response = api.post("/v1/incidents/l-0/verdict", "service", {"verdict": "confirmed", "note": "SOC: seen"})
    assert response.status_code == 200, response.text
    body = response.json()
    recorded = (body["review"], body["reviewed_by"], body["review_note"])
    assert recorded == ("confirmed", "token:soc", "SOC: seen")
    after = verdicts(api)
    assert after["l-0"] == (True, "token:soc", "SOC: seen")
    assert {k: v for k, v in after.items() if k != "l-0"} == {k: v for k, v in before.items() if k != "l-0"}
    with connect(api.settings.database_dsn) as conn:
        seen = conn.execute("SELECT username FROM incident_seen WHERE incident_id = 'l-0'").fetchall()
    assert [r["username"] for r in seen if r["username"].startswith("token:")] == []


def test_a_download_needs_the_export_permission_and_a_refusal_is_not_logged(api: Api) -> None:
    response = api.get("/v1/incidents/l-0/evidence/snapshot.jpg", "reader", params={"download": "1"})
    assert response.status_code == 403
    assert response.json() == {"detail": "this token lacks the 'export' permission"}
    assert api.get("/v1/incidents/l-0/evidence/snapshot.jpg", "reader").status_code == 200  # a view
    with connect(api.settings.database_dsn) as conn:
        assert list(access_log(conn)["action"]) == ["view"]
