"""API tokens on the real PostgreSQL server: who a token acts as, what it may see, and every way
it stops working."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from warehouse import api_tokens
from warehouse.accounts import add_user, disable_user, enable_user, update_user
from warehouse.api_tokens import (
    PERMISSIONS,
    add_token,
    authenticate_token,
    caller_of,
    check_permissions,
    list_tokens,
    new_token,
    parse_token,
    revoke_token,
)
from warehouse.db import Connection, connect
from warehouse.scope import QueryError
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
  - {id: store-003, name: Lyon, timezone: Europe/Paris}
"""
EVERY_STORE = {"store-001", "store-002", "store-003"}
PASSWORD = "correct-horse-battery"


@pytest.fixture
def conn(settings: Settings) -> Iterator[Connection]:
    with connect(settings.database_dsn) as c:
        apply_site_config(c, parse_site_config(SITE))
        add_user(c, "mo", "store_manager", password=PASSWORD, stores=["store-001"])
        add_user(c, "ana", "analyst", password=PASSWORD)
        add_user(c, "gone", "analyst", password=PASSWORD)
        disable_user(c, "gone")
        c.commit()
        yield c


def _token(conn: Connection, name: str, **kwargs: Any) -> str:
    kwargs.setdefault("username", None if kwargs.get("service") else "ana")
    return add_token(conn, name=name, created_by="test", **kwargs)[1]


# --- who a token acts as --------------------------------------------------------------------


def test_a_store_managers_token_acts_for_them_in_their_store_only(conn: Connection) -> None:
    token, secret = add_token(conn, name="mo-tool", username="mo", permissions=["review"], created_by="test")
    assert (token.username, token.service, token.stores, token.permissions) == (
        "mo",
        False,
        (),
        ("read", "review"),
    )
    assert secret.startswith(f"swt_{token.token_id}_") and len(secret) == 81

    caller = authenticate_token(conn, secret, client="10.0.0.7")
    assert caller is not None
    assert caller.token == token
    assert caller.user is not None and (caller.user.username, caller.user.role) == ("mo", "store_manager")
    assert caller.scope.store_ids == {"store-001"}
    assert caller.permissions == {"read", "review"}
    assert caller.may("read") and caller.may("review") and not caller.may("export")
    assert caller.name == "token mo-tool of mo"
    with pytest.raises(ValueError, match="unknown permission 'admin'"):
        caller.may("admin")


def test_a_token_narrowed_to_one_store_of_an_analyst_sees_that_one(conn: Connection) -> None:
    narrow = authenticate_token(conn, _token(conn, "ana-002", stores=["store-002"]), client="t")
    wide = authenticate_token(conn, _token(conn, "ana-all"), client="t")
    assert narrow is not None and wide is not None
    assert narrow.scope.store_ids == {"store-002"}
    assert wide.scope.store_ids == EVERY_STORE
    assert narrow.permissions == wide.permissions == {"read"}


def test_a_users_token_follows_the_account_as_it_is_now(conn: Connection) -> None:
    """The scope is the token's stores within what the user may see at each request."""
    secret = _token(conn, "mo-both", username="mo", stores=["store-001"])
    update_user(conn, "mo", stores=["store-002"])  # no longer store-001's manager
    caller = authenticate_token(conn, secret, client="t")
    assert caller is not None and caller.scope.store_ids == set()
    update_user(conn, "mo", role="analyst")
    caller = authenticate_token(conn, secret, client="t")
    assert caller is not None and caller.scope.store_ids == {"store-001"}


def test_service_tokens_see_their_stores_as_the_stores_table_is_now(conn: Connection) -> None:
    some = _token(conn, "soc", service=True, stores=["store-001", "store-003"], permissions=PERMISSIONS)
    every = _token(conn, "lake", service=True, all_stores=True)
    bath = "  - {id: store-004, name: Bath, timezone: Europe/London}\n"
    apply_site_config(conn, parse_site_config(SITE + bath))  # a store opened since
    conn.commit()
    soc, lake = authenticate_token(conn, some, client="t"), authenticate_token(conn, every, client="t")
    assert soc is not None and lake is not None
    assert soc.user is None and soc.token.service and soc.token.username is None
    assert soc.scope.store_ids == {"store-001", "store-003"}
    assert soc.permissions == set(PERMISSIONS) and soc.may("export")
    assert soc.name == "service token soc"
    assert lake.token.stores == ("*",)
    assert lake.scope.store_ids == EVERY_STORE | {"store-004"}


# --- what is kept -----------------------------------------------------------------------------


def test_the_table_holds_no_secret(conn: Connection) -> None:
    issued = [
        _token(conn, "a", username="mo"),
        _token(conn, "b", service=True, all_stores=True, expires_in=None),
    ]
    for secret in issued:
        assert authenticate_token(conn, secret, client="t") is not None  # last use written too
    rows = [r["row"] for r in conn.execute("SELECT t::text AS row FROM api_tokens t")]
    assert len(rows) == 2
    for secret in issued:
        random_part = secret.rsplit("_", 1)[1]
        assert [row for row in rows if secret in row or random_part in row] == []
        assert [row for row in rows if secret.split("_")[1] in row] != []  # the public id is there


def test_list_shows_live_tokens_and_never_a_secret(conn: Connection) -> None:
    token, _ = add_token(conn, name="first", username="ana", created_by="cli:ops", expires_in=None)
    add_token(conn, name="second", service=True, stores=["store-002"], created_by="test")
    assert revoke_token(conn, "second", by="test")
    assert [t.name for t in list_tokens(conn)] == ["first"]
    assert [t.name for t in list_tokens(conn, include_revoked=True)] == ["first", "second"]
    listed = list_tokens(conn)[0]
    assert listed == token
    assert (listed.created_by, listed.expires_at, listed.last_used_at, listed.revoked_at) == (
        "cli:ops",
        None,
        None,
        None,
    )


def test_the_default_expiry_is_90_days(conn: Connection) -> None:
    token, _ = add_token(conn, name="t", username="ana", created_by="test")
    assert token.expires_at is not None and token.expires_at - token.created_at == timedelta(days=90)


# --- every way a token fails: the same None ------------------------------------------------------


def test_every_bad_token_gets_the_same_none(conn: Connection) -> None:
    good = _token(conn, "good", username="mo")
    expired = _token(conn, "expired", username="mo", expires_in=timedelta(seconds=-1))
    revoked = _token(conn, "revoked", username="mo")
    assert revoke_token(conn, "revoked", by="test")
    disabled = _token(conn, "disabled", username="ana")
    disable_user(conn, "ana")
    conn.commit()
    token_id = parse_token(good)
    assert token_id is not None
    other_secret = new_token()[1].rsplit("_", 1)[1]
    bad = {
        "wrong secret": f"swt_{token_id}_{other_secret}",
        "unknown id": new_token()[1],
        "expired": expired,
        "revoked": revoked,
        "user disabled": disabled,
        "empty": "",
        "prefix only": "swt_",
        "trailing newline": good + "\n",
        "leading space": " " + good,
        "bearer kept": "Bearer " + good,
        "upper case": good.upper(),
        "one short": good[:-1],
        "one more": good + "0",
        "a NUL": good[:-1] + "\x00",
        "a surrogate": good[:-1] + "\udc80",
        "another prefix": "swx" + good[3:],
        "the id alone": token_id,
        "huge": good * 10_000,
    }
    answers = {why: authenticate_token(conn, presented, client="t") for why, presented in bad.items()}
    assert answers == dict.fromkeys(bad)
    assert authenticate_token(conn, good, client="t") is not None  # the good one still works
    enable_user(conn, "ana")  # the account back: its token works again (revoke to end one for good)
    assert authenticate_token(conn, disabled, client="t") is not None


def test_revocation_counts_on_the_very_next_request(conn: Connection, settings: Settings) -> None:
    by_name, by_id = _token(conn, "by-name"), _token(conn, "by-id")
    for secret in (by_name, by_id):
        assert authenticate_token(conn, secret, client="t") is not None
    with connect(settings.database_dsn) as admin:  # another connection, as the CLI is
        assert revoke_token(admin, "by-name", by="cli:ops")
        assert revoke_token(admin, str(parse_token(by_id)), by="cli:ops")
        assert not revoke_token(admin, "by-name", by="cli:ops")  # revoked already
        assert not revoke_token(admin, "nothing", by="cli:ops")
    assert authenticate_token(conn, by_name, client="t") is None
    assert authenticate_token(conn, by_id, client="t") is None
    # The name is free again; the old token stays revoked.
    again = _token(conn, "by-name")
    assert authenticate_token(conn, again, client="t") is not None
    assert authenticate_token(conn, by_name, client="t") is None


def test_last_use_is_written_at_most_once_a_minute(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    assert timedelta(minutes=1) == api_tokens.LAST_USED_EVERY
    secret = _token(conn, "busy")
    assert list_tokens(conn)[0].last_used_at is None
    assert authenticate_token(conn, secret, client="10.1.2.3") is not None
    first = list_tokens(conn)[0]
    assert first.last_used_at is not None and first.last_used_from == "10.1.2.3"

    monkeypatch.setattr(
        api_tokens, "LAST_USED_EVERY", timedelta(hours=1)
    )  # "within the minute", however slow
    for _ in range(3):
        assert authenticate_token(conn, secret, client="10.9.9.9") is not None
    assert list_tokens(conn)[0] == first  # not rewritten

    monkeypatch.setattr(api_tokens, "LAST_USED_EVERY", timedelta(0))  # the minute has passed
    assert authenticate_token(conn, secret, client="10.9.9.9") is not None
    later = list_tokens(conn)[0]
    assert later.last_used_at is not None and later.last_used_at > first.last_used_at
    assert later.last_used_from == "10.9.9.9"


# --- what add_token refuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "Soc Tool", "username": "ana"}, "token name 'Soc Tool': use 1-64 of a-z"),
        ({"name": "a" * 65, "username": "ana"}, "token name 'aaaa"),
        ({"name": "soc\x00", "username": "ana"}, "token name 'soc\\x00'"),
        ({"name": "0123456789ab", "username": "ana"}, "12 hex characters read as a token id"),
        ({"name": "t", "username": "ana", "permissions": ["read", "admin"]}, "unknown permission(s) 'admin'"),
        ({"name": "t"}, "either a user's (--user) or a service's (--service)"),
        ({"name": "t", "username": "ana", "service": True}, "either a user's"),
        ({"name": "t", "username": "nobody"}, "no user 'nobody'"),
        ({"name": "t", "username": "gone"}, "user 'gone' is disabled"),
        (
            {"name": "t", "username": "mo", "stores": ["store-002"]},
            "store(s) store-002: not a store user 'mo'",
        ),
        ({"name": "t", "username": "ana", "stores": ["store-009"]}, "unknown store(s): store-009"),
        ({"name": "t", "service": True}, "a service token needs its stores"),
        ({"name": "t", "service": True, "stores": ["store-009"]}, "unknown store(s): store-009"),
        ({"name": "t", "service": True, "stores": ["store-001"], "all_stores": True}, "not both"),
        ({"name": "t", "username": "mo\x00"}, "username: 'mo\\x00' must not contain a NUL"),
        (
            {"name": "t", "service": True, "stores": ["st-\udc80"]},
            "stores: 'st-\\udc80' must be Unicode text",
        ),
        ({"name": "t", "username": "ana", "created_by": "x\x00"}, "created_by: 'x\\x00' must not contain"),
    ],
)
def test_add_refuses_with_the_reason(conn: Connection, kwargs: dict[str, Any], error: str) -> None:
    kwargs.setdefault("created_by", "test")
    with pytest.raises(ShrinkwatchError, match=re.escape(error)):
        add_token(conn, **kwargs)
    assert list_tokens(conn, include_revoked=True) == []


def test_a_live_name_is_taken(conn: Connection) -> None:
    _token(conn, "soc")
    with pytest.raises(ShrinkwatchError, match="a token named 'soc' exists already"):
        _token(conn, "soc", service=True, all_stores=True)
    assert [t.name for t in list_tokens(conn)] == ["soc"]


def test_revoke_refuses_text_postgresql_cannot_take(conn: Connection) -> None:
    with pytest.raises(QueryError, match=re.escape("token: 'x\\x00' must not contain a NUL")):
        revoke_token(conn, "x\x00", by="test")


# --- the pure parts --------------------------------------------------------------------------


def test_tokens_are_256_random_bits_behind_a_public_id() -> None:
    made = {new_token() for _ in range(50)}
    assert len({token_id for token_id, _ in made}) == 50
    for token_id, secret in made:
        assert parse_token(secret) == token_id
        assert len(secret.rsplit("_", 1)[1]) == 64  # hex: 256 bits


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ((), ("read",)),
        (["export"], ("read", "export")),
        (["export", "review", "read", "review"], ("read", "review", "export")),
    ],
)
def test_permissions_always_read_in_a_fixed_order(given: list[str], kept: tuple[str, ...]) -> None:
    assert check_permissions(given) == kept


def test_a_token_never_widens_what_its_owner_sees(conn: Connection) -> None:
    """The token's own stores narrow what its owner sees now; they never add to it."""
    token = add_token(conn, name="x", username="ana", stores=["store-001", "store-002"], created_by="t")[0]
    assert caller_of(token, None, {"store-002", "store-003"}).scope.store_ids == {"store-002"}
    assert caller_of(token, None, set()).scope.store_ids == set()
