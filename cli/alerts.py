"""`shrinkwatch alerts run|digest|mute|test`: alerts through the outbox, and digests."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import say, settings_of
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.wording import utc_minutes

app = typer.Typer(
    help="Alerts: email, SMS, webhooks and chat for incidents, through an outbox.", no_args_is_help=True
)


@app.command("run")
def alerts_run(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Check Kafka, PostgreSQL, the SMTP login and the secrets' ${VAR}; send nothing.",
        ),
    ] = False,
) -> None:
    """Read sw.incidents and send the alerts recipients' rules call for (until Ctrl-C)."""
    from alerts.dispatcher import check_run, prepare_run, run
    from shrinkwatch.shutdown import stop_event_on_signals

    settings = settings_of(ctx)
    if check:
        lines, ok = check_run(settings)
        for line in lines:
            typer.echo(line)
        raise typer.Exit(0 if ok else 1)
    count, _ = prepare_run(settings)
    say(f"alerts: {count} recipient(s); SMTP {settings.smtp_host}:{settings.smtp_port}; Ctrl-C stops")
    done = run(settings, stop_event_on_signals(), progress=say)
    say(
        f"alerts stopped: {done.incidents} incident versions read, {done.enqueued} alerts queued, "
        f"{done.sent} sent, {done.retried} retried, {done.failed} failed"
    )


@app.command("digest")
def alerts_digest(
    ctx: typer.Context,
    now: Annotated[
        bool, typer.Option("--now", help="Queue and send the digest now, up to this moment.")
    ] = False,
    recipient: Annotated[
        str | None, typer.Option(help="Only this recipient (default: all with a digest).")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Say who would get a digest and what it would cover; send nothing."),
    ] = False,
) -> None:
    """Send digests now: what happened since each recipient's last one (or the last day)."""
    from datetime import UTC, datetime

    from alerts.digest import digest_plan
    from alerts.dispatcher import send_digests_now
    from warehouse.alert_recipients import load_recipients
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    if not now and not check:
        msg = "say --now, or --check (scheduled digests are sent by `shrinkwatch alerts run`)"
        raise ShrinkwatchError(msg)
    settings = settings_of(ctx)
    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)
        chosen = [r for r in load_recipients(conn, only=recipient) if recipient or r.digest]
        if recipient and not chosen:
            msg = f"no enabled recipient {recipient!r}"
            raise ShrinkwatchError(msg)
        moment = datetime.now(UTC)
        if check:
            for line in digest_plan(conn, chosen, moment):
                typer.echo(line)
            return
        counts = send_digests_now(settings, conn, chosen, moment)
    typer.echo(
        f"digests: {len(chosen)} recipient(s); {counts.sent} sent, {counts.retried + counts.failed} not sent"
    )
    for error in counts.errors:
        typer.echo(f"  {error}")
    raise typer.Exit(1 if counts.retried + counts.failed else 0)


@app.command("mute")
def alerts_mute(
    ctx: typer.Context,
    minutes: Annotated[float, typer.Option(help="For how long.")],
    camera: Annotated[str | None, typer.Option(help="The camera to keep quiet about.")] = None,
    store: Annotated[str | None, typer.Option(help="The store to keep quiet about.")] = None,
    by: Annotated[str, typer.Option(help="Who muted it (shown beside the mute).")] = "cli",
) -> None:
    """No alerts about a camera (or a whole store) for N minutes: maintenance, a known fault."""
    from warehouse.alert_recipients import mute
    from warehouse.db import connect

    if (camera is None) == (store is None):
        msg = "give --camera or --store (one of them)"
        raise ShrinkwatchError(msg)
    kind, target = ("camera", camera) if camera else ("store", store)
    assert target is not None
    with connect(settings_of(ctx).database_dsn) as conn:
        try:
            until = mute(conn, kind, target, minutes, by)
        except ValueError as exc:
            raise ShrinkwatchError(str(exc)) from None
    typer.echo(f"{kind} {target}: no alerts until {utc_minutes(until)} UTC")


@app.command("test")
def alerts_test(
    ctx: typer.Context,
    recipient: Annotated[str, typer.Option("--recipient", help="The recipient's id.")],
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Check each channel can be used (SMTP login, SMS settings); send nothing."
        ),
    ] = False,
) -> None:
    """Send a test message on each of a recipient's channels; say which failed and why."""
    from alerts.dispatcher import check_channels, send_test
    from warehouse.alert_recipients import load_recipients
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    settings = settings_of(ctx)
    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)
        found = load_recipients(conn, only=recipient)
        if not found:
            msg = f"no enabled recipient {recipient!r}"
            raise ShrinkwatchError(msg)
        results = check_channels(settings, found[0]) if check else send_test(settings, conn, found[0])
    failed = 0
    done = "ready" if check else "sent"
    for channel, error in results:
        typer.echo(f"{channel}: {done if error is None else 'FAILED: ' + error}")
        failed += error is not None
    raise typer.Exit(1 if failed else 0)
