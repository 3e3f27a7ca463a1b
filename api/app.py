"""The API's application: its routes under `/v1`, its OpenAPI schema at `/openapi.json` (and
the pages `/docs` and `/redoc` drawn from it, with their files served here: api.docs_pages),
and one shape for every error.

Every error is JSON `{"detail": "..."}` (api.models.Problem) saying what is wrong, never a
traceback: a parameter FastAPI cannot read (a day that is not a date, a limit out of bounds)
and a filter that makes no sense (warehouse.scope.QueryError) are 422 with the parameter's
name first; PostgreSQL not answering, or every connection of the pool (api.pool) lent for as
long as a request may wait, is 503 with Retry-After. Nothing a caller sent is echoed
back beyond the parameter's name, so a token pasted in the wrong place is not repeated.

Prometheus metrics (api.metrics) are served at `/metrics` on the API's own port, with no
token (docs/API.md, "Metrics", says why); every other request is counted and timed by route
template and status (`RequestMetrics`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api import docs_pages, routes_analytics, routes_events, routes_incidents, routes_site
from api.metrics import METRICS_PATH, RequestMetrics
from api.models import UNAVAILABLE
from api.pool import ApiPool, PoolBusy
from shrinkwatch.metrics import exposition, mark_build
from shrinkwatch.settings import Settings
from warehouse.db import DatabaseUnreachable
from warehouse.scope import QueryError

log = logging.getLogger(__name__)
ROUTERS = (routes_site.router, routes_incidents.router, routes_analytics.router, routes_events.router)

VERSION = "1"
RETRY_AFTER_S = 5
DESCRIPTION = """\
Shrinkwatch's read API for integrations: stores, cameras and zones; incidents with the
dashboard's filters, in cursor pages; one incident with its signals, verdict and evidence;
analytics; camera health; and verdicts. Every request carries an API token
(`Authorization: Bearer swt_...`, from `shrinkwatch tokens add`) and sees only the token's
stores: anything else is the 404 of something that does not exist. docs/API.md has examples.
"""


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """What FastAPI could not read, parameter by parameter (`limit: Input should be ...`)."""
    parts = []
    for error in exc.errors():
        where = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body", "header")]
        parts.append(f"{'.'.join(where) or 'request'}: {error.get('msg', 'not valid')}")
    return "; ".join(parts) or "the request is not valid"


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _problem(422, validation_message(exc))


async def _query_error(_request: Request, exc: Exception) -> JSONResponse:
    return _problem(422, str(exc))


async def _busy(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("api: %s", exc)
    return _problem(503, str(exc), {"Retry-After": str(RETRY_AFTER_S)})


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("api: PostgreSQL is not answering: %s", str(exc).strip().splitlines()[0] if str(exc) else exc)
    return _problem(503, UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_S)})


def metrics() -> Response:
    """This process's Prometheus metrics (api.metrics), in the text exposition format."""
    body, content_type = exposition()
    return Response(body, headers={"Content-Type": content_type})


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await run_in_threadpool(app.state.pool.close)  # the server is stopping: every connection closed


def create_app(settings: Settings) -> FastAPI:
    """The API over the warehouse these settings name (nothing is connected until a request)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="Shrinkwatch API",
        version=VERSION,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # the pages come from api.docs_pages, offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pool = ApiPool(settings)  # (opened by the first request that needs it)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(PoolBusy, _busy)
    app.add_exception_handler(DatabaseUnreachable, _database_down)
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    for router in ROUTERS:
        app.include_router(router)
    docs_pages.add_docs_pages(app)
    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestMetrics)
    mark_build("api")
    return app


def endpoints() -> set[tuple[str, str]]:
    """Every (path, method) the API serves under /v1 (the OpenAPI schema's own pages aside)."""
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    return {(route.path, method) for route in routes for method in route.methods or ()}
