"""Single sign-on's pending requests (owner of `sso_requests`): what a sign-in sent to the
chain's identity provider must find again when the browser comes back (its state, nonce and
PKCE verifier, and where to go next).

A request is taken once (a replayed answer finds nothing) and is good for SSO_REQUEST_TTL;
the dashboard's single sign-on (streamlit_app/sso.py) decides what to send and check. Who
may start one how often: `warehouse.sign_in_throttle`.
"""

from __future__ import annotations

from datetime import timedelta

from warehouse.db import Connection

SSO_REQUEST_TTL = timedelta(minutes=10)


def save_sso_request(conn: Connection, state: str, nonce: str, code_verifier: str, next_path: str) -> None:
    """Remember a sign-in sent to the identity provider (and forget stale ones)."""
    with conn.transaction():
        conn.execute("DELETE FROM sso_requests WHERE created_at < now() - %s", (SSO_REQUEST_TTL,))
        conn.execute(
            "INSERT INTO sso_requests (state, nonce, code_verifier, next_path) VALUES (%s, %s, %s, %s)",
            (state, nonce, code_verifier, next_path),
        )


def take_sso_request(conn: Connection, state: str) -> tuple[str, str, str] | None:
    """(nonce, code_verifier, next_path) of a pending sign-in, once; None if unknown or stale."""
    with conn.transaction():
        row = conn.execute(
            """DELETE FROM sso_requests WHERE state = %s
               RETURNING nonce, code_verifier, next_path, created_at > now() - %s AS fresh""",
            (state, SSO_REQUEST_TTL),
        ).fetchone()
    if row is None or not row["fresh"]:
        return None
    return row["nonce"], row["code_verifier"], row["next_path"]


def purge_sso_requests(conn: Connection) -> int:
    """Forget sign-ins never finished; returns how many (in the caller's transaction)."""
    return conn.execute("DELETE FROM sso_requests WHERE created_at < now() - %s", (SSO_REQUEST_TTL,)).rowcount
