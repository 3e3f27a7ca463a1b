"""Who is asking: the bearer token of every request, checked when the request is served.

Each request borrows a PostgreSQL connection from the process's pool (`connection`, api.pool:
waiting for one in the event loop, using it on FastAPI's threads, never in the event loop) and
asks warehouse.api_tokens about the token it carries, with no cache: a revoked or expired
token, or a user's disabled account, is refused on the very next request. The token gives the
caller (`ApiCaller`): its store scope as of now, its permissions (read, review, export) and
the name the access log and verdicts record.

- No token, a malformed header, an unknown, revoked or expired token: 401, the same body for
  each (`Problem` "missing, invalid, revoked or expired token") and `WWW-Authenticate: Bearer`,
  so nothing tells a guessed token from a revoked one.
- A valid token without the permission a route needs: 403 naming the permission.
- Each token presented and refused counts as a sign-in failure (api.metrics,
  `shrinkwatch_sign_in_failures_total{surface="api"}`); a request with no token does not.
- Anything outside the token's stores is the 404 of something that does not exist (the routes'
  business: they read through the query layer with the caller's scope).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.metrics import SIGN_IN_FAILURES
from api.pool import STREAM_APPLICATION_NAME, ApiPool
from shrinkwatch.settings import Settings
from warehouse.api_tokens import ApiCaller, authenticate_token
from warehouse.db import Connection, connect

SCHEME = "ApiToken"  # the security scheme's name in the OpenAPI schema
UNAUTHORISED = "missing, invalid, revoked or expired token"
_TOKEN_MAX = 512  # longer than any token we issue: refused before the database is asked

bearer = HTTPBearer(
    scheme_name=SCHEME,
    description="An API token from `shrinkwatch tokens add`, sent as `Authorization: Bearer swt_...`.",
    auto_error=False,  # our own 401, the same for every way a token is wrong
)


def settings_of(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


def pool_of(app: Any) -> ApiPool:
    """The app's connection pool (made with the app by api.app.create_app)."""
    pool: ApiPool = app.state.pool
    return pool


def unauthorised() -> HTTPException:
    return HTTPException(401, UNAUTHORISED, headers={"WWW-Authenticate": "Bearer"})


def presented(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The token the request carries, if it is shaped like one; else 401 before anything
    else (a request without a token takes no database connection)."""
    if credentials is None:
        raise unauthorised()
    token = credentials.credentials
    if not token or len(token) > _TOKEN_MAX or not (token.isascii() and token.isprintable()):
        SIGN_IN_FAILURES.labels("api").inc()
        raise unauthorised()
    return token


Presented = Annotated[str, Depends(presented)]


async def connection(request: Request, _token: Presented) -> AsyncIterator[Connection]:
    """A connection from the pool for the length of the route function, given back before the
    response is written (autocommit: each statement stands alone unless a warehouse function
    opens a transaction). Only for a request with a token (`presented`)."""
    async with pool_of(request.app).borrow() as conn:
        yield conn


def own_connection(request: Request) -> Iterator[Connection]:
    """A connection of the request's own, not the pool's, closed when its response has been
    sent: an event stream's, held for as long as its client stays."""
    dsn = settings_of(request).database_dsn
    with connect(dsn, autocommit=True, application_name=STREAM_APPLICATION_NAME) as conn:
        yield conn


Db = Annotated[Connection, Depends(connection, scope="function")]
OwnDb = Annotated[Connection, Depends(own_connection)]


def client_of(request: Request) -> str:
    """Where the request came from (its peer's address)."""
    return request.client.host if request.client else "unknown"


def caller(request: Request, conn: Db, token: Presented) -> ApiCaller:
    """The token's caller, or 401."""
    found = authenticate_token(conn, token, client=client_of(request))
    if found is None:
        SIGN_IN_FAILURES.labels("api").inc()
        raise unauthorised()
    return found


Caller = Annotated[ApiCaller, Depends(caller)]


def needs(permission: str) -> Callable[[ApiCaller], ApiCaller]:
    """A dependency: the caller, when its token has `permission`; else 403."""

    def allowed(who: Caller) -> ApiCaller:
        if not who.may(permission):
            raise HTTPException(403, f"this token lacks the {permission!r} permission")
        return who

    allowed.__name__ = f"needs_{permission}"
    return allowed


Reader = Annotated[ApiCaller, Depends(needs("read"))]
Reviewer = Annotated[ApiCaller, Depends(needs("review"))]


def identity(who: ApiCaller) -> str:
    """The name the access log and a verdict record: the token's account, or `token:<name>`
    for a service token (no account can be called that: usernames have no `:`)."""
    return who.user.username if who.user is not None else f"token:{who.token.name}"
