"""The sign-in gate's rules as plain functions (streamlit_app.server applies them)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

COOKIE = "shrinkwatch_session"
# Behind TLS the cookie is Secure and named with the `__Host-` prefix: browsers then take it
# only from a secure origin, for the whole site, never set by a subdomain.
SECURE_COOKIE = f"__Host-{COOKIE}"
# Reachable signed out: the sign-in routes, the health check, and the frontend's static
# bundle (the same public code for everyone; no data).
OPEN_PATHS = (
    "/signin",
    "/signin/sso",
    "/signin/sso/callback",
    "/signout",
    "/_stcore/health",
    "/_stcore/host-config",
    "/favicon.png",
)
OPEN_PREFIXES = ("/static/",)
# Streamlit's own media store (st.image, st.video, download buttons of bytes) answers any
# signed-in account that knows a file's address, whoever the file was made for: the
# dashboard serves store data only through routes that check the viewer's scope when they
# serve (streamlit_app.served), so nothing is served from here at all. Closed the same way:
# Streamlit's agent API (driving the app without a browser; off by default), its own sign-in
# routes (st.login, unused: sign-in is ours) and its metrics (sessions and caches).
CLOSED_PREFIXES = ("/media/", "/_stcore/agent/", "/auth/", "/oauth2callback", "/_stcore/metrics")


def is_open(path: str) -> bool:
    """Whether a path answers without a session."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def is_closed(path: str) -> bool:
    """Whether a path is never served, signed in or not."""
    return path.startswith(CLOSED_PREFIXES)


def cookie_name(secure: bool) -> str:
    """The session cookie's name: `__Host-` prefixed when it is Secure."""
    return SECURE_COOKIE if secure else COOKIE


def session_cookie(headers: Iterable[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    """The session token from raw ASGI headers' Cookie, if any, read as Starlette reads it
    for the pages (the last of several of one name), so the gate and the pages always judge
    the same token."""
    from starlette.requests import cookie_parser

    for header, value in headers:
        if header == b"cookie":
            return cookie_parser(value.decode("latin-1")).get(name) or None
    return None


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def client_address(peer: str, forwarded_for: str | None, trusted_proxies: Iterable[str]) -> str:
    """The address a request came from: the peer, or, when the peer is one of our reverse
    proxies, the last address in its X-Forwarded-For (the one that proxy saw; earlier
    entries come from the client and prove nothing)."""
    if forwarded_for and peer in set(trusted_proxies):
        return forwarded_for.split(",")[-1].strip() or peer
    return peer


def same_origin(origin: str | None, host: str) -> bool:
    """A POST from a page of this site. Browsers send Origin on POST; a tool without one
    (curl, a test) is let through, an opaque origin ("null") is not."""
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc == host
