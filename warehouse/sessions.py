"""Server-side dashboard sessions (owner of `user_sessions`).

A sign-in returns a random token for the browser's cookie; PostgreSQL keeps only its SHA-256
beside the account, an expiry, and whether it ended. `session_user` is asked on every
request and every rerun, so signing out, changing a password or disabling an account
(`warehouse.accounts` ends the account's sessions through `end_sessions`) ends its sessions at
once, on every browser.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from warehouse.db import Connection
from warehouse.scope import User

# What makes a session (s) of an account (u) open: not ended, not expired, account enabled.
_OPEN = "s.ended_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def start_session(conn: Connection, username: str, *, hours: float) -> str:
    """A new session for the account; returns the token for the browser's cookie."""
    token = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(
            """INSERT INTO user_sessions (token_sha256, username, expires_at)
               VALUES (%s, %s, now() + %s)""",
            (_digest(token), username, timedelta(hours=hours)),
        )
    return token


def session_user(conn: Connection, token: str | None) -> User | None:
    """The signed-in account of this token, or None if the session does not exist, has
    expired or ended, or its account is disabled."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        f"""UPDATE user_sessions s SET last_seen_at = now()
            FROM users u
            WHERE s.token_sha256 = %s AND u.username = s.username AND {_OPEN}
            RETURNING u.username, u.role, u.stores, u.display_name, u.email, false AS disabled""",  # noqa: S608
        (_digest(token),),
    ).fetchone()
    conn.commit()
    return User.from_row(row) if row else None


def open_sessions(conn: Connection, tokens: Iterable[str]) -> set[str]:
    """Those of these tokens whose session is still open (not ended or expired, account not
    disabled): one query for every websocket the dashboard holds open."""
    by_digest = {_digest(t): t for t in tokens if t and len(t) <= 200}
    if not by_digest:
        return set()
    rows = conn.execute(
        f"""SELECT s.token_sha256 FROM user_sessions s JOIN users u ON u.username = s.username
           WHERE s.token_sha256 = ANY(%s) AND {_OPEN}""",  # noqa: S608
        (list(by_digest),),
    ).fetchall()
    conn.commit()
    return {by_digest[bytes(r["token_sha256"])] for r in rows}


def end_session(conn: Connection, token: str, why: str = "signed out") -> bool:
    """End this session (sign-out); False if it was not open."""
    with conn.transaction():
        return bool(
            conn.execute(
                """UPDATE user_sessions SET ended_at = now(), ended_why = %s
                   WHERE token_sha256 = %s AND ended_at IS NULL""",
                (why, _digest(token)),
            ).rowcount
        )


def end_sessions(conn: Connection, username: str, why: str) -> int:
    """End every open session of the account (in the caller's transaction); returns how many."""
    return conn.execute(
        """UPDATE user_sessions SET ended_at = now(), ended_why = %s
           WHERE username = %s AND ended_at IS NULL""",
        (why, username),
    ).rowcount


def purge_sessions(conn: Connection, keep: timedelta) -> int:
    """Forget sessions ended or expired more than `keep` ago; returns how many (in the caller's
    transaction)."""
    return conn.execute(
        "DELETE FROM user_sessions WHERE least(coalesce(ended_at, expires_at), expires_at) < now() - %s",
        (keep,),
    ).rowcount
