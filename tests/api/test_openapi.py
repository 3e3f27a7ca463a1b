"""The OpenAPI schema is served without a token and describes the API precisely: every route,
each behind the bearer token scheme, with typed answers, enums for the closed sets, and the
one problem shape for its errors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app, endpoints
from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.settings import load_settings


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(load_settings(None))  # nothing is connected until a request needs it


def schema(app: FastAPI) -> dict[str, Any]:
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_route_is_in_the_schema_behind_the_token_scheme(app: FastAPI) -> None:
    body = schema(app)
    routes = {(path, method.lower()) for path, method in endpoints()}
    listed = {(path, method) for path, item in body["paths"].items() for method in item}
    assert listed == routes
    assert all(path.startswith("/v1/") for path, _method in routes)
    assert body["components"]["securitySchemes"]["ApiToken"]["type"] == "http"
    assert body["components"]["securitySchemes"]["ApiToken"]["scheme"] == "bearer"
    for path, method in listed:
        operation = body["paths"][path][method]
        assert operation["security"] == [{"ApiToken": []}], (path, method)
        assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }, (path, method)
        assert operation["summary"] and operation["description"], (path, method)


def test_closed_sets_are_enums_and_answers_are_typed(app: FastAPI) -> None:
    schemas = schema(app)["components"]["schemas"]
    incident = schemas["Incident"]["properties"]
    assert incident["risk_level"]["enum"] == ["low", "medium", "high"]
    assert incident["status"]["enum"] == ["open", "closed"]
    assert incident["review"]["enum"] == ["unreviewed", "confirmed", "rejected"]
    assert incident["incident_type"]["enum"] == list(INCIDENT_TYPES)
    assert incident["started_at"]["format"] == "date-time"
    assert schemas["VerdictIn"]["properties"]["verdict"]["enum"] == ["confirmed", "rejected"]
    assert schemas["VerdictIn"]["additionalProperties"] is False
    assert schemas["CameraHealth"]["properties"]["status"]["enum"] == [
        "online",
        "degraded",
        "offline",
        "unknown",
    ]
    assert schemas["Zone"]["properties"]["kind"]["enum"][:3] == ["entrance", "exit", "checkout"]
    for name in ("Incident", "IncidentDetail", "IncidentPage", "Store", "Camera", "Zone", "VerdictIn"):
        assert schemas[name].get("examples"), name


def test_the_pages_are_served(app: FastAPI) -> None:
    client = TestClient(app)
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200 and "/openapi.json" in response.text
