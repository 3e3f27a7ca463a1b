"""`shrinkwatch sites apply FILE`: stores, cameras, zones and alert recipients from a site file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.context import settings_of

app = typer.Typer(help="Stores, cameras and zones.", no_args_is_help=True)


@app.command("apply")
def sites_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Site configuration YAML.", dir_okay=False)],
    check: Annotated[bool, typer.Option("--check", help="Validate only; change nothing.")] = False,
) -> None:
    """Validate a site configuration, then apply it atomically (an invalid file changes nothing)."""
    from shrinkwatch.site_file import load_site_file

    config = load_site_file(file)
    zones = sum(len(c.zones) for c in config.cameras)
    if check:
        typer.echo(
            f"{file}: valid ({len(config.stores)} stores, {len(config.cameras)} cameras, {zones} zones, "
            f"{len(config.alerts.recipients)} alert recipients)"
        )
        return
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema
    from warehouse.site_tables import apply_site_config

    with connect(settings_of(ctx).database_dsn) as conn:
        require_current_schema(conn)
        result = apply_site_config(conn, config)
    typer.echo(
        f"applied {file}: {result.stores} stores, {result.cameras} cameras, {result.zones} zones"
        + (f" ({result.zones_removed} zones removed)" if result.zones_removed else "")
        + f", {result.recipients} alert recipients"
    )
