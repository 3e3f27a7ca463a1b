"""`shrinkwatch users add|passwd|update|disable|enable|list`: dashboard accounts."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import settings_of

if TYPE_CHECKING:
    from warehouse.db import Connection

app = typer.Typer(help="Dashboard accounts: roles, store scope, passwords.", no_args_is_help=True)


class Role(StrEnum):
    admin = "admin"
    analyst = "analyst"
    store_manager = "store_manager"


def _new_password(username: str, from_stdin: bool) -> str:
    """The password from standard input (one line), or asked twice on the terminal."""
    from warehouse.accounts import check_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(f"password for {username}", hide_input=True, confirmation_prompt=True)
    check_password(username, password)
    return password


def _users_conn(ctx: typer.Context) -> Connection:
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    conn = connect(settings_of(ctx).database_dsn)
    require_current_schema(conn)
    return conn


_STDIN = typer.Option("--password-stdin", help="Read the password from standard input (scripts).")


@app.command("add")
def users_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Sign-in name: a-z 0-9 . _ @ -")],
    role: Annotated[Role, typer.Option(help="admin, analyst (every store) or store_manager.")],
    store: Annotated[
        list[str] | None, typer.Option("--store", help="A store manager's store (repeatable).")
    ] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    email: Annotated[str | None, typer.Option(help="Email (single sign-on matches on it).")] = None,
    password_stdin: Annotated[bool, _STDIN] = False,
    sso_only: Annotated[bool, typer.Option("--sso-only", help="No password: single sign-on only.")] = False,
) -> None:
    """Create a dashboard account."""
    from warehouse.accounts import add_user

    password = None if sso_only else _new_password(username, password_stdin)
    with _users_conn(ctx) as conn:
        user = add_user(
            conn, username, role.value, password=password, stores=store or (), display_name=name, email=email
        )
    scope = ", ".join(user.stores) if user.stores else "every store"
    typer.echo(f"added {user.username} ({user.role}; {scope})")


@app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The account.")],
    password_stdin: Annotated[bool, _STDIN] = False,
) -> None:
    """Set a new password; the account's open sessions end."""
    from warehouse.accounts import get_user, set_password

    with _users_conn(ctx) as conn:
        get_user(conn, username)
        ended = set_password(conn, username, _new_password(username, password_stdin))
    typer.echo(f"password of {username} changed; {ended} session(s) ended")


@app.command("update")
def users_update(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The account.")],
    role: Annotated[Role | None, typer.Option(help="New role.")] = None,
    store: Annotated[
        list[str] | None,
        typer.Option("--store", help="A store manager's stores (replaces them; repeatable)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    email: Annotated[str | None, typer.Option(help="Email.")] = None,
) -> None:
    """Change an account's role, stores, name or email (a new scope ends its sessions)."""
    from warehouse.accounts import update_user

    with _users_conn(ctx) as conn:
        user = update_user(
            conn, username, role=role.value if role else None, stores=store, display_name=name, email=email
        )
    scope = ", ".join(user.stores) if user.stores else "every store"
    typer.echo(f"updated {user.username} ({user.role}; {scope})")


@app.command("disable")
def users_disable(ctx: typer.Context, username: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """Disable an account: it cannot sign in, and its open sessions end at once."""
    from warehouse.accounts import disable_user

    with _users_conn(ctx) as conn:
        ended = disable_user(conn, username)
    typer.echo(f"disabled {username}; {ended} session(s) ended")


@app.command("enable")
def users_enable(ctx: typer.Context, username: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """Let a disabled account sign in again."""
    from warehouse.accounts import enable_user

    with _users_conn(ctx) as conn:
        enable_user(conn, username)
    typer.echo(f"enabled {username}")


@app.command("list")
def users_list(ctx: typer.Context) -> None:
    """Every account: role, stores, state."""
    from warehouse.accounts import list_users

    with _users_conn(ctx) as conn:
        found = list_users(conn)
    if not found:
        typer.echo("no users yet: add one with `shrinkwatch users add NAME --role admin`")
    for user in found:
        scope = ",".join(user.stores) if user.stores else "*"
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.username:24s} {user.role:14s} {scope:30s} {state:9s} {user.label}")
