"""`shrinkwatch api`: the REST API for integrations (docs/API.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import say, settings_of


def api(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: api_host setting).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP port (default: api_port setting).", min=1, max=65535)
    ] = None,
) -> None:
    """Serve the REST API (API tokens: `shrinkwatch tokens add`) until Ctrl-C or SIGTERM."""
    from api.server import serve

    settings = settings_of(ctx)
    host = settings.api_host if host is None else host
    port = settings.api_port if port is None else port
    say(f"api: http://{host}:{port}/v1/ (schema /openapi.json, pages /docs); Ctrl-C stops")
    code = serve(settings, host=host, port=port)
    say("api stopped")
    raise typer.Exit(code)
