"""`shrinkwatch demo`: the whole pipeline on the sample video, with one command.

Starts the services (if not running), migrates, applies the bundled demo site, seeds two
weeks of synthetic history the first time (stores `seed-*`, so the analytics have something
to show), prepares the model (exported to OpenVINO once, on a CPU), then runs the services of
`shrinkwatch run --role all` under the same supervisor (infra.supervisor: restarted when they
die, logs in SHRINKWATCH_HOME/logs), with camera-sim serving the video as the one camera. It
reports frames, detections and incidents until Ctrl-C, which stops all it started; it exits
1 if a service died on the way (the supervisor restarted it; its log says why).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from confluent_kafka import Consumer

from cli.context import say, settings_of
from cli.run import supervisor
from detector.export import BACKEND_NAMES, prepare_model, resolve_model_path
from infra import services
from infra.mail_sink import MailSink
from infra.supervisor import CENTRAL, Service, Supervisor
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.net import dashboard_url, port_open
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import Settings
from shrinkwatch.shutdown import stop_event_on_signals
from shrinkwatch.site_file import parse_site_config
from warehouse.db import Connection

Say = Callable[[str], None]
CAMERA_ID = "cam-walkway"


def _demo_inputs(settings: Settings, video: Path | None) -> tuple[Path, Path]:
    model = resolve_model_path(settings.model)
    if model is None:
        msg = (
            f"no YOLOv8 weights found for SHRINKWATCH_MODEL={settings.model!r} (this machine cannot "
            "download them); set SHRINKWATCH_MODEL to a weights file such as ../shared/models/yolov8n.pt"
        )
        raise ShrinkwatchError(msg)
    video = video or shared_file("video", "vtest.avi")
    if video is None or not video.is_file():
        msg = "no sample video found; pass --video PATH (the demo expects ../shared/video/vtest.avi)"
        raise ShrinkwatchError(msg)
    return model, video.resolve()


DEMO_USER = "demo"
DEMO_TOKEN = "demo"  # the API token made for each run


def _demo_account(conn: Connection) -> str:
    """The demo's admin account, with a new random password for this run (returned)."""
    import secrets

    from warehouse.accounts import add_user, list_users, set_password

    password = secrets.token_urlsafe(9)
    if any(user.username == DEMO_USER for user in list_users(conn)):
        set_password(conn, DEMO_USER, password)
    else:
        add_user(conn, DEMO_USER, "admin", password=password, display_name="Demo admin")
    return password


def _demo_token(conn: Connection) -> str:
    """A new API token for the demo's admin for this run (returned); the last run's revoked."""
    from datetime import timedelta

    from warehouse.api_tokens import add_token, revoke_token

    revoke_token(conn, DEMO_TOKEN, by="demo")
    _token, secret = add_token(
        conn,
        name=DEMO_TOKEN,
        username=DEMO_USER,
        permissions=("read", "review", "export"),
        expires_in=timedelta(days=1),
        created_by="demo",
    )
    return secret


def _count_incidents(dsn: str, since: datetime) -> int:
    from warehouse.db import connect
    from warehouse.incidents import incidents_written

    with connect(dsn) as conn:
        return incidents_written(conn, camera_id=CAMERA_ID, since=since)


def run_demo(
    settings: Settings,
    *,
    video: Path | None,
    loiter_threshold_s: float,
    duration_s: float | None,
    until_incidents: int | None,
    say: Say = print,
) -> int:
    """Run the demo; exit code 0 on a clean stop, 1 if a part failed."""
    model, video = _demo_inputs(settings, video)
    settings = settings.model_copy(update={"model": str(model), "loiter_threshold_s": loiter_threshold_s})
    for port, what in (
        (settings.camera_sim_port, "camera_sim_port"),
        (settings.dashboard_port, "dashboard_port"),
        (settings.api_port, "api_port"),
    ):
        if port_open(port):
            msg = f"port {port} is in use; set SHRINKWATCH_{what.upper()} to a free port"
            raise ShrinkwatchError(msg)
    t0 = time.monotonic()
    say("== starting services")
    started = services.up(settings, progress=lambda m: say(f"  {m}"))
    stop = stop_event_on_signals()
    sup: Supervisor | None = None
    sink: MailSink | None = None
    mail_before = 0  # the sink's folder keeps earlier runs' mail
    try:
        from warehouse.db import connect
        from warehouse.migrate import migrate
        from warehouse.seed import seed_history, seeded_stores
        from warehouse.site_tables import apply_site_config

        with connect(settings.database_dsn) as conn:
            migrate(conn, progress=lambda m: say(f"  {m}"))
            text = resources.files("infra").joinpath("demo_site.yaml").read_text(encoding="utf-8")
            stream_url = f"http://127.0.0.1:{settings.camera_sim_port}/video.mjpg"
            apply_site_config(conn, parse_site_config(text.replace("{stream_url}", stream_url), "demo site"))
            if not seeded_stores(conn):
                say("== seeding 14 days of synthetic history for the analytics (stores seed-*)")
                seed_history(conn, days=14, stores=2, cameras=2, progress=lambda m: say(f"  {m}"))
            password = _demo_account(conn)
            token = _demo_token(conn)
        say(
            f"  demo site applied: store demo-store, camera {CAMERA_ID} <- {stream_url}, "
            "alert recipient demo-manager"
        )
        say("== preparing the model")
        source, backend = prepare_model(settings, lambda m: say(f"  {m}"))
        say(f"  {Path(source).name} with {BACKEND_NAMES[backend]}")

        sink = MailSink(settings.home / "mail")
        sink.start()
        mail_before = len(sink.messages())
        settings = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": sink.port,
                "smtp_security": "none",
                "dashboard_public_url": settings.dashboard_public_url or dashboard_url(settings),
            }
        )
        pipeline = (
            Service("camera-sim", ("camera-sim", str(video))),
            *CENTRAL,
            Service("cameras", ("detect", "--camera", CAMERA_ID)),
        )
        sup = supervisor(settings, pipeline, role="demo", say=lambda m: say(f"  {m}"))
        say(f"== starting the pipeline (logs in {settings.logs_dir()})")
        sup.start()
        say(f"  loitering threshold {loiter_threshold_s:g} s")
        say(f"  dashboard: {dashboard_url(settings)}   (Ctrl-C stops the demo)")
        say(f"  sign in as {DEMO_USER} / {password}   (a new password each run)")
        api = f"http://127.0.0.1:{settings.api_port}"
        say(f"  API: {api}/docs   token {token}   (a new token each run, for a day)")
        say(f"  alert email for the demo store's manager lands in {sink.folder} (.eml files)")
        return _watch(settings, sup, stop, t0, duration_s, until_incidents, say)
    finally:
        say("== stopping")
        if sup is not None:
            sup.stop()
        if sink is not None:
            sink.stop()
            new_mail = len(sink.messages()) - mail_before
            say(f"  stopped the mail sink ({new_mail} alert email(s) this run, in {sink.folder})")
        if started:
            services.down(settings, progress=lambda m: say(f"  {m}"), only=set(started))
        say(f"demo ran {time.monotonic() - t0:.0f} s")


def _watch(
    settings: Settings,
    sup: Supervisor,
    stop: threading.Event,
    t0: float,
    duration_s: float | None,
    until_incidents: int | None,
    say: Say,
) -> int:
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"demo-{uuid.uuid4()}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    consumer.subscribe([settings.topic("detections")])
    frames = objects = 0
    first_incident: float | None = None
    since = datetime.now(UTC)
    last_line = ""
    next_report = time.monotonic()
    try:
        while not stop.is_set():
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is None and msg.key() == CAMERA_ID.encode():
                    frames += 1
                    objects += (msg.value() or b"").count(b'"track_id"')
            sup.poll()  # restarts what died, and says why
            if time.monotonic() < next_report:
                continue
            next_report = time.monotonic() + 2.0
            incidents = _count_incidents(settings.database_dsn, since)
            elapsed = time.monotonic() - t0
            if incidents and first_incident is None:
                first_incident = elapsed
                say(f"** first incident after {first_incident:.1f} s - see the dashboard")
            line = (
                f"[{elapsed:6.0f} s] frames analysed {frames:5d} | detections {objects:6d} | "
                f"incidents {incidents:3d}"
            )
            if line != last_line:
                say(line)
                last_line = line
            if until_incidents is not None and incidents >= until_incidents:
                say(f"reached {incidents} incident(s)")
                break
            if duration_s is not None and elapsed >= duration_s:
                break
    finally:
        consumer.close()
    died = [f"{run.service.name} ({run.restarts}x)" for run in sup.services if run.restarts]
    if died:
        say(f"!! restarted on the way: {', '.join(died)}; see their logs in {settings.logs_dir()}")
        return 1
    return 0


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
    raise typer.Exit(
        run_demo(
            settings_of(ctx),
            video=video,
            loiter_threshold_s=loiter_threshold_s,
            duration_s=duration_s,
            until_incidents=until_incidents,
            say=say,
        )
    )
