"""The `shrinkwatch` command (CONTRACTS §5)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.logs import configure_logging
from shrinkwatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from datetime import datetime

    from shrinkwatch.recipients import Recipient
    from warehouse.db import Connection

app = typer.Typer(
    help="Shrinkwatch: camera detections to explainable shrink incidents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
infra_app = typer.Typer(
    help="Start, stop and check the local Kafka broker and PostgreSQL.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sites_app = typer.Typer(help="Stores, cameras and zones.", no_args_is_help=True)
flows_app = typer.Typer(help="Bytewax dataflows.", no_args_is_help=True)
warehouse_app = typer.Typer(help="The warehouse: synthetic history, retention.", no_args_is_help=True)
rollups_app = typer.Typer(help="The analytics rollups (DuckDB over PostgreSQL).", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard accounts: roles, store scope, passwords.", no_args_is_help=True)
alerts_app = typer.Typer(
    help="Alerts: email for high-risk incidents, through an outbox.", no_args_is_help=True
)
app.add_typer(infra_app, name="infra")
app.add_typer(db_app, name="db")
app.add_typer(sites_app, name="sites")
app.add_typer(flows_app, name="flows")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(rollups_app, name="rollups")
app.add_typer(users_app, name="users")
app.add_typer(alerts_app, name="alerts")


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def _say(text: str) -> None:
    typer.echo(text, err=True)


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


# -- infra ------------------------------------------------------------------------------


@infra_app.command("up")
def infra_up(ctx: typer.Context) -> None:
    """Start the local Kafka broker and PostgreSQL (if not external) and create the topics."""
    from infra.services import status, up

    settings = _settings(ctx)
    up(settings, progress=_say)
    for service in status(settings):
        typer.echo(service.line())


@infra_app.command("down")
def infra_down(ctx: typer.Context) -> None:
    """Stop the local services that `infra up` started."""
    from infra.services import down

    stopped = down(_settings(ctx), progress=_say)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@infra_app.command("status")
def infra_status(ctx: typer.Context) -> None:
    """Report the health of Kafka and PostgreSQL; exit 1 if either is down."""
    from infra.services import status

    services = status(_settings(ctx))
    for service in services:
        typer.echo(service.line())
    if not all(s.healthy for s in services):
        raise typer.Exit(1)


# -- db and sites -----------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate(ctx: typer.Context) -> None:
    """Bring the database to the current schema (safe to repeat)."""
    from warehouse.db import connect
    from warehouse.migrate import current_version, migrate

    with connect(_settings(ctx).database_dsn) as conn:
        applied = migrate(conn, progress=_say)
        typer.echo(
            f"database at schema version {current_version(conn)}" + ("" if applied else " (already current)")
        )


@sites_app.command("apply")
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

    with connect(_settings(ctx).database_dsn) as conn:
        require_current_schema(conn)
        result = apply_site_config(conn, config)
    typer.echo(
        f"applied {file}: {result.stores} stores, {result.cameras} cameras, {result.zones} zones"
        + (f" ({result.zones_removed} zones removed)" if result.zones_removed else "")
        + f", {result.recipients} alert recipients"
    )


# -- camera-sim, detect -----------------------------------------------------------------


@app.command("camera-sim")
def camera_sim(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Video file to serve.", exists=True, dir_okay=False)],
    port: Annotated[int | None, typer.Option(help="HTTP port (default: camera_sim_port setting).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    fps: Annotated[float | None, typer.Option(help="Frames per second (default: the file's).")] = None,
    quality: Annotated[int, typer.Option(min=10, max=100, help="JPEG quality.")] = 80,
    rtsp_port: Annotated[
        int | None, typer.Option(help="Also serve RTSP on this port (rtsp://127.0.0.1:PORT/stream).")
    ] = None,
) -> None:
    """Serve a video file as a live, looping camera: HTTP MJPEG, and RTSP with --rtsp-port."""
    from detector.camera_sim import serve

    serve(
        file,
        host=host,
        port=port or _settings(ctx).camera_sim_port,
        rtsp_port=rtsp_port,
        fps=fps,
        quality=quality,
        announce=_say,
    )


class Pace(StrEnum):
    realtime = "realtime"
    fast = "fast"


@app.command("detect")
def detect(
    ctx: typer.Context,
    camera: Annotated[list[str] | None, typer.Option(help="Camera id (repeatable; default all).")] = None,
    pace: Annotated[
        Pace, typer.Option(help="Files: real-time pace, or as fast as possible.")
    ] = Pace.realtime,
    loop: Annotated[bool, typer.Option(help="Files: start again at the end.")] = False,
    motion_gating: Annotated[
        bool, typer.Option(help="Skip inference on frames where nothing moved (cameras may opt out).")
    ] = True,
    max_frames: Annotated[int | None, typer.Option(help="Stop each camera after N analysed frames.")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Check settings, model and cameras; run nothing.")
    ] = False,
) -> None:
    """Read the configured cameras, run YOLOv8 + ByteTrack, publish sw.detections."""
    from detector.runner import DetectOptions, run_detect

    options = DetectOptions(
        camera_ids=camera or None,
        realtime=pace is Pace.realtime,
        loop=loop,
        max_frames=max_frames,
        motion_gating=motion_gating,
    )
    code = run_detect(_settings(ctx), options, check_only=check, progress=_say)
    raise typer.Exit(code)


# -- flows, app -------------------------------------------------------------------------


@flows_app.command("run")
def flows_run(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="Dataflow to run: incidents, occupancy, health, or a module path.")
    ] = "incidents",
    workers: Annotated[int, typer.Option(min=1, help="Worker threads in each process.")] = 1,
    processes: Annotated[
        int, typer.Option(min=1, help="Processes on this machine (Bytewax cluster on flow_cluster_port+).")
    ] = 1,
    process_id: Annotated[int | None, typer.Option(hidden=True)] = None,
    addresses: Annotated[str | None, typer.Option(hidden=True)] = None,
    recovery: Annotated[
        bool, typer.Option(help="Resume from SHRINKWATCH_HOME/recovery after a restart.")
    ] = True,
    snapshot_s: Annotated[float, typer.Option(min=0.1, help="Seconds between recovery snapshots.")] = 2.0,
    check: Annotated[
        bool, typer.Option("--check", help="Build the dataflow and check its inputs; run nothing.")
    ] = False,
) -> None:
    """Run a Bytewax dataflow over sw.detections until interrupted."""
    from flows.run import run_cluster, run_flow

    if processes > 1 and process_id is None and not check:
        settings_file = ctx.parent.params.get("settings_file") if ctx.parent else None
        status = run_cluster(
            _settings(ctx),
            name,
            processes=processes,
            workers=workers,
            recovery=recovery,
            snapshot_s=snapshot_s,
            settings_file=settings_file,
            progress=_say,
        )
        raise typer.Exit(status)
    say = _say if process_id is None else lambda text: _say(f"[process {process_id}] {text}")
    run_flow(
        _settings(ctx),
        name,
        workers=workers,
        recovery=recovery,
        snapshot_s=snapshot_s,
        check_only=check,
        process_id=process_id,
        addresses=addresses.split(";") if addresses else None,
        progress=say,
    )


@flows_app.command("calibrate")
def flows_calibrate(
    ctx: typer.Context,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule", help="Keep running: calibrate now and every calibration_interval_s seconds."
        ),
    ] = False,
) -> None:
    """Re-learn each store's risk-signal weights from the analysts' confirm/reject verdicts."""
    from flows.calibration import run_calibration

    run_calibration(_settings(ctx), schedule=schedule, progress=_say)


@warehouse_app.command("seed")
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

    with connect(_settings(ctx).database_dsn) as conn:
        require_current_schema(conn)
        done = seed_history(
            conn, days=days, stores=stores, cameras=cameras, seed=seed, replace=replace, progress=_say
        )
    typer.echo(
        f"seeded {done.stores} stores, {done.cameras} cameras: {done.incidents} incidents "
        f"({done.reviewed} reviewed), {done.occupancy_rows} occupancy minutes, "
        f"{done.heatmap_rows} heatmap hours"
    )


@warehouse_app.command("prune")
def warehouse_prune(ctx: typer.Context) -> None:
    """Delete per-minute occupancy and hourly heatmaps past their retention, once rolled up."""
    from warehouse.jobs import prune_and_say

    said: list[str] = []
    prune_and_say(_settings(ctx), said.append)
    typer.echo(said[0] if said else "retention: nothing to prune")


@rollups_app.command("run")
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

    run_rollups_command(_settings(ctx), full=full, only=only, schedule=schedule, progress=_say)


# -- users ------------------------------------------------------------------------------


class Role(StrEnum):
    admin = "admin"
    analyst = "analyst"
    store_manager = "store_manager"


def _new_password(username: str, from_stdin: bool) -> str:
    """The password from standard input (one line), or asked twice on the terminal."""
    from warehouse.users import check_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(f"password for {username}", hide_input=True, confirmation_prompt=True)
    check_password(username, password)
    return password


def _users_conn(ctx: typer.Context) -> Connection:
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    conn = connect(_settings(ctx).database_dsn)
    require_current_schema(conn)
    return conn


_STDIN = typer.Option("--password-stdin", help="Read the password from standard input (scripts).")


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Sign-in name: a-z 0-9 . _ @ -")],
    role: Annotated[Role, typer.Option(help="admin, analyst (every store) or store_manager.")],
    store: Annotated[
        list[str] | None, typer.Option("--store", help="A store manager's store (repeatable).")
    ] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    email: Annotated[str | None, typer.Option(help="Email (single sign-on matches on it).")] = None,
    password_stdin: Annotated[bool, _STDIN] = False,
    sso_only: Annotated[bool, typer.Option("--sso-only", help="No password: single sign-on only.")] = False,
) -> None:
    """Create a dashboard account."""
    from warehouse.users import add_user

    password = None if sso_only else _new_password(username, password_stdin)
    with _users_conn(ctx) as conn:
        user = add_user(
            conn, username, role.value, password=password, stores=store or (), display_name=name, email=email
        )
    scope = ", ".join(user.stores) if user.stores else "every store"
    typer.echo(f"added {user.username} ({user.role}; {scope})")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The account.")],
    password_stdin: Annotated[bool, _STDIN] = False,
) -> None:
    """Set a new password; the account's open sessions end."""
    from warehouse.users import get_user, set_password

    with _users_conn(ctx) as conn:
        get_user(conn, username)
        ended = set_password(conn, username, _new_password(username, password_stdin))
    typer.echo(f"password of {username} changed; {ended} session(s) ended")


@users_app.command("update")
def users_update(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The account.")],
    role: Annotated[Role | None, typer.Option(help="New role.")] = None,
    store: Annotated[
        list[str] | None,
        typer.Option("--store", help="A store manager's stores (replaces them; repeatable)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    email: Annotated[str | None, typer.Option(help="Email.")] = None,
) -> None:
    """Change an account's role, stores, name or email (a new scope ends its sessions)."""
    from warehouse.users import update_user

    with _users_conn(ctx) as conn:
        user = update_user(
            conn, username, role=role.value if role else None, stores=store, display_name=name, email=email
        )
    scope = ", ".join(user.stores) if user.stores else "every store"
    typer.echo(f"updated {user.username} ({user.role}; {scope})")


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """Disable an account: it cannot sign in, and its open sessions end at once."""
    from warehouse.users import disable_user

    with _users_conn(ctx) as conn:
        ended = disable_user(conn, username)
    typer.echo(f"disabled {username}; {ended} session(s) ended")


@users_app.command("enable")
def users_enable(ctx: typer.Context, username: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """Let a disabled account sign in again."""
    from warehouse.users import enable_user

    with _users_conn(ctx) as conn:
        enable_user(conn, username)
    typer.echo(f"enabled {username}")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """Every account: role, stores, state."""
    from warehouse.users import list_users

    with _users_conn(ctx) as conn:
        found = list_users(conn)
    if not found:
        typer.echo("no users yet: add one with `shrinkwatch users add NAME --role admin`")
    for user in found:
        scope = ",".join(user.stores) if user.stores else "*"
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.username:24s} {user.role:14s} {scope:30s} {state:9s} {user.label}")


# -- alerts -----------------------------------------------------------------------------


@alerts_app.command("run")
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
    from alerts.dispatcher import run
    from shrinkwatch.kafka_admin import ensure_topics, wait_for_kafka
    from shrinkwatch.shutdown import stop_event_on_signals
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    settings = _settings(ctx)
    wait_for_kafka(settings.kafka_servers, timeout_s=30)
    ensure_topics(settings)
    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)
        recipients = conn.execute(
            """SELECT count(*) AS n, count(*) FILTER (WHERE 'email' = ANY(channels)) AS by_email
               FROM alert_recipients WHERE enabled"""
        ).fetchone()
    count = recipients["n"] if recipients else 0
    if check:
        from alerts.dispatcher import secret_report
        from alerts.email import Mailer, SendError
        from alerts.outbox import load_recipients

        with connect(settings.database_dsn) as conn:
            problems, warnings = secret_report(settings, load_recipients(conn, disabled_too=True))
        failed = bool(problems)
        try:
            smtp = "SMTP not checked: no recipient gets email"
            if recipients and recipients["by_email"]:
                Mailer(settings).check()
                smtp = f"SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security}) answers"
            typer.echo(
                f"alerts: Kafka {settings.kafka_servers} and PostgreSQL answer; {count} recipient(s); {smtp}"
            )
        except SendError as exc:
            typer.echo(f"alerts: Kafka and PostgreSQL answer; {count} recipient(s); but {exc}")
            failed = True
        for line in [*problems, *(f"warning: {w}" for w in warnings)]:
            typer.echo(f"  {line}")
        if failed:
            raise typer.Exit(1)
        return
    _say(f"alerts: {count} recipient(s); SMTP {settings.smtp_host}:{settings.smtp_port}; Ctrl-C stops")
    done = run(settings, stop_event_on_signals(), progress=_say)
    _say(
        f"alerts stopped: {done.incidents} incident versions read, {done.enqueued} alerts queued, "
        f"{done.sent} sent, {done.retried} retried, {done.failed} failed"
    )


@alerts_app.command("digest")
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

    from alerts.digest import FIRST_MANUAL, queue_digest, watermark
    from alerts.dispatcher import Counts, send_due
    from alerts.outbox import load_recipients
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    if not now and not check:
        msg = "say --now, or --check (scheduled digests are sent by `shrinkwatch alerts run`)"
        raise ShrinkwatchError(msg)
    settings = _settings(ctx)
    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)
        chosen = [r for r in load_recipients(conn, only=recipient) if recipient or r.digest]
        if recipient and not chosen:
            msg = f"no enabled recipient {recipient!r}"
            raise ShrinkwatchError(msg)
        moment = datetime.now(UTC)
        if check:
            _check_digests(conn, chosen, moment)
            return
        for person in chosen:
            with conn.transaction():
                queue_digest(conn, person, watermark(conn, person.id) or moment - FIRST_MANUAL, moment)
        counts = Counts()
        while send_due(settings, conn, counts):
            pass
    typer.echo(
        f"digests: {len(chosen)} recipient(s); {counts.sent} sent, {counts.retried + counts.failed} not sent"
    )
    for error in counts.errors:
        typer.echo(f"  {error}")
    raise typer.Exit(1 if counts.retried + counts.failed else 0)


def _check_digests(conn: Connection, chosen: list[Recipient], moment: datetime) -> None:
    """`alerts digest --check`: each recipient's schedule, last digest and next one."""
    from alerts.digest import FIRST_MANUAL, is_due, latest_due, next_due, watermark
    from alerts.rules import parse_schedule

    if not chosen:
        typer.echo("no enabled recipient has a digest schedule")
    for person in chosen:
        last = watermark(conn, person.id)
        schedule = f"{person.digest} {person.timezone}" if person.digest else "no schedule"
        said = f"last digest up to {last:%Y-%m-%d %H:%M} UTC" if last else "no digest yet"
        upcoming = ""
        if person.digest:
            plan = parse_schedule(person.digest)
            upcoming = f"; next {next_due(plan, person.timezone, moment):%Y-%m-%d %H:%M} UTC"
            if is_due(last, latest_due(plan, person.timezone, moment)):
                upcoming += " (one is due now: `alerts run` sends it)"
        since = last or moment - FIRST_MANUAL
        typer.echo(
            f"{person.id}: {schedule}; {said}{upcoming}; --now would cover {since:%Y-%m-%d %H:%M} to "
            f"{moment:%Y-%m-%d %H:%M} UTC on {', '.join(person.channels)}"
        )


@alerts_app.command("mute")
def alerts_mute(
    ctx: typer.Context,
    minutes: Annotated[float, typer.Option(help="For how long.")],
    camera: Annotated[str | None, typer.Option(help="The camera to keep quiet about.")] = None,
    store: Annotated[str | None, typer.Option(help="The store to keep quiet about.")] = None,
    by: Annotated[str, typer.Option(help="Who muted it (shown beside the mute).")] = "cli",
) -> None:
    """No alerts about a camera (or a whole store) for N minutes: maintenance, a known fault."""
    from alerts.outbox import mute
    from warehouse.db import connect

    if (camera is None) == (store is None):
        msg = "give --camera or --store (one of them)"
        raise ShrinkwatchError(msg)
    kind, target = ("camera", camera) if camera else ("store", store)
    assert target is not None
    with connect(_settings(ctx).database_dsn) as conn:
        known = conn.execute(
            f"SELECT 1 FROM {'cameras' if kind == 'camera' else 'stores'} WHERE id = %s",  # noqa: S608
            (target,),
        ).fetchone()
        if known is None:
            msg = f"no {kind} {target!r}"
            raise ShrinkwatchError(msg)
        try:
            until = mute(conn, kind, target, minutes, by)
        except ValueError as exc:
            raise ShrinkwatchError(str(exc)) from None
    typer.echo(f"{kind} {target}: no alerts until {until:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("test")
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
    from alerts.outbox import load_recipients
    from warehouse.db import connect
    from warehouse.migrate import require_current_schema

    settings = _settings(ctx)
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


@app.command("app")
def dashboard(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: dashboard_port setting).")] = None,
) -> None:
    """Serve the Streamlit dashboard on 127.0.0.1."""
    from streamlit_app.serve import serve

    raise typer.Exit(serve(_settings(ctx), port=port))


@app.command("demo")
def demo(
    ctx: typer.Context,
    video: Annotated[
        Path | None, typer.Option(help="Sample video (default: ../shared/video/vtest.avi).")
    ] = None,
    loiter_threshold_s: Annotated[float, typer.Option(help="Dwell that opens a loitering incident.")] = 6.0,
    duration_s: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    until_incidents: Annotated[int | None, typer.Option(help="Stop once this many incidents exist.")] = None,
) -> None:
    """Everything on the sample video: services, site, camera-sim, detector, flow and dashboard."""
    from infra.demo import run_demo

    raise typer.Exit(
        run_demo(
            _settings(ctx),
            video=video,
            loiter_threshold_s=loiter_threshold_s,
            duration_s=duration_s,
            until_incidents=until_incidents,
            say=_say,
        )
    )


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
