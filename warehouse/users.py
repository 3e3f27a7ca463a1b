"""Dashboard accounts, sign-in and server-side sessions.

Roles: `admin` (everything, and the settings pages), `analyst` (every store), and
`store_manager` (only the stores listed on the account). `scope_of` turns an account into the
query layer's `Scope`, which every dashboard query takes.

Passwords are kept as argon2id hashes. A sign-in returns a random token for the browser's
cookie; PostgreSQL keeps only its SHA-256 beside the account, an expiry, and whether it
ended. `session_user` is asked on every request and every rerun, so signing out, changing
a password or disabling an account ends its sessions at once, on every browser.

Wrong passwords are throttled per account and per client address: after FREE_FAILURES
failures within FAILURE_WINDOW, the next attempt must wait 30 s, then twice as long after
each further failure, up to the window. A throttled attempt is refused without looking at
the password (so guessing gains nothing), and unknown accounts cost the same argon2 work as
known ones (so timing does not tell which accounts exist). The check and the count are one
step: an attempt is recorded as a failure, under a lock on its account and address, before
its password is looked at, and takes that record back only if it succeeds; so eight guesses
sent at once are counted as eight, and only the first five are checked. Starting single
sign-on is limited per address the same way (FREE_FAILURES["sso"] starts in the window).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shrinkwatch.errors import ShrinkwatchError
from warehouse.db import Connection
from warehouse.queries import Scope

ROLES = ("admin", "analyst", "store_manager")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
FAILURE_WINDOW = timedelta(minutes=15)
FREE_FAILURES = {"user": 5, "ip": 20, "sso": 20}
FIRST_WAIT = timedelta(seconds=30)
_HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) parameters
_DUMMY_HASH = _HASHER.hash("not a password anybody has")


class AuthError(ShrinkwatchError):
    """A sign-in that did not succeed; the message can be shown as it is."""


class Throttled(AuthError):
    """Too many failed sign-ins: the next attempt may come after `retry_after`."""

    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class User:
    """A dashboard account as the app sees it."""

    username: str
    role: str
    stores: tuple[str, ...] = ()
    display_name: str = ""
    email: str | None = None
    disabled: bool = False

    @property
    def label(self) -> str:
        return self.display_name or self.username

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_COLUMNS = "username, role, stores, display_name, email, disabled_at IS NOT NULL AS disabled"


def _user(row: dict[str, Any]) -> User:
    return User(
        row["username"], row["role"], tuple(row["stores"]), row["display_name"], row["email"], row["disabled"]
    )


def hash_password(password: str) -> str:
    """An argon2id hash of the password (salted; the parameters are in the hash)."""
    return _HASHER.hash(password)


def check_password(username: str, password: str) -> None:
    """ShrinkwatchError unless the password is acceptable for this account."""
    if len(password) < MIN_PASSWORD:
        msg = f"the password must be at least {MIN_PASSWORD} characters long"
        raise ShrinkwatchError(msg)
    if password.strip().lower() == username.lower():
        msg = "the password must not be the username"
        raise ShrinkwatchError(msg)


def _check_account(conn: Connection, username: str, role: str, stores: Iterable[str]) -> tuple[str, ...]:
    if not USERNAME.match(username):
        msg = f"username {username!r}: use 1-64 of a-z 0-9 . _ @ -, starting with a letter or digit"
        raise ShrinkwatchError(msg)
    if role not in ROLES:
        msg = f"role {role!r}: must be one of {', '.join(ROLES)}"
        raise ShrinkwatchError(msg)
    wanted = tuple(dict.fromkeys(stores))
    if role == "store_manager" and not wanted:
        msg = "a store_manager needs at least one store (--store)"
        raise ShrinkwatchError(msg)
    if role != "store_manager" and wanted:
        msg = f"--store is for store managers; an {role} sees every store"
        raise ShrinkwatchError(msg)
    known = {r["id"] for r in conn.execute("SELECT id FROM stores WHERE id = ANY(%s)", (list(wanted),))}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        msg = f"unknown store(s): {', '.join(unknown)} (apply the site file first)"
        raise ShrinkwatchError(msg)
    return wanted


def add_user(
    conn: Connection,
    username: str,
    role: str,
    *,
    password: str | None,
    stores: Iterable[str] = (),
    display_name: str = "",
    email: str | None = None,
) -> User:
    """Create an account (password None: single sign-on only). Errors name what is wrong."""
    wanted = _check_account(conn, username, role, stores)
    if password is not None:
        check_password(username, password)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM users WHERE username = %s", (username,)).fetchone():
            msg = f"user {username!r} exists already (use `users passwd` or `users update`)"
            raise ShrinkwatchError(msg)
        row = conn.execute(
            f"""INSERT INTO users (username, role, stores, display_name, email, password_hash)
                VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",  # noqa: S608 (our column list)
            (
                username,
                role,
                list(wanted),
                display_name,
                email,
                hash_password(password) if password is not None else None,
            ),
        ).fetchone()
    assert row is not None
    return _user(row)


def update_user(
    conn: Connection,
    username: str,
    *,
    role: str | None = None,
    stores: Iterable[str] | None = None,
    display_name: str | None = None,
    email: str | None = None,
) -> User:
    """Change an account's role, stores, name or email; its sessions end when its scope changes."""
    current = get_user(conn, username)
    new_role = role or current.role
    new_stores = (
        tuple(stores) if stores is not None else (current.stores if new_role == "store_manager" else ())
    )
    wanted = _check_account(conn, username, new_role, new_stores)
    with conn.transaction():
        conn.execute(
            """UPDATE users SET role = %s, stores = %s, display_name = coalesce(%s, display_name),
                   email = coalesce(%s, email), updated_at = now() WHERE username = %s""",
            (new_role, list(wanted), display_name, email, username),
        )
        if (new_role, wanted) != (current.role, current.stores):
            _end_sessions(conn, username, "role or stores changed")
    return get_user(conn, username)


def get_user(conn: Connection, username: str) -> User:
    """The account, or ShrinkwatchError naming it."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE username = %s", (username,)).fetchone()  # noqa: S608
    if row is None:
        msg = f"no user {username!r}"
        raise ShrinkwatchError(msg)
    return _user(row)


def list_users(conn: Connection) -> list[User]:
    """Every account, by username."""
    return [_user(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username")]  # noqa: S608


def _end_sessions(conn: Connection, username: str, why: str) -> int:
    return conn.execute(
        """UPDATE user_sessions SET ended_at = now(), ended_why = %s
           WHERE username = %s AND ended_at IS NULL""",
        (why, username),
    ).rowcount


def set_password(conn: Connection, username: str, password: str) -> int:
    """Set a new password; every session of the account ends. Returns how many ended."""
    get_user(conn, username)
    check_password(username, password)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE username = %s",
            (hash_password(password), username),
        )
        conn.execute("DELETE FROM sign_in_failures WHERE key = %s", (f"user:{username}",))
        return _end_sessions(conn, username, "password changed")


def disable_user(conn: Connection, username: str) -> int:
    """Disable the account; its sessions end at once. Returns how many ended."""
    get_user(conn, username)
    with conn.transaction():
        conn.execute(
            """UPDATE users SET disabled_at = coalesce(disabled_at, now()), updated_at = now()
               WHERE username = %s""",
            (username,),
        )
        return _end_sessions(conn, username, "user disabled")


def enable_user(conn: Connection, username: str) -> None:
    """Let a disabled account sign in again."""
    get_user(conn, username)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET disabled_at = NULL, updated_at = now() WHERE username = %s", (username,)
        )


def _wait(conn: Connection, kind: str, value: str) -> timedelta:
    """How long an attempt for this account or address must still wait (0: none)."""
    row = conn.execute(
        """SELECT count(*) AS n, max(at) AS last, now() AS now FROM sign_in_failures
           WHERE key = %s AND at > now() - %s""",
        (f"{kind}:{value}", FAILURE_WINDOW),
    ).fetchone()
    assert row is not None
    failures = int(row["n"])
    if failures < FREE_FAILURES[kind]:
        return timedelta(0)
    wait = min(FAILURE_WINDOW, FIRST_WAIT * 2 ** (failures - FREE_FAILURES[kind]))
    left: timedelta = row["last"] + wait - row["now"]
    return max(left, timedelta(0))


_WHAT = {
    "user": "failed sign-ins for this account",
    "ip": "failed sign-ins for this address",
    "sso": "single sign-on attempts from this address",
}


def _count_attempt(conn: Connection, keys: list[tuple[str, str]]) -> list[int]:
    """Throttled if any of these (kind, value) keys must wait; otherwise record this attempt
    against each of them, and return the records' ids. Reading the counts and recording
    the attempt happen in one transaction holding a lock per key, so attempts sent in
    parallel are counted one after another and none slips past the limit. (The caller's
    open transaction is committed first: rolling it back must not undo the count.)"""
    conn.commit()
    with conn.transaction():
        for kind, value in sorted(keys):
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 17))", (f"{kind}:{value}",))
        for kind, value in keys:
            wait = _wait(conn, kind, value)
            if wait > timedelta(0):
                seconds = int(wait.total_seconds()) + 1
                msg = f"Too many {_WHAT[kind]}. Try again in {seconds} s."
                raise Throttled(msg, wait)
        rows = conn.execute(
            "INSERT INTO sign_in_failures (key) SELECT unnest(%s::text[]) RETURNING id",
            ([f"{kind}:{value}" for kind, value in keys],),
        ).fetchall()
    return [r["id"] for r in rows]


def _dummy_check(password: str) -> None:
    """The argon2 work of a real check, for attempts that cannot succeed."""
    with contextlib.suppress(VerificationError, InvalidHashError):
        _HASHER.verify(_DUMMY_HASH, password)


def authenticate(conn: Connection, username: str, password: str, *, client: str) -> User:
    """The account if the password is right; AuthError (Throttled) if not. `client` is the
    address the attempt came from. The attempt counts as a failure of the account and the
    address from before its password is checked (one atomic step with the limit's check);
    a success takes that back and forgets the account's failures."""
    username = username.strip().lower()
    client = client[:64]
    if not USERNAME.match(username):  # no such account can exist: the same work, one failure
        _count_attempt(conn, [("ip", client)])
        _dummy_check(password)
        msg = "Wrong username or password."
        raise AuthError(msg)
    attempt = _count_attempt(conn, [("user", username), ("ip", client)])
    row = conn.execute(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = %s",  # noqa: S608
        (username,),
    ).fetchone()
    conn.commit()  # what follows is recorded in transactions of its own
    stored = row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH
    try:
        ok = _HASHER.verify(stored, password) and row is not None and row["password_hash"] is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or row["disabled"]:  # counted already
        msg = "This account is disabled." if ok and row is not None else "Wrong username or password."
        raise AuthError(msg)
    with conn.transaction():
        conn.execute(
            "DELETE FROM sign_in_failures WHERE key = %s OR id = ANY(%s)", (f"user:{username}", attempt)
        )
        if _HASHER.check_needs_rehash(stored):
            conn.execute(
                "UPDATE users SET password_hash = %s WHERE username = %s", (hash_password(password), username)
            )
    return _user(row)


def count_sso_start(conn: Connection, *, client: str) -> None:
    """Record that single sign-on was started from this address; Throttled when it has
    started too many lately (each start costs a provider round trip and a stored request)."""
    _count_attempt(conn, [("sso", client[:64])])


def take_back_sso_start(conn: Connection, *, client: str) -> None:
    """A single sign-on from this address succeeded: its start no longer counts (so a store's
    staff signing in at a shift change, behind one address, never lock each other out)."""
    with conn.transaction():
        conn.execute(
            """DELETE FROM sign_in_failures WHERE id = (
                   SELECT max(id) FROM sign_in_failures WHERE key = %s)""",
            (f"sso:{client[:64]}",),
        )


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
    return _user(row) if row else None


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


def scope_of(conn: Connection, user: User) -> Scope:
    """The stores this account may see: all of them, or a store manager's own."""
    if user.role == "store_manager":
        rows = conn.execute("SELECT id FROM stores WHERE id = ANY(%s)", (list(user.stores),)).fetchall()
    else:
        rows = conn.execute("SELECT id FROM stores").fetchall()
    conn.commit()
    return Scope(frozenset(r["id"] for r in rows))


def mark_seen(conn: Connection, scope: Scope, username: str, incident_ids: Iterable[str]) -> int:
    """Mark incidents (within the scope) seen by this user; returns how many were new."""
    ids = list(dict.fromkeys(incident_ids))
    with conn.transaction():
        return conn.execute(
            """INSERT INTO incident_seen (incident_id, username)
               SELECT incident_id, %s FROM incidents WHERE incident_id = ANY(%s) AND store_id = ANY(%s)
               ON CONFLICT DO NOTHING""",
            (username, ids, sorted(scope.store_ids)),
        ).rowcount


SSO_REQUEST_TTL = timedelta(minutes=10)


def user_by_email(conn: Connection, email: str) -> User | None:
    """The enabled account with this email (case does not matter), or None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower(%s) AND disabled_at IS NULL",  # noqa: S608
        (email,),
    ).fetchone()
    conn.commit()
    return _user(row) if row else None


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


def purge_sign_in_records(conn: Connection, *, keep_sessions: timedelta = timedelta(days=30)) -> int:
    """Forget what sign-in no longer needs: failures past the throttling window, sessions
    ended or expired more than `keep_sessions` ago, single sign-on attempts never finished.
    Returns the rows removed (the rollup scheduler calls it with retention)."""
    with conn.transaction():
        removed = conn.execute(
            "DELETE FROM sign_in_failures WHERE at < now() - %s", (FAILURE_WINDOW,)
        ).rowcount
        removed += conn.execute(
            "DELETE FROM user_sessions WHERE least(coalesce(ended_at, expires_at), expires_at) < now() - %s",
            (keep_sessions,),
        ).rowcount
        removed += conn.execute(
            "DELETE FROM sso_requests WHERE created_at < now() - %s", (SSO_REQUEST_TTL,)
        ).rowcount
    return removed
