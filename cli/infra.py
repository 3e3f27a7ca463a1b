"""`shrinkwatch infra up|down|status`: the local Kafka broker and PostgreSQL."""

from __future__ import annotations

import typer

from cli.context import say, settings_of

app = typer.Typer(help="Start, stop and check the local Kafka broker and PostgreSQL.", no_args_is_help=True)


@app.command("up")
def infra_up(ctx: typer.Context) -> None:
    """Start the local Kafka broker and PostgreSQL (if not external) and create the topics."""
    from infra.services import status, up

    settings = settings_of(ctx)
    up(settings, progress=say)
    for service in status(settings):
        typer.echo(service.line())


@app.command("down")
def infra_down(ctx: typer.Context) -> None:
    """Stop the local services that `infra up` started."""
    from infra.services import down

    stopped = down(settings_of(ctx), progress=say)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command("status")
def infra_status(ctx: typer.Context) -> None:
    """Report the health of Kafka and PostgreSQL; exit 1 if either is down."""
    from infra.services import status

    services = status(settings_of(ctx))
    for service in services:
        typer.echo(service.line())
    if not all(s.healthy for s in services):
        raise typer.Exit(1)
