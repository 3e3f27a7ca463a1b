"""The API's Prometheus metrics, served at `/metrics` on the API's own port (docs/API.md).

- `shrinkwatch_api_requests_total{route,method,status}`: requests answered, counted when the
  response starts (a Server-Sent Events stream counts once, when it opens);
- `shrinkwatch_api_request_seconds{route,method}`: from the request's arrival to its
  response starting, the time a caller waits for an answer (for a stream: for it to open);
- `shrinkwatch_api_event_streams`: event streams open now (`streaming()` around each one);
- `shrinkwatch_sign_in_failures_total{surface="api"}`: bearer tokens refused (api.auth: a
  malformed, unknown, revoked or expired token, and an open event stream's token refused
  when it is checked again; a request that carries none is not counted, as nothing was
  tried). The dashboard counts its own under `surface="dashboard"` in its process
  (streamlit_app.server).

`route` is the route's template (`/v1/incidents/{incident_id}`), never the path a caller
sent: an id in a label would make a series per incident (the docs pages' files: their
mount's `/docs-assets/{path}`). A path no route matches is `unmatched`, one label for them
all; a method that is not one of HTTP's own is `other` (a caller could otherwise make a
series per made-up method). `/metrics` itself is not counted, so a Prometheus scraping it
does not show up as API traffic. An error that escapes every handler is counted as the 500
that the server then answers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

REQUESTS = Counter(
    "shrinkwatch_api_requests",
    "API requests answered, by route template, method and HTTP status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "shrinkwatch_api_request_seconds",
    "Seconds from a request's arrival to its response starting, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENT_STREAMS = Gauge("shrinkwatch_api_event_streams", "Server-Sent Events streams open now.")
SIGN_IN_FAILURES = Counter(
    "shrinkwatch_sign_in_failures",
    "Sign-ins refused, by surface (dashboard: a password or single sign-on; api: a token).",
    ["surface"],
)
SIGN_IN_FAILURES.labels("api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def streaming() -> AbstractContextManager[None]:
    """Hold this for as long as an event stream is open: `with streaming(): ...` (the gauge
    goes up on entering and down on leaving, however the stream ends)."""
    return EVENT_STREAMS.track_inprogress()


def _serves(route: object, endpoint: object) -> bool:
    """Whether `endpoint` is this route's (a route's endpoint, or a mount's app)."""
    return getattr(route, "endpoint", None) is endpoint or getattr(route, "app", None) is endpoint


def route_label(scope: Scope) -> str:
    """The template of the route that served this request, or UNMATCHED. The router names it
    in the scope (`route`) for the API's own routes; for the schema and its pages (plain
    Starlette routes) it leaves only their `endpoint`, whose route is looked up; for a mounted
    folder (the docs pages' files) the endpoint is the mount's app, and the label its template."""
    route = scope.get("route")
    if route is None and (endpoint := scope.get("endpoint")) is not None and "app" in scope:
        route = next((r for r in scope["app"].routes if _serves(r, endpoint)), None)
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


def method_label(method: str) -> str:
    """The method as a label: one of HTTP's own, or `other` (a server takes any token as a
    method, and a label per made-up one would grow the series without bound)."""
    return method if method in METHODS else OTHER_METHOD


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request but `/metrics` (see above)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        def record(status: int) -> None:
            # The router has put the matched route into `scope` by the time a response starts.
            route, method = route_label(scope), method_label(scope["method"])
            REQUESTS.labels(route, method, str(status)).inc()
            REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - started)

        async def counted(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            if not answered:
                answered = True
                record(500)  # what the server's outermost error handler answers
            raise
