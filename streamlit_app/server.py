"""The dashboard's web server: Streamlit's own ASGI app (`st.App`) with a sign-in gate.

Signed out, nothing but the sign-in form answers. `SignInGate` runs before Streamlit on
every HTTP request and on the websocket that carries all of the app's data: without a
cookie naming an open session (asked in PostgreSQL every time, so sign-out and disabled
accounts take effect at once) a page request is sent to /signin, any other request gets
401 and the websocket is refused. Only the sign-in routes, the health check and the
frontend's static bundle (the same public code for everyone) pass. An open websocket is
closed when its session ends (streamlit_app.sessions); store data outside the websocket is
served only by routes that check the viewer's scope when they serve (streamlit_app.served);
Streamlit's own media store is closed. While PostgreSQL does not answer no session can be
checked: a page request gets a page saying so (DATABASE_UNREACHABLE) that reloads itself
every few seconds, the sign-in routes show the sign-in page with that message instead of
the form's answer (no one is signed in or out), the websocket is turned away and anything
else gets 503; all of it goes back to normal by itself once the database answers.

The cookie holds the session token, HttpOnly (page scripts cannot read it), SameSite=Lax
(another site's form cannot send it: sign-out and sign-in are POSTs; a link from an alert
email still arrives signed in), and, when `dashboard_secure_cookie` is on (behind TLS),
Secure and named `__Host-shrinkwatch_session`. The pages read the same cookie through
`st.context.cookies` (streamlit_app.auth).

Every response carries the security headers of SECURITY_HEADERS: a Content-Security-Policy
that lets the page load and connect only to this site (a hostile name rendered by mistake
still cannot fetch an outside image) and no site frame it, no MIME sniffing, no referrer
to other sites. The client address for throttling is the peer's, or a configured trusted
proxy's X-Forwarded-For: uvicorn is told to trust no proxy of its own (FORWARDED_ALLOW_IPS).

`shrinkwatch app` runs this file with `streamlit run`, which finds `app` and serves it.

Metrics: the Streamlit server is one long-running process that imports this module once (the
pages are the scripts that rerun, per session and per interaction), so its Prometheus metrics
(shrinkwatch.metrics, role `dashboard`) are started here, at import, behind a guard that
starts them once per process whatever imports it. It exports
`shrinkwatch_sign_in_failures_total{surface="dashboard"}`: every sign-in that ended without a
session (a wrong password or unknown account, an attempt refused by throttling, a single
sign-on that did not complete or found no account). The counter joins the process's registry
only when the metrics are served, so a process that also loads the API's (which declares the
same name for `surface="api"`, api.metrics) never registers it twice.
"""

from __future__ import annotations

import functools
import html
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
import streamlit as st
from prometheus_client import REGISTRY, Counter
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from shrinkwatch.metrics import MetricsServer, serve
from shrinkwatch.wording import DATABASE_UNREACHABLE
from streamlit_app import served, sso, unreachable
from streamlit_app.gate_rules import client_address, is_closed, is_open, safe_next, same_origin
from streamlit_app.sessions import DB, STREAMS, cookie, hand_on, on_own_connection, token_of
from warehouse.accounts import authenticate, user_by_email
from warehouse.db import ping
from warehouse.sessions import end_session, session_user, start_session
from warehouse.sign_in_throttle import AuthError, Throttled, count_sso_start, take_back_sso_start
from warehouse.single_sign_on import save_sso_request, take_sso_request

HERE = Path(__file__).parent

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SSO_COOKIE = "shrinkwatch_sso"
# uvicorn rewrites the client address from X-Forwarded-For for peers it trusts (loopback by
# default): trust only the proxies the settings name, and judge their header ourselves.
os.environ["FORWARDED_ALLOW_IPS"] = ",".join(DB.settings.dashboard_trusted_proxies)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",  # Streamlit's bundle and its charts need both
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self' blob: data:",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every HTTP response (they replace any the
    response set itself)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
        self.names = {k for k, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self.names]
                message["headers"] = kept + self.headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _warm_up_charts() -> None:
    """Plotly builds its templates and validators on first use (about a second here): do it
    at start, so the first person to open a page with charts does not wait for it."""
    traces = [go.Heatmap(z=[[1, 2], [3, 4]]), go.Scatter(x=[0, 1], y=[0, 1]), go.Bar(x=[1], y=["a"])]
    go.Figure(traces).to_json()


_warm_up_charts()

SIGN_IN_FAILURES = Counter(
    "shrinkwatch_sign_in_failures",
    "Sign-ins refused, by surface (dashboard: a password or single sign-on; api: a token).",
    ["surface"],
    registry=None,  # registered when served (see the module docstring)
)
_metrics_lock = threading.Lock()
_metrics: MetricsServer | None = None


def _serve_metrics() -> MetricsServer:
    """This process's metrics server, started on the first call only (see the module docstring)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = serve(DB.settings, "dashboard")
            if _metrics.port is not None:
                SIGN_IN_FAILURES.labels("dashboard")
                REGISTRY.register(SIGN_IN_FAILURES)
        return _metrics


def _sign_in_failed() -> None:
    SIGN_IN_FAILURES.labels("dashboard").inc()


_serve_metrics()


class SignInGate:
    """ASGI middleware: lets a request through only with an open session (or to OPEN_PATHS);
    a websocket is closed when its session ends; CLOSED_PREFIXES answer nobody."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if is_closed(path):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4404})
            else:
                await PlainTextResponse("not found", status_code=404)(scope, receive, send)
            return
        if is_open(path):
            await self.app(scope, receive, send)
            return
        token = token_of(scope.get("headers", []))
        try:
            user = await run_in_threadpool(DB.call, session_user, token) if token else None
        except Exception as exc:
            if not unreachable.is_down(exc):
                raise
            await _database_away(scope, receive, send)
            return
        if user is not None and token is not None:
            hand_on(scope, user)
            if scope["type"] == "websocket":
                await STREAMS.serve(token, lambda r, s: self.app(scope, r, s), receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "sign in first"})
            return
        request = Request(scope, receive)
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if wants_page:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
        else:
            response = Response("sign in first", status_code=401, media_type="text/plain")
        if token:  # a cookie of a session that ended: forget it
            _forget_session(response)
        await response(scope, receive, send)


async def _database_away(scope: Scope, receive: Receive, send: Send) -> None:
    """No session can be checked: a page request gets a page saying so that asks again every
    few seconds by itself, the websocket is turned away (the browser tries it again), any
    other request a 503."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013, "reason": "try again later"})
        return
    request = Request(scope, receive)
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        again = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = HTMLResponse(_away_page(again), status_code=503, headers=AWAY_HEADERS)
    else:
        response = PlainTextResponse(DATABASE_UNREACHABLE, status_code=503, headers=AWAY_HEADERS)
    await response(scope, receive, send)


AWAY_HEADERS = {"Retry-After": str(int(unreachable.RETRY_S)), "Cache-Control": "no-store"}


def _away_page(again: str) -> str:
    """The sign-in page's look, the message in place of the form, going to `again` (a path
    of this site, asked with GET) every few seconds by itself."""
    refresh = f'<meta http-equiv="refresh" content="{int(unreachable.RETRY_S)};url={html.escape(again)}">'
    head = _PAGE.split("<main>")[0].replace("{{", "{").replace("}}", "}")  # (a format template)
    said = html.escape(DATABASE_UNREACHABLE.replace("`", ""))  # (Markdown's code marks, on the pages)
    return (
        f"{head.replace('<title>', refresh + '<title>', 1)}<main>"
        f'<h1><span aria-hidden="true">&#128737;</span> Shrinkwatch</h1>'
        f'<p class="message error" role="alert">{said}</p></main></body></html>'
    )


Handler = Callable[[Request], Awaitable[Response]]


def _unless_database_away(route: Handler) -> Handler:
    """A sign-in route that says the database is not reachable (503, the sign-in page with
    the message) instead of failing when it cannot ask it: no one is signed in or out."""

    @functools.wraps(route)
    async def guarded(request: Request) -> Response:
        try:
            return await route(request)
        except Exception as exc:
            if not unreachable.is_down(exc):
                raise
            return HTMLResponse(_away_page("/signin"), status_code=503, headers=AWAY_HEADERS)

    return guarded


def _forget_session(response: Response) -> None:
    """Tell the browser to drop the session cookie, with the attributes it was set with (a
    browser ignores a `__Host-` cookie's deletion that is not itself Secure)."""
    secure = DB.settings.dashboard_secure_cookie
    response.delete_cookie(cookie(), path="/", secure=secure, httponly=True, samesite="lax")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Shrinkwatch</title>
<style>
  body {{ margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
         font-family: "Source Sans Pro", system-ui, -apple-system, "Segoe UI", sans-serif;
         background: #f4f6f8; color: #1f2933; }}
  main {{ width: 22rem; background: #fff; border-radius: 12px; padding: 2.2rem 2.4rem;
          box-shadow: 0 1px 3px rgba(0,0,0,.08), 0 8px 24px rgba(0,0,0,.06); }}
  h1 {{ font-size: 1.5rem; margin: 0 0 .25rem; display: flex; gap: .5rem; align-items: center; }}
  p.lead {{ margin: 0 0 1.6rem; color: #52606d; font-size: .95rem; }}
  label {{ display: block; font-size: .85rem; font-weight: 600; margin: 1rem 0 .35rem; }}
  input {{ width: 100%; box-sizing: border-box; padding: .6rem .7rem; font-size: 1rem;
           border: 1px solid #cbd2d9; border-radius: 8px; }}
  input:focus {{ outline: 2px solid #ff4b4b33; border-color: #ff4b4b; }}
  button {{ width: 100%; margin-top: 1.6rem; padding: .7rem; font-size: 1rem; font-weight: 600;
            color: #fff; background: #ff4b4b; border: 0; border-radius: 8px; cursor: pointer; }}
  button:hover {{ background: #e03e3e; }}
  .message {{ margin: 0 0 1rem; padding: .6rem .8rem; border-radius: 8px; font-size: .9rem; }}
  .error {{ background: #fdecea; color: #8a1c1c; }}
  .info {{ background: #e8f1fb; color: #1c4f8a; }}
  footer {{ margin-top: 1.4rem; font-size: .8rem; color: #7b8794; }}
  .or {{ margin: 1.2rem 0 0; text-align: center; font-size: .85rem; color: #7b8794; }}
  button.sso {{ margin-top: .6rem; padding: .65rem; font-weight: 600;
                color: #1f2933; background: #fff; border: 1px solid #cbd2d9; }}
  button.sso:hover {{ background: #f4f6f8; }}
</style></head>
<body><main>
  <h1><span aria-hidden="true">&#128737;</span> Shrinkwatch</h1>
  <p class="lead">Loss prevention: incidents, review and analytics.</p>
  {message}
  <form method="post" action="/signin">
    <input type="hidden" name="next" value="{next}">
    <label for="username">Username</label>
    <input id="username" name="username" autocomplete="username" value="{username}" required autofocus>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form>
  {sso}
  <footer>Ask your Shrinkwatch administrator for an account.</footer>
</main></body></html>
"""


def _page(*, message: str = "", kind: str = "error", next_path: str = "/", username: str = "") -> str:
    box = f'<p class="message {kind}" role="alert">{html.escape(message)}</p>' if message else ""
    sso_block = ""
    if sso.enabled(DB.settings):  # a POST from this page: no other site can start it
        sso_block = (
            '<p class="or">or</p><form method="post" action="/signin/sso">'
            f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
            f'<button class="sso" type="submit">Sign in with {html.escape(DB.settings.sso_label)}</button>'
            "</form>"
        )
    return _PAGE.format(
        message=box, next=html.escape(next_path), username=html.escape(username), sso=sso_block
    )


def _throttled(exc: Throttled, next_path: str, username: str = "") -> Response:
    """The sign-in page saying how long to wait: 429 with Retry-After."""
    retry = str(int(exc.retry_after.total_seconds()) + 1)
    page = _page(message=str(exc), next_path=next_path, username=username)
    return HTMLResponse(page, status_code=429, headers={"Retry-After": retry})


def _client(request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    return client_address(peer, request.headers.get("x-forwarded-for"), DB.settings.dashboard_trusted_proxies)


def _same_origin(request: Request) -> bool:
    return same_origin(request.headers.get("origin"), request.headers.get("host", ""))


@_unless_database_away
async def signin(request: Request) -> Response:
    """GET: the form. POST: check the password, start a session, set the cookie, go on."""
    if request.method == "GET":
        said = request.query_params.get("signed_out")
        message = "You are signed out." if said else ""
        response = HTMLResponse(
            _page(message=message, kind="info", next_path=safe_next(request.query_params.get("next")))
        )
        token = request.cookies.get(cookie())
        if token and await run_in_threadpool(DB.call, session_user, token) is None:
            _forget_session(response)
        elif not token:
            # Nobody can sign in while the database is away: say so now, not after a try
            # (the away page comes back here every few seconds until it answers).
            await run_in_threadpool(DB.call, ping)
        return response
    form = await request.form()
    username = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "/")))
    if not _same_origin(request):
        return HTMLResponse(_page(message="Sign in from the sign-in page.", next_path=next_path), 403)
    try:
        user = await run_in_threadpool(
            on_own_connection, authenticate, username, password, client=_client(request)
        )
    except Throttled as exc:
        _sign_in_failed()
        return _throttled(exc, next_path, username)
    except AuthError as exc:
        _sign_in_failed()
        return HTMLResponse(_page(message=str(exc), next_path=next_path, username=username), status_code=401)
    hours = DB.settings.dashboard_session_hours
    session: str = await run_in_threadpool(DB.call, start_session, user.username, hours=hours)
    return _signed_in_response(next_path, session)


def _sso_return(request: Request) -> str:
    base = DB.settings.dashboard_public_url or str(request.base_url)
    return base.rstrip("/") + "/signin/sso/callback"


def _signed_in_response(next_path: str, token: str) -> Response:
    """Go on to `next_path` with the session's cookie set."""
    hours = DB.settings.dashboard_session_hours
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        cookie(),
        token,
        max_age=int(hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=DB.settings.dashboard_secure_cookie,
    )
    return response


@_unless_database_away
async def signin_sso(request: Request) -> Response:
    """POST from the sign-in page: send the browser to the identity provider (single sign-on),
    remembering the attempt. A GET (an old link, an image on another site) only shows the
    sign-in page: starting counts against the address's limit, so only this site may."""
    if request.method == "GET":
        next_path = safe_next(request.query_params.get("next"))
        return RedirectResponse(f"/signin?next={quote(next_path)}", status_code=303)
    form = await request.form()
    next_path = safe_next(str(form.get("next", "/")))
    if not _same_origin(request):
        return HTMLResponse(_page(message="Sign in from the sign-in page.", next_path=next_path), 403)
    if not sso.enabled(DB.settings):
        return HTMLResponse(_page(message="Single sign-on is not set up here.", next_path=next_path), 404)
    try:
        await run_in_threadpool(DB.call, count_sso_start, client=_client(request))
    except Throttled as exc:
        return _throttled(exc, next_path)
    try:
        started = await run_in_threadpool(sso.start, DB.settings, _sso_return(request))
    except sso.SsoError as exc:
        return HTMLResponse(_page(message=str(exc), next_path=next_path), 502)
    await run_in_threadpool(
        DB.call, save_sso_request, started.state, started.nonce, started.code_verifier, next_path
    )
    response = RedirectResponse(started.url, status_code=303)
    # The state also goes into this browser's cookie: the return must come to the same browser.
    response.set_cookie(
        SSO_COOKIE,
        started.state,
        max_age=600,
        path="/signin/sso",
        httponly=True,
        samesite="lax",
        secure=DB.settings.dashboard_secure_cookie,
    )
    return response


@_unless_database_away
async def signin_sso_callback(request: Request) -> Response:
    """The provider sends the browser back: check everything, then sign in like a password."""
    state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
    same_browser = bool(state) and secrets.compare_digest(state, request.cookies.get(SSO_COOKIE, ""))
    pending = await run_in_threadpool(DB.call, take_sso_request, state) if same_browser else None
    if pending is None or not code:
        _sign_in_failed()
        response = HTMLResponse(_page(message="Single sign-on did not complete. Try again."), 400)
        response.delete_cookie(SSO_COOKIE, path="/signin/sso")
        return response
    nonce, verifier, next_path = pending
    try:
        email = await run_in_threadpool(sso.finish, DB.settings, _sso_return(request), code, nonce, verifier)
    except sso.SsoError as exc:
        _sign_in_failed()
        return HTMLResponse(_page(message=str(exc), next_path=next_path), 401)
    user = await run_in_threadpool(DB.call, user_by_email, email)
    if user is None:
        _sign_in_failed()
        message = f"No Shrinkwatch account for {email} (or it is disabled). Ask your administrator."
        return HTMLResponse(_page(message=message, next_path=next_path), 403)
    hours = DB.settings.dashboard_session_hours
    token: str = await run_in_threadpool(DB.call, start_session, user.username, hours=hours)
    await run_in_threadpool(DB.call, take_back_sso_start, client=_client(request))
    signed_in = _signed_in_response(next_path, token)
    signed_in.delete_cookie(SSO_COOKIE, path="/signin/sso")
    return signed_in


_SIGN_OUT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign out · Shrinkwatch</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; display: flex; justify-content: center; margin-top: 20vh">
<form method="post" action="/signout"><p>Sign out of Shrinkwatch?</p>
<button type="submit">Sign out</button> <a href="/">Stay signed in</a></form></body></html>
"""


@_unless_database_away
async def signout(request: Request) -> Response:
    """End the session on the server (every tab and websocket of it closes) and forget the
    cookie. Only a POST from a page of this site does that; a GET while the session is open
    asks for a POST (a link or an image on another site cannot sign anyone out), and a
    cross-site POST changes nothing. A cookie whose session has already ended is forgotten."""
    token = request.cookies.get(cookie())
    still_open = bool(token) and await run_in_threadpool(DB.call, session_user, token) is not None
    if still_open and request.method == "GET":
        return HTMLResponse(_SIGN_OUT_PAGE, headers={"Cache-Control": "no-store"})
    if still_open and not _same_origin(request):
        return HTMLResponse(_page(message="Sign out from Shrinkwatch's own page."), 403)
    if still_open:
        await run_in_threadpool(DB.call, end_session, token)
        STREAMS.recheck()
    response = RedirectResponse("/signin?signed_out=1", status_code=303)
    _forget_session(response)
    return response


app = st.App(
    HERE / "app.py",
    routes=[
        Route("/signin", signin, methods=["GET", "POST"]),
        Route("/signin/sso", signin_sso, methods=["GET", "POST"]),
        Route("/signin/sso/callback", signin_sso_callback, methods=["GET"]),
        Route("/signout", signout, methods=["GET", "POST"]),
        *served.ROUTES,
    ],
    middleware=[Middleware(SecurityHeaders), Middleware(SignInGate)],
)
