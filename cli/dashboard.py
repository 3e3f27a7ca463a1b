"""`shrinkwatch app`: the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import settings_of


def dashboard(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: dashboard_port setting).")] = None,
) -> None:
    """Serve the dashboard (sign-in required) on dashboard_address, 127.0.0.1 by default."""
    from streamlit_app.launch import serve

    raise typer.Exit(serve(settings_of(ctx), port=port))
