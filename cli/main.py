"""The `shrinkwatch` command (CONTRACTS §5): the root, its groups, and `main`.

The command line is the top floor of the house: each module here is one command group that
parses its arguments and calls one function of its part (`warehouse`, `flows`, `detector`,
`alerts`, `streamlit_app`, `infra`); no part imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import alerts, api, cameras, dashboard, db, demo, flows, infra, privacy, run, sites, users, warehouse
from cli.models import app as models_app
from cli.tokens import app as tokens_app
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.logs import configure_logging
from shrinkwatch.settings import load_settings

app = typer.Typer(
    help="Shrinkwatch: camera detections to explainable shrink incidents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(infra.app, name="infra")
app.add_typer(db.app, name="db")
app.add_typer(sites.app, name="sites")
app.command("camera-sim")(cameras.camera_sim)
app.command("detect")(cameras.detect)
app.add_typer(models_app, name="models")
app.add_typer(flows.app, name="flows")
app.add_typer(warehouse.app, name="warehouse")
app.add_typer(warehouse.rollups, name="rollups")
app.add_typer(users.app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(alerts.app, name="alerts")
app.add_typer(privacy.app, name="privacy")
app.command("app")(dashboard.dashboard)
app.command("api")(api.api)
app.command("run")(run.run)
app.command("status")(run.status)
app.command("demo")(demo.demo)


@app.callback()
def _root(
    ctx: typer.Context,
    settings_file: Annotated[
        Path | None,
        typer.Option(
            "--settings", envvar="SHRINKWATCH_SETTINGS_FILE", help="YAML settings file.", dir_okay=False
        ),
    ] = None,
) -> None:
    ctx.obj = load_settings(settings_file)
    configure_logging(ctx.obj.log_level)


def main() -> None:
    """Console-script entry point: expected errors print a message, not a traceback."""
    try:
        app()
    except ShrinkwatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
