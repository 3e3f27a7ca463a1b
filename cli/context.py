"""What every command shares: the settings the root command loaded, and a way to talk."""

from __future__ import annotations

import typer

from shrinkwatch.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings `shrinkwatch` loaded for this command (--settings, environment)."""
    settings: Settings = ctx.obj
    return settings


def say(text: str) -> None:
    """Progress and status for people, on standard error (standard output is the result)."""
    typer.echo(text, err=True)
