"""`shrinkwatch db migrate`: the database schema."""

from __future__ import annotations

import typer

from cli.context import say, settings_of

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("migrate")
def db_migrate(ctx: typer.Context) -> None:
    """Bring the database to the current schema (safe to repeat)."""
    from warehouse.db import connect
    from warehouse.migrate import current_version, migrate

    with connect(settings_of(ctx).database_dsn) as conn:
        applied = migrate(conn, progress=say)
        typer.echo(
            f"database at schema version {current_version(conn)}" + ("" if applied else " (already current)")
        )
