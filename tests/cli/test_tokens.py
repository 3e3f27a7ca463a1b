"""`shrinkwatch tokens ...` as an administrator types it (a real PostgreSQL behind it): the token
printed once, alone on standard output; never in `list`; revoked for the next request."""

from __future__ import annotations

import re
from pathlib import Path

from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.support import cli_env, run_cli
from warehouse.accounts import add_user
from warehouse.api_tokens import authenticate_token, parse_token
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SITE = """
stores:
  - {id: store-001, name: Leeds, timezone: Europe/London}
  - {id: store-002, name: Boston, timezone: America/New_York}
"""


def test_add_list_revoke(settings: Settings, tmp_path: Path) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
        add_user(conn, "mo", "store_manager", password="a-long-password", stores=["store-001"])
    env = cli_env(settings, tmp_path)

    def tokens(*args: str) -> tuple[int, str, str]:
        done = run_cli(["tokens", *args], env=env)
        return done.returncode, done.stdout, done.stderr

    assert tokens("list")[:2] == (
        0,
        "no API tokens: add one with `shrinkwatch tokens add NAME --user USER` (or --service)\n",
    )

    code, out, err = tokens("add", "soc", "--service", "--store", "store-001", "--permission", "export")
    assert code == 0, err
    soc = out.strip()
    assert out == soc + "\n"  # the token alone on standard output: `TOKEN=$(shrinkwatch tokens add ...)`
    soc_id = parse_token(soc)
    assert soc_id is not None
    lines = err.splitlines()
    assert lines[0].startswith(
        f"added token soc (id {soc_id}; service; stores store-001; read, export; expires "
    )
    assert lines[1] == "This token will not be shown again: keep it in the integration's secret store now."
    assert soc not in err

    code, out, err = tokens("add", "mo-tool", "--user", "mo", "--permission", "review", "--no-expiry")
    assert code == 0, err
    mo_tool = out.strip()
    assert "(id " in err and "; mo; stores (user's); read, review; never expires)" in err

    with connect(settings.database_dsn) as conn:
        caller = authenticate_token(conn, soc, client="127.0.0.1")
        assert caller is not None and caller.scope.store_ids == {"store-001"} and caller.may("export")
        caller = authenticate_token(conn, mo_tool, client="127.0.0.1")
        assert caller is not None and caller.name == "token mo-tool of mo" and not caller.may("export")

    # Each refusal: one line saying what is wrong, no traceback, nothing added.
    for args, message in [
        (
            ["x", "--user", "mo", "--store", "store-002"],
            "error: store(s) store-002: not a store user 'mo' may see",
        ),
        (["x"], "error: a token is either a user's (--user) or a service's (--service)"),
        (
            ["x", "--service"],
            "error: a service token needs its stores (--store), or every store (--all-stores)",
        ),
        (["soc", "--service", "--all-stores"], "error: a token named 'soc' exists already"),
        (["x", "--user", "nobody"], "error: no user 'nobody'"),
        (
            ["x", "--user", "mo", "--expires-days", "5", "--no-expiry"],
            "error: give --expires-days or --no-expiry",
        ),
    ]:
        code, out, err = tokens("add", *args)
        assert (code, out) == (2, ""), err
        assert err.startswith(message) and err.count("\n") == 1, err
    code, out, err = tokens("add", "x", "--user", "mo", "--expires-days", "0")
    assert code == 2 and "Invalid value for '--expires-days'" in err and "Traceback" not in err

    code, out, err = tokens("list")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == [
        "NAME", "ID", "OWNER", "STORES", "PERMISSIONS", "CREATED", "EXPIRES", "LAST", "USED", "REVOKED"
    ]  # fmt: skip
    assert [row.split()[:5] for row in rows] == [
        ["soc", soc_id, "service", "store-001", "read,export"],
        ["mo-tool", str(parse_token(mo_tool)), "mo", "(user's)", "read,review"],
    ]
    assert "never" in rows[1]  # mo-tool's expiry
    for secret in (soc, mo_tool):
        assert secret not in out and secret.rsplit("_", 1)[1] not in out

    assert tokens("revoke", "soc") == (0, "revoked token soc\n", "")
    with connect(settings.database_dsn) as conn:
        assert authenticate_token(conn, soc, client="127.0.0.1") is None
    code, out, err = tokens("revoke", "soc")
    assert (
        code == 2 and err == "error: no live token has the name or id 'soc' (see `shrinkwatch tokens list`)\n"
    )

    assert [row.split()[0] for row in tokens("list")[1].splitlines()[1:]] == ["mo-tool"]
    header, *every = tokens("list", "--all")[1].splitlines()
    assert [row.split()[0] for row in every] == ["soc", "mo-tool"]
    used, revoked = header.index("LAST USED"), header.index("REVOKED")
    when = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
    assert [(bool(when.fullmatch(row[used:revoked].strip())), row[revoked:]) for row in every] == [
        (True, every[0][revoked:]),
        (True, "-"),
    ]
    assert when.fullmatch(every[0][revoked:])  # soc revoked; both used once
