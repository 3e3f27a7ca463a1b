"""`shrinkwatch privacy purge|holds|hold|release|report`: evidence retention, legal holds, and
the DPIA annex (docs/PRIVACY.md)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import say, settings_of
from cli.privacy_report import report
from shrinkwatch.errors import ShrinkwatchError

if TYPE_CHECKING:
    from warehouse.db import Connection

app = typer.Typer(
    help="Privacy: evidence retention and its purge, legal holds, the DPIA annex.", no_args_is_help=True
)
_REASON = typer.Option("--reason", help="Why (kept in the evidence access log).")


def _conn(ctx: typer.Context) -> Connection:
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    conn = connect(settings_of(ctx).database_dsn, autocommit=True)
    require_current_schema(conn)
    return conn


def _me() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "cli"


@app.command("purge")
def purge(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; delete, mark and log nothing.")
    ] = False,
    schedule: Annotated[
        bool, typer.Option("--schedule", help="Keep running: purge now and every privacy_purge_interval_s.")
    ] = False,
) -> None:
    """Delete evidence past its store's retention (snapshots, clips, live frames; not under a
    legal hold), leftover files, and access-log rows past the log's own retention."""
    from privacy.purge import run_purge_command

    run_purge_command(settings_of(ctx), dry_run=dry_run, schedule=schedule, progress=say)


@app.command("hold")
def hold(
    ctx: typer.Context,
    incident: Annotated[str, typer.Argument(help="The incident's id.")],
    reason: Annotated[str, _REASON],
    by: Annotated[str | None, typer.Option("--by", help="Who asks for it (default: your user name).")] = None,
) -> None:
    """Keep an incident's evidence past its store's retention until the hold is released."""
    from warehouse.evidence_log import active_hold
    from warehouse.evidence_log import hold as put_on_hold
    from warehouse.incidents import evidence_marks

    with _conn(ctx) as conn:
        mark = evidence_marks(conn, [incident]).get(incident)
        if mark is None:
            msg = f"no incident {incident!r} in the warehouse"
            raise ShrinkwatchError(msg)
        if not reason.strip():
            msg = "--reason must not be empty: a legal hold says why"
            raise ShrinkwatchError(msg)
        if not put_on_hold(conn, incident, by=by or _me(), reason=reason, client="cli"):
            held = active_hold(conn, incident) or {}
            typer.echo(
                f"{incident}: already held by {held.get('held_by')} since "
                f"{_cell(held.get('held_at'))} UTC ({held.get('reason')})"
            )
            return
    typer.echo(f"{incident}: held; its evidence is kept until the hold is released")
    if mark.gone:
        say(f"note: its {' and '.join(mark.gone)} had already been deleted by retention")


@app.command("release")
def release(
    ctx: typer.Context,
    incident: Annotated[str, typer.Argument(help="The incident's id.")],
    reason: Annotated[str, _REASON],
    by: Annotated[str | None, typer.Option("--by", help="Who releases it (default: your user name).")] = None,
) -> None:
    """Release an incident's legal hold: its evidence then follows its store's retention (what
    is already past it goes at the next purge)."""
    from warehouse.evidence_log import release as release_hold

    if not reason.strip():
        msg = "--reason must not be empty: releasing a legal hold says why"
        raise ShrinkwatchError(msg)
    with _conn(ctx) as conn:
        if not release_hold(conn, incident, by=by or _me(), reason=reason, client="cli"):
            msg = f"incident {incident!r} is not under a legal hold"
            raise ShrinkwatchError(msg)
    typer.echo(f"{incident}: released; its evidence follows its store's retention again")


@app.command("holds")
def holds(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Released holds too.")] = False,
) -> None:
    """The legal holds in force (newest first): incident, who, since when, why."""
    from warehouse.evidence_log import holds as list_holds

    with _conn(ctx) as conn:
        found = list_holds(conn, include_released=all_)
    if found.empty:
        typer.echo("no legal holds" + ("" if all_ else " in force"))
        return
    columns = ["incident_id", "held_by", "held_at", "reason"]
    if all_:
        columns += ["released_by", "released_at", "release_reason"]
    rows = [[c.replace("_", " ") + (" (UTC)" if c.endswith("_at") else "") for c in columns]]
    rows += [[_cell(row[c]) for c in columns] for row in found.to_dict("records")]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def _cell(value: object) -> str:
    """A table cell: a time to the minute in UTC, nothing as `-`, text on one line."""
    if value is None or (isinstance(value, float) and value != value):  # None, NaN
        return "-"
    if isinstance(value, datetime):
        return "-" if str(value) == "NaT" else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"
    return " ".join(str(value).split())


# Written beside this group, in a module of its own.
app.command("report")(report)
