"""`shrinkwatch warehouse seed|prune` and `shrinkwatch rollups run`."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import say, settings_of

app = typer.Typer(help="The warehouse: synthetic history, retention.", no_args_is_help=True)
rollups = typer.Typer(help="The analytics rollups (DuckDB over PostgreSQL).", no_args_is_help=True)


@app.command("seed")
def warehouse_seed(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(help="Days of history, up to the start of this hour.")] = 30,
    stores: Annotated[int, typer.Option(help="Stores (seed-001, ...), in several time zones.")] = 3,
    cameras: Annotated[int, typer.Option(help="Cameras per store.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed: the same arguments give the same history.")] = 7,
    replace: Annotated[bool, typer.Option("--replace", help="Remove a previous seed first.")] = False,
) -> None:
    """Write realistic synthetic history (stores seed-*): occupancy, heatmaps, incidents, verdicts."""
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema
    from warehouse.seed import seed_history

    with connect(settings_of(ctx).database_dsn) as conn:
        require_current_schema(conn)
        done = seed_history(
            conn, days=days, stores=stores, cameras=cameras, seed=seed, replace=replace, progress=say
        )
    typer.echo(
        f"seeded {done.stores} stores, {done.cameras} cameras: {done.incidents} incidents "
        f"({done.reviewed} reviewed), {done.occupancy_rows} occupancy minutes, "
        f"{done.heatmap_rows} heatmap hours"
    )


@app.command("prune")
def warehouse_prune(ctx: typer.Context) -> None:
    """Delete per-minute occupancy and hourly heatmaps past their retention, once rolled up."""
    from warehouse.jobs import prune_and_say

    said: list[str] = []
    prune_and_say(settings_of(ctx), said.append)
    typer.echo(said[0] if said else "retention: nothing to prune")


@rollups.command("run")
def rollups_run(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option("--full", help="Rebuild from the base tables instead.")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Refresh this rollup only (repeatable).")
    ] = None,
    schedule: Annotated[
        bool, typer.Option("--schedule", help="Keep running: refresh now and every rollups_interval_s.")
    ] = False,
) -> None:
    """Refresh the rollups behind the analytics (incrementally, by watermark, unless --full)."""
    from warehouse.jobs import run_rollups_command

    run_rollups_command(settings_of(ctx), full=full, only=only, schedule=schedule, progress=say)
