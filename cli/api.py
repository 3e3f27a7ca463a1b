"""`shrinkwatch api`: the REST API for integrations (docs/API.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import say, settings_of


def api(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.", min=1, max=65535)] = 8600,
) -> None:
    """Serve the REST API (API tokens: `shrinkwatch tokens add`) until Ctrl-C or SIGTERM."""
    from api.server import serve

    say(f"api: http://{host}:{port}/v1/ (schema /openapi.json, pages /docs); Ctrl-C stops")
    code = serve(settings_of(ctx), host=host, port=port)
    say("api stopped")
    raise typer.Exit(code)
