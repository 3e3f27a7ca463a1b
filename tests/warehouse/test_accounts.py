"""Accounts, sign-in, throttling and server-side sessions on the real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from warehouse.accounts import (
    add_user,
    authenticate,
    disable_user,
    enable_user,
    scope_of,
    set_password,
    update_user,
)
from warehouse.api_tokens import add_token, list_tokens, revoke_token
from warehouse.db import Connection, connect
from warehouse.scope import Scope
from warehouse.sessions import end_session, open_sessions, session_user, start_session
from warehouse.sign_in_throttle import FREE_FAILURES, AuthError, Throttled
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
"""
PASSWORD = "correct-horse-battery"


@pytest.fixture
def conn(settings: Settings) -> Iterator[Connection]:
    with connect(settings.database_dsn) as c:
        apply_site_config(c, parse_site_config(SITE))
        yield c


@pytest.mark.parametrize(
    ("username", "role", "stores", "password", "error"),
    [
        ("Ana", "analyst", (), PASSWORD, "username 'Ana': use 1-64 of a-z"),
        ("ana;drop", "analyst", (), PASSWORD, "username 'ana;drop'"),
        ("ana", "owner", (), PASSWORD, "role 'owner': must be one of admin, analyst, store_manager"),
        ("mo", "store_manager", (), PASSWORD, "a store_manager needs at least one store"),
        ("mo", "store_manager", ("store-009",), PASSWORD, "unknown store(s): store-009"),
        ("ana", "analyst", ("store-001",), PASSWORD, "--store is for store managers"),
        ("ana", "analyst", (), "short", "at least 10 characters"),
        ("ana-analyst", "analyst", (), "ANA-ANALYST", "must not be the username"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason(
    conn: Connection, username: str, role: str, stores: tuple[str, ...], password: str, error: str
) -> None:
    with pytest.raises(ShrinkwatchError, match=error.replace("(", r"\(").replace(")", r"\)")):
        add_user(conn, username, role, password=password, stores=stores)
    assert conn.execute("SELECT count(*) AS n FROM users").fetchone() == {"n": 0}


def test_password_is_stored_as_argon2id_and_checked(conn: Connection) -> None:
    add_user(conn, "ana", "analyst", password=PASSWORD, display_name="Ana")
    stored = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored is not None and stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in stored["password_hash"]
    assert authenticate(conn, "ana", PASSWORD, client="10.0.0.1").label == "Ana"
    assert authenticate(conn, "  ANA ", PASSWORD, client="10.0.0.1").username == "ana"
    for wrong in ("wrong-password-1", ""):
        with pytest.raises(AuthError, match="Wrong username or password"):
            authenticate(conn, "ana", wrong, client="10.0.0.1")
    with pytest.raises(AuthError, match="Wrong username or password"):  # the same words: no enumeration
        authenticate(conn, "nobody", PASSWORD, client="10.0.0.1")
    with pytest.raises(ShrinkwatchError, match="exists already"):
        add_user(conn, "ana", "analyst", password=PASSWORD)


def test_wrong_passwords_are_throttled_per_account_and_address(conn: Connection) -> None:
    add_user(conn, "ana", "analyst", password=PASSWORD)
    for _ in range(FREE_FAILURES["user"]):
        with pytest.raises(AuthError) as raised:
            authenticate(conn, "ana", "guess-guess-guess", client="10.0.0.1")
        assert not isinstance(raised.value, Throttled)
        conn.rollback()  # a caller that rolls back on errors must not undo the count
    # Now even the right password waits: guessing gains nothing.
    with pytest.raises(
        Throttled, match=r"Too many failed sign-ins for this account. Try again in \d+ s"
    ) as t:
        authenticate(conn, "ana", PASSWORD, client="10.0.0.2")
    assert timedelta(0) < t.value.retry_after <= timedelta(seconds=30)
    # ... until the wait is over (the failures are moved back in time here).
    conn.execute("UPDATE sign_in_failures SET at = at - interval '31 seconds'")
    assert authenticate(conn, "ana", PASSWORD, client="10.0.0.2").username == "ana"
    assert conn.execute("SELECT count(*) AS n FROM sign_in_failures WHERE key = 'user:ana'").fetchone() == {
        "n": 0
    }

    # One address trying many accounts is throttled as an address.
    for i in range(FREE_FAILURES["ip"]):
        with pytest.raises(AuthError):
            authenticate(conn, f"user{i}", "guess-guess-guess", client="10.9.9.9")
    with pytest.raises(Throttled, match="for this address"):
        authenticate(conn, "ana", PASSWORD, client="10.9.9.9")


def test_parallel_guesses_are_counted_before_any_is_checked(settings: Settings, conn: Connection) -> None:
    """Eight wrong passwords sent at once, each on its own connection (as the web server's
    threads send them): only the first five are checked, the other three are throttled."""
    from concurrent.futures import ThreadPoolExecutor

    add_user(conn, "ana", "analyst", password=PASSWORD)
    conn.commit()
    start = threading.Barrier(8)

    def guess(i: int) -> str:
        with connect(settings.database_dsn) as own:
            start.wait()
            try:
                authenticate(own, "ana", f"guess-number-{i}", client=f"10.0.1.{i}")
            except Throttled:
                return "throttled"
            except AuthError:
                return "checked"
        return "signed in"

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(guess, range(8)))
    assert outcomes == ["checked"] * FREE_FAILURES["user"] + ["throttled"] * (8 - FREE_FAILURES["user"])
    counted = conn.execute("SELECT count(*) AS n FROM sign_in_failures WHERE key = 'user:ana'").fetchone()
    assert counted == {"n": FREE_FAILURES["user"]}


def test_a_success_takes_back_only_its_own_record(conn: Connection) -> None:
    add_user(conn, "ana", "analyst", password=PASSWORD)
    with pytest.raises(AuthError):
        authenticate(conn, "bob", "guess-guess-guess", client="10.0.0.7")
    assert authenticate(conn, "ana", PASSWORD, client="10.0.0.7").username == "ana"
    keys = [r["key"] for r in conn.execute("SELECT key FROM sign_in_failures ORDER BY id")]
    assert keys == ["user:bob", "ip:10.0.0.7"]  # bob's failure stays; ana's attempt is gone


def test_starting_single_sign_on_is_limited_per_address(conn: Connection) -> None:
    from warehouse.sign_in_throttle import count_sso_start

    for _ in range(FREE_FAILURES["sso"]):
        count_sso_start(conn, client="10.0.0.9")
    with pytest.raises(Throttled, match=r"Too many single sign-on attempts from this address"):
        count_sso_start(conn, client="10.0.0.9")
    count_sso_start(conn, client="10.0.0.10")  # another address is not held up


def test_sessions_end_on_sign_out_password_change_disable_and_expiry(conn: Connection) -> None:
    add_user(conn, "ana", "analyst", password=PASSWORD)
    first, second = (start_session(conn, "ana", hours=1) for _ in range(2))
    assert session_user(conn, first) is not None
    stored = conn.execute("SELECT token_sha256 FROM user_sessions").fetchall()
    assert all(first.encode() not in bytes(r["token_sha256"]) for r in stored)  # only digests kept

    assert end_session(conn, first)
    assert session_user(conn, first) is None
    assert session_user(conn, second) is not None  # the other browser stays signed in

    set_password(conn, "ana", "another-good-password")
    assert session_user(conn, second) is None
    with pytest.raises(AuthError):
        authenticate(conn, "ana", PASSWORD, client="10.0.0.1")

    third = start_session(conn, "ana", hours=1)
    disable_user(conn, "ana")
    assert session_user(conn, third) is None
    with pytest.raises(AuthError, match="disabled"):
        authenticate(conn, "ana", "another-good-password", client="10.0.0.1")
    enable_user(conn, "ana")
    assert session_user(conn, third) is None  # ended for good

    fourth = start_session(conn, "ana", hours=1)
    conn.execute("UPDATE user_sessions SET expires_at = now() - interval '1 second'")
    assert session_user(conn, fourth) is None
    assert session_user(conn, "not-a-token") is None
    assert session_user(conn, None) is None
    fifth = start_session(conn, "ana", hours=1)
    assert open_sessions(conn, [first, fourth, fifth, "not-a-token", ""]) == {fifth}


def test_scope_follows_the_role(conn: Connection) -> None:
    analyst = add_user(conn, "ana", "analyst", password=PASSWORD)
    manager = add_user(conn, "mo", "store_manager", password=PASSWORD, stores=["store-002"])
    assert scope_of(conn, analyst) == Scope.of("store-001", "store-002")
    assert scope_of(conn, manager) == Scope.of("store-002")
    token = start_session(conn, "mo", hours=1)
    update_user(conn, "mo", stores=["store-001"])  # a new scope ends the sessions of the old one
    assert session_user(conn, token) is None
    assert scope_of(conn, update_user(conn, "mo", display_name="Mo")) == Scope.of("store-001")


def test_old_sign_in_records_are_purged(conn: Connection) -> None:
    from warehouse.retention import purge_sign_in_records
    from warehouse.single_sign_on import save_sso_request

    add_user(conn, "ana", "analyst", password=PASSWORD)
    with pytest.raises(AuthError):
        authenticate(conn, "ana", "a-wrong-guess", client="10.0.0.1")
    start_session(conn, "ana", hours=1)
    save_sso_request(conn, "state-1", "nonce", "verifier", "/")
    for name in ("revoked-long-ago", "expired-long-ago", "revoked-lately", "live", "no-expiry"):
        expires_in = None if name == "no-expiry" else timedelta(days=90)
        add_token(conn, name=name, username="ana", created_by="tests", expires_in=expires_in)
    assert purge_sign_in_records(conn) == 0  # all of it still in use
    conn.execute("UPDATE sign_in_failures SET at = at - interval '1 hour'")
    conn.execute("UPDATE user_sessions SET expires_at = now() - interval '31 days'")
    conn.execute("UPDATE sso_requests SET created_at = created_at - interval '11 minutes'")
    conn.commit()
    for name in ("revoked-long-ago", "revoked-lately"):
        assert revoke_token(conn, name, by="tests")
    ended = [("revoked-long-ago", "revoked_at", 91), ("revoked-lately", "revoked_at", 89)]
    ended.append(("expired-long-ago", "expires_at", 91))
    for name, column, days in ended:
        ago = timedelta(days=days)
        conn.execute(f"UPDATE api_tokens SET {column} = now() - %s WHERE name = %s", (ago, name))
    conn.commit()
    assert purge_sign_in_records(conn) == 2 + 1 + 1 + 2  # (a failure per account and per address)
    left = {token.name for token in list_tokens(conn, include_revoked=True)}
    assert left == {"revoked-lately", "live", "no-expiry"}
