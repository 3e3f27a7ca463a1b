"""`shrinkwatch tokens add|list|revoke`: API tokens for users and services (docs/SECURITY.md)."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import say, settings_of
from shrinkwatch.errors import ShrinkwatchError

if TYPE_CHECKING:
    from warehouse.api_tokens import ApiToken
    from warehouse.db import Connection

app = typer.Typer(
    help="API tokens for integrations: a user's or a service's, with stores and permissions.",
    no_args_is_help=True,
)
DEFAULT_DAYS = 90


class Permission(StrEnum):
    read = "read"
    review = "review"
    export = "export"


def _conn(ctx: typer.Context) -> Connection:
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    conn = connect(settings_of(ctx).database_dsn)
    require_current_schema(conn)
    return conn


def _who() -> str:
    """Who runs the command, for the token's `created_by` / `revoked_by`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no name for this uid (a container)
        return "cli"


def expiry(days: int | None, no_expiry: bool) -> timedelta | None:
    """The token's lifetime from --expires-days / --no-expiry (90 days when neither is given)."""
    if no_expiry and days is not None:
        msg = "give --expires-days or --no-expiry, not both"
        raise ShrinkwatchError(msg)
    return None if no_expiry else timedelta(days=DEFAULT_DAYS if days is None else days)


def _when(at: datetime | None, none: str = "-") -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if at else none


def _stores(token: ApiToken) -> str:
    return ",".join(token.stores) if token.stores else "(user's)"


def added_line(token: ApiToken) -> str:
    """One line about a token, for the command's report."""
    expires = f"expires {_when(token.expires_at)} UTC" if token.expires_at else "never expires"
    return (
        f"added token {token.name} (id {token.token_id}; {token.owner}; stores {_stores(token)}; "
        f"{', '.join(token.permissions)}; {expires})"
    )


def table_rows(tokens: Sequence[ApiToken], now: datetime) -> list[list[str]]:
    """The `tokens list` table: a header, then a row per token; never a secret."""
    header = ["NAME", "ID", "OWNER", "STORES", "PERMISSIONS", "CREATED", "EXPIRES", "LAST USED", "REVOKED"]
    rows = [header]
    for t in tokens:
        expires = _when(t.expires_at, "never")
        if t.expires_at is not None and t.expires_at <= now:
            expires += " (expired)"
        rows.append(
            [
                t.name,
                t.token_id,
                t.owner,
                _stores(t),
                ",".join(t.permissions),
                _when(t.created_at),
                expires,
                _when(t.last_used_at),
                _when(t.revoked_at),
            ]
        )
    return rows


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


@app.command("add")
def tokens_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token, e.g. soc-integration: a-z 0-9 . _ -")],
    user: Annotated[
        str | None, typer.Option("--user", help="The dashboard account the token acts for.")
    ] = None,
    service: Annotated[
        bool, typer.Option("--service", help="A service's token, acting for no account.")
    ] = False,
    store: Annotated[
        list[str] | None,
        typer.Option("--store", help="Only this store (repeatable); a user's token: one the user may see."),
    ] = None,
    all_stores: Annotated[
        bool,
        typer.Option("--all-stores", help="Every store (a service token must give this or --store)."),
    ] = False,
    permission: Annotated[
        list[Permission] | None,
        typer.Option("--permission", help="read (always), review (verdicts), export (repeatable)."),
    ] = None,
    expires_days: Annotated[
        int | None,
        typer.Option("--expires-days", min=1, help=f"Days until it expires [default: {DEFAULT_DAYS}]."),
    ] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="The token never expires.")] = False,
) -> None:
    """Add a token and print it, once: it cannot be shown again."""
    from warehouse.api_tokens import add_token

    lifetime = expiry(expires_days, no_expiry)
    with _conn(ctx) as conn:
        token, secret = add_token(
            conn,
            name=name,
            username=user,
            service=service,
            stores=store or (),
            all_stores=all_stores,
            permissions=[p.value for p in permission or ()],
            expires_in=lifetime,
            created_by=_who(),
        )
    say(added_line(token))
    typer.echo(secret)
    say("This token will not be shown again: keep it in the integration's secret store now.")


@app.command("list")
def tokens_list(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Revoked tokens too.")] = False,
) -> None:
    """The tokens: owner, stores, permissions, expiry, last use (never a secret)."""
    from warehouse.api_tokens import list_tokens

    with _conn(ctx) as conn:
        found = list_tokens(conn, include_revoked=show_all)
    if not found:
        typer.echo("no API tokens: add one with `shrinkwatch tokens add NAME --user USER` (or --service)")
        return
    for line in aligned(table_rows(found, datetime.now(UTC))):
        typer.echo(line)


@app.command("revoke")
def tokens_revoke(
    ctx: typer.Context, name_or_id: Annotated[str, typer.Argument(help="The token's name or id.")]
) -> None:
    """Revoke a token: the next request with it is refused."""
    from warehouse.api_tokens import revoke_token

    with _conn(ctx) as conn:
        if not revoke_token(conn, name_or_id, by=_who()):
            msg = f"no live token has the name or id {name_or_id!r} (see `shrinkwatch tokens list`)"
            raise ShrinkwatchError(msg)
    typer.echo(f"revoked token {name_or_id}")
