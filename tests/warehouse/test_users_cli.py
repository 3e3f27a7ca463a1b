"""`shrinkwatch users ...` as an administrator types it (a real PostgreSQL behind it)."""

from __future__ import annotations

from pathlib import Path

from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.support import cli_env, run_cli
from warehouse.accounts import authenticate
from warehouse.db import connect
from warehouse.sessions import session_user, start_session
from warehouse.site_tables import apply_site_config


def test_add_list_passwd_disable(settings: Settings, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(
            conn, parse_site_config("stores: [{id: store-001, name: Leeds, timezone: Europe/London}]")
        )
    env = cli_env(settings, tmp_path)

    def users(*args: str, password: str | None = None) -> tuple[int, str]:
        done = run_cli(["users", *args], env=env, input=password and password + "\n")
        return done.returncode, done.stdout + done.stderr

    assert users("list") == (0, "no users yet: add one with `shrinkwatch users add NAME --role admin`\n")
    code, out = users(
        "add",
        "mo",
        "--role",
        "store_manager",
        "--store",
        "store-009",
        "--password-stdin",
        password="a-long-password",
    )
    assert code == 2 and "unknown store(s): store-009" in out and "Traceback" not in out
    code, out = users(
        "add", "mo", "--role", "store_manager", "--store", "store-001", "--password-stdin", password="short"
    )
    assert code == 2 and "at least 10 characters" in out
    code, out = users(
        "add",
        "mo",
        "--role",
        "store_manager",
        "--store",
        "store-001",
        "--name",
        "Mo",
        "--password-stdin",
        password="a-long-password",
    )
    assert (code, out) == (0, "added mo (store_manager; store-001)\n")
    code, out = users("list")
    assert code == 0 and out.split() == ["mo", "store_manager", "store-001", "active", "Mo"]

    with connect(settings.database_dsn) as conn:
        token = start_session(conn, "mo", hours=1)
    code, out = users("passwd", "mo", "--password-stdin", password="another-long-one")
    assert (code, out) == (0, "password of mo changed; 1 session(s) ended\n")
    with connect(settings.database_dsn) as conn:
        assert session_user(conn, token) is None
        assert authenticate(conn, "mo", "another-long-one", client="test").username == "mo"
        token = start_session(conn, "mo", hours=1)
    assert users("disable", "mo") == (0, "disabled mo; 1 session(s) ended\n")
    code, out = users("disable", "nobody")
    assert code == 2 and "no user 'nobody'" in out
