"""API tokens (owner of `api_tokens`): what the integration API authenticates, and who a request
acts as (`ApiCaller`).

A token is `swt_<token_id>_<secret>`: a public id of 12 hex characters (listed, logged, used to
find the row) and a secret of 256 bits from `secrets`, in hex. It is shown once, by `add_token`;
PostgreSQL keeps only the SHA-256 of the whole string. A slow password hash (argon2) is for
secrets people choose, which can be guessed word by word; nobody can search 2**256 random values,
fast hash or not, so one SHA-256 is as good and costs a request nothing. The presented token's
digest is compared with `hmac.compare_digest`.

A token acts either for a dashboard account (`username`: the API sees what that account sees,
and no more, whatever the token says) or for a service (no account: a SOC's or a data team's
integration). Its store scope is a list of stores, `()` for a user's token (every store the
user may see), or `("*",)` for a service token given every store; a service token must say.
Permissions: `read` (always), `review` (post a verdict), `export` (CSV exports and evidence
downloads through the API). Every role may do all three in the dashboard (a store manager
reviews and exports their own stores), so a user's token is limited by its scope alone; no
token can reveal faces, which the API does not offer.

`authenticate_token` asks PostgreSQL on every request, with no cache of good tokens: a revoked
token, an expired one, or one whose user is disabled or deleted fails on the very next request,
and the scope is the token's stores as the `stores` table and the user's account are now. Every
way a token can fail gives the same None (the API answers 401 and says no more). The last use
is written at most once a minute per token, so a busy integration does not write a row per
request. A disabled user's tokens fail while the account is disabled (and work again if it is
enabled): revoke a token to end it for good.

Each function commits its own work (call them outside a `conn.transaction()` block): a token
added or revoked counts for every other connection at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shrinkwatch.contracts import text_problem
from shrinkwatch.errors import ShrinkwatchError
from warehouse.accounts import get_user, scope_of
from warehouse.db import Connection
from warehouse.scope import Scope, User, check_text

PERMISSIONS = ("read", "review", "export")
ALL_STORES = "*"
# What each dashboard role may do; a user's token gets the smaller of this and its own list.
ROLE_PERMISSIONS = {"admin": PERMISSIONS, "analyst": PERMISSIONS, "store_manager": PERMISSIONS}
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
LAST_USED_EVERY = timedelta(minutes=1)  # the last use is written at most this often per token
_TOKEN = re.compile(r"swt_([0-9a-f]{12})_([0-9a-f]{64})")
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")
_COLUMNS = """t.token_id, t.name, t.username, t.service, t.stores, t.permissions, t.created_at,
    t.created_by, t.expires_at, t.last_used_at, t.last_used_from, t.revoked_at"""


@dataclass(frozen=True)
class ApiToken:
    """A token as listed: never its secret."""

    token_id: str
    name: str
    username: str | None
    service: bool
    stores: tuple[str, ...]  # () = the user's stores; ("*",) = every store (a service token)
    permissions: tuple[str, ...]  # in PERMISSIONS order, "read" always
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    last_used_from: str | None = None  # the client address of that last use

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ApiToken:
        return cls(
            row["token_id"],
            row["name"],
            row["username"],
            row["service"],
            tuple(row["stores"]),
            tuple(row["permissions"]),
            row["created_at"],
            row["created_by"],
            row["expires_at"],
            row["last_used_at"],
            row["revoked_at"],
            row["last_used_from"],
        )

    @property
    def owner(self) -> str:
        """Who the token acts for: the username, or "service"."""
        return self.username or "service"


@dataclass(frozen=True)
class ApiCaller:
    """Who an authenticated request acts as, with what it may see and do now."""

    token: ApiToken
    user: User | None  # the account a user's token acts for
    scope: Scope  # the token's stores that exist now (and that its user may see now)
    permissions: frozenset[str]

    @property
    def name(self) -> str:
        """The caller as audit rows name it."""
        if self.user is None:
            return f"service token {self.token.name}"
        return f"token {self.token.name} of {self.user.username}"

    def may(self, permission: str) -> bool:
        """Whether the caller holds this permission (ValueError for a name not in PERMISSIONS)."""
        if permission not in PERMISSIONS:
            msg = f"unknown permission {permission!r}; expected one of {', '.join(PERMISSIONS)}"
            raise ValueError(msg)
        return permission in self.permissions


def new_token() -> tuple[str, str]:
    """A fresh (token_id, token string): 48 random bits of public id, 256 of secret."""
    token_id = secrets.token_hex(6)
    return token_id, f"swt_{token_id}_{secrets.token_hex(32)}"


def parse_token(presented: str) -> str | None:
    """The token id of a well-formed token string, or None."""
    match = _TOKEN.fullmatch(presented) if isinstance(presented, str) and len(presented) == 81 else None
    return match[1] if match else None


def digest(token: str) -> bytes:
    """What is stored of a token: the SHA-256 of the whole string."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def check_permissions(permissions: Iterable[str]) -> tuple[str, ...]:
    """The permissions in PERMISSIONS order with "read" added; ShrinkwatchError for others."""
    wanted = set(permissions)
    unknown = sorted(wanted - set(PERMISSIONS), key=repr)
    if unknown:
        msg = f"unknown permission(s) {', '.join(map(repr, unknown))}; expected {', '.join(PERMISSIONS)}"
        raise ShrinkwatchError(msg)
    return tuple(p for p in PERMISSIONS if p == "read" or p in wanted)


def check_name(name: str) -> None:
    """ShrinkwatchError unless `name` is a good token name (and cannot be read as a token id)."""
    if not NAME.fullmatch(name):
        msg = f"token name {name!r}: use 1-64 of a-z 0-9 . _ -, starting with a letter or digit"
        raise ShrinkwatchError(msg)
    if _TOKEN_ID.fullmatch(name):
        msg = f"token name {name!r}: 12 hex characters read as a token id; choose another name"
        raise ShrinkwatchError(msg)


def caller_of(token: ApiToken, user: User | None, stores_now: Iterable[str]) -> ApiCaller:
    """The caller a valid token makes: `stores_now` are the stores the token's owner may see
    now (the user's scope, or every store for a service); the token's own list narrows them."""
    visible = frozenset(stores_now)
    scope = visible if token.stores in ((), (ALL_STORES,)) else visible & frozenset(token.stores)
    allowed = set(ROLE_PERMISSIONS.get(user.role, ())) if user is not None else set(PERMISSIONS)
    return ApiCaller(token, user, Scope(scope), frozenset(token.permissions) & allowed)


def _store_ids(conn: Connection, only: Iterable[str] | None = None) -> set[str]:
    """The ids in the stores table (of `only`, when given)."""
    if only is None:
        rows = conn.execute("SELECT id FROM stores").fetchall()
    else:
        rows = conn.execute("SELECT id FROM stores WHERE id = ANY(%s)", (list(only),)).fetchall()
    return {r["id"] for r in rows}


def _token_stores(
    conn: Connection, username: str | None, stores: Iterable[str], all_stores: bool
) -> tuple[str, ...]:
    """The store list a new token is given; ShrinkwatchError naming what is wrong (an unknown
    or disabled user, a store the user may not see, a service token without stores)."""
    wanted = tuple(dict.fromkeys(stores))
    check_text("stores", *wanted)
    if all_stores and wanted:
        msg = "give stores or all stores, not both"
        raise ShrinkwatchError(msg)
    if username is None and not all_stores and not wanted:
        msg = "a service token needs its stores (--store), or every store (--all-stores)"
        raise ShrinkwatchError(msg)
    known = _store_ids(conn, wanted)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        msg = f"unknown store(s): {', '.join(unknown)} (apply the site file first)"
        raise ShrinkwatchError(msg)
    if username is None:
        return (ALL_STORES,) if all_stores else wanted
    check_text("username", username)
    user = get_user(conn, username)
    if user.disabled:
        msg = f"user {username!r} is disabled: enable the account before giving it a token"
        raise ShrinkwatchError(msg)
    visible = scope_of(conn, user).store_ids
    hidden = [s for s in wanted if s not in visible]
    if hidden:
        msg = f"store(s) {', '.join(hidden)}: not a store user {username!r} may see"
        raise ShrinkwatchError(msg)
    return wanted


def add_token(
    conn: Connection,
    *,
    name: str,
    username: str | None = None,
    service: bool = False,
    stores: Iterable[str] = (),
    all_stores: bool = False,
    permissions: Iterable[str] = ("read",),
    expires_in: timedelta | None = timedelta(days=90),
    created_by: str,
) -> tuple[ApiToken, str]:
    """A new token for a user (`username`) or a service (`service=True`); returns it and its
    token string, which is not kept and cannot be shown again. `stores` narrows the token (a
    user's token to stores that user may see); `expires_in` None never expires. Errors name
    what is wrong."""
    check_name(name)
    check_text("created_by", created_by)
    if service == (username is not None):
        msg = "a token is either a user's (--user) or a service's (--service)"
        raise ShrinkwatchError(msg)
    granted = check_permissions(permissions)
    scope = _token_stores(conn, username, stores, all_stores)
    for _attempt in range(3):  # a new id again in the unlikely case that it is taken
        token_id, token = new_token()
        row = conn.execute(
            f"""INSERT INTO api_tokens AS t (token_id, name, username, service, stores, permissions,
                   secret_sha256, created_by, expires_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + %s::interval)
               ON CONFLICT DO NOTHING RETURNING {_COLUMNS}""",  # noqa: S608 (our column list)
            (
                token_id,
                name,
                username,
                service,
                list(scope),
                list(granted),
                digest(token),
                created_by,
                expires_in,
            ),
        ).fetchone()
        if row is not None:
            conn.commit()
            return ApiToken.from_row(row), token
        taken = conn.execute("SELECT 1 FROM api_tokens WHERE name = %s AND revoked_at IS NULL", (name,))
        if taken.fetchone():
            msg = f"a token named {name!r} exists already (revoke it first, or choose another name)"
            raise ShrinkwatchError(msg)
    msg = "could not find a free token id"
    raise ShrinkwatchError(msg)


def list_tokens(conn: Connection, *, include_revoked: bool = False) -> list[ApiToken]:
    """The tokens (live ones, or every one), oldest first; never a secret."""
    rows = conn.execute(
        f"""SELECT {_COLUMNS} FROM api_tokens t
            WHERE %s OR t.revoked_at IS NULL ORDER BY t.created_at, t.name""",  # noqa: S608
        (include_revoked,),
    ).fetchall()
    conn.commit()
    return [ApiToken.from_row(r) for r in rows]


def revoke_token(conn: Connection, name_or_id: str, *, by: str) -> bool:
    """Revoke the live token with this name or id; False when none matches. The next request
    with it fails."""
    check_text("token", name_or_id)
    check_text("by", by)
    revoked = conn.execute(
        """UPDATE api_tokens SET revoked_at = now(), revoked_by = %s
           WHERE revoked_at IS NULL AND (name = %s OR token_id = %s)""",
        (by, name_or_id, name_or_id),
    ).rowcount
    conn.commit()
    return revoked > 0


def purge_tokens(conn: Connection, keep: timedelta) -> int:
    """Delete the tokens revoked or expired more than `keep` ago (their rows name who had
    access, from where it was last used, and who ended it: kept that long, then forgotten);
    returns how many. Live tokens, and those ended more recently, stay listed."""
    return conn.execute(
        """DELETE FROM api_tokens
           WHERE least(coalesce(revoked_at, 'infinity'), coalesce(expires_at, 'infinity')) < now() - %s""",
        (keep,),
    ).rowcount


def authenticate_token(conn: Connection, presented: str, *, client: str) -> ApiCaller | None:
    """The caller this token string acts as, or None: malformed, unknown, wrong secret, expired,
    revoked, or its user disabled or deleted (one answer for all). `client` is the address the
    request came from, kept with the last use."""
    token_id = parse_token(presented)
    if token_id is None:
        return None
    row = conn.execute(
        f"""SELECT {_COLUMNS}, t.secret_sha256, (t.expires_at IS NULL OR t.expires_at > now()) AS current,
                   u.role, u.stores AS user_stores, u.display_name, u.email,
                   u.disabled_at IS NOT NULL AS disabled
            FROM api_tokens t LEFT JOIN users u ON u.username = t.username
            WHERE t.token_id = %s""",  # noqa: S608
        (token_id,),
    ).fetchone()
    conn.commit()
    if row is None or not hmac.compare_digest(bytes(row["secret_sha256"]), digest(presented)):
        return None
    if row["revoked_at"] is not None or not row["current"]:
        return None
    token = ApiToken.from_row(row)
    user = None
    if not token.service:
        if row["role"] is None or row["disabled"]:
            return None
        user = User.from_row({**row, "stores": row["user_stores"]})
    stores_now = scope_of(conn, user).store_ids if user is not None else _store_ids(conn)
    _mark_used(conn, token_id, client)
    return caller_of(token, user, stores_now)


def _mark_used(conn: Connection, token_id: str, client: str) -> None:
    """Note the token's use, unless it was noted less than LAST_USED_EVERY ago."""
    address = client[:64] if text_problem(client) is None else None
    conn.execute(
        """UPDATE api_tokens SET last_used_at = now(), last_used_from = %s
           WHERE token_id = %s AND (last_used_at IS NULL OR last_used_at <= now() - %s::interval)""",
        (address, token_id, LAST_USED_EVERY),
    )
    conn.commit()
