"""Dashboard accounts (owner of `users`): roles, store scope, passwords and the password check.

Roles: `admin` (everything, and the settings pages), `analyst` (every store), and
`store_manager` (only the stores listed on the account). `scope_of` turns an account into the
`Scope` every dashboard question takes.

Passwords are kept as argon2id hashes. `authenticate` counts each attempt before it looks at
the password (`warehouse.sign_in_throttle`), and unknown accounts cost the same argon2 work
as known ones (so timing does not tell which accounts exist). A change that must end an
account's sessions (a new password, a new scope, disabling it) ends them in its own
transaction, through `warehouse.sessions`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shrinkwatch.errors import ShrinkwatchError
from warehouse.db import Connection
from warehouse.scope import Scope, User
from warehouse.sessions import end_sessions
from warehouse.sign_in_throttle import AuthError, count_attempt, forget_failures

ROLES = ("admin", "analyst", "store_manager")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
_HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) parameters
_DUMMY_HASH = _HASHER.hash("not a password anybody has")
_COLUMNS = "username, role, stores, display_name, email, disabled_at IS NOT NULL AS disabled"


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
    return User.from_row(row)


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
            end_sessions(conn, username, "role or stores changed")
    return get_user(conn, username)


def get_user(conn: Connection, username: str) -> User:
    """The account, or ShrinkwatchError naming it."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE username = %s", (username,)).fetchone()  # noqa: S608
    if row is None:
        msg = f"no user {username!r}"
        raise ShrinkwatchError(msg)
    return User.from_row(row)


def list_users(conn: Connection) -> list[User]:
    """Every account, by username."""
    return [User.from_row(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username")]  # noqa: S608


def set_password(conn: Connection, username: str, password: str) -> int:
    """Set a new password; every session of the account ends. Returns how many ended."""
    get_user(conn, username)
    check_password(username, password)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE username = %s",
            (hash_password(password), username),
        )
        forget_failures(conn, username)
        return end_sessions(conn, username, "password changed")


def disable_user(conn: Connection, username: str) -> int:
    """Disable the account; its sessions end at once. Returns how many ended."""
    get_user(conn, username)
    with conn.transaction():
        conn.execute(
            """UPDATE users SET disabled_at = coalesce(disabled_at, now()), updated_at = now()
               WHERE username = %s""",
            (username,),
        )
        return end_sessions(conn, username, "user disabled")


def enable_user(conn: Connection, username: str) -> None:
    """Let a disabled account sign in again."""
    get_user(conn, username)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET disabled_at = NULL, updated_at = now() WHERE username = %s", (username,)
        )


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
        count_attempt(conn, [("ip", client)])
        _dummy_check(password)
        msg = "Wrong username or password."
        raise AuthError(msg)
    attempt = count_attempt(conn, [("user", username), ("ip", client)])
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
        forget_failures(conn, username, attempt)
        if _HASHER.check_needs_rehash(stored):
            conn.execute(
                "UPDATE users SET password_hash = %s WHERE username = %s", (hash_password(password), username)
            )
    return User.from_row(row)


def user_by_email(conn: Connection, email: str) -> User | None:
    """The enabled account with this email (case does not matter), or None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower(%s) AND disabled_at IS NULL",  # noqa: S608
        (email,),
    ).fetchone()
    conn.commit()
    return User.from_row(row) if row else None


def scope_of(conn: Connection, user: User) -> Scope:
    """The stores this account may see: all of them, or a store manager's own."""
    if user.role == "store_manager":
        rows = conn.execute("SELECT id FROM stores WHERE id = ANY(%s)", (list(user.stores),)).fetchall()
    else:
        rows = conn.execute("SELECT id FROM stores").fetchall()
    conn.commit()
    return Scope(frozenset(r["id"] for r in rows))
