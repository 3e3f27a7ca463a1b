"""`shrinkwatch run` and `shrinkwatch status`: keep the services running; show their state."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.context import say, settings_of
from infra.supervisor import Service, Supervisor, read_status, services_of
from shrinkwatch.settings import Settings
from shrinkwatch.settings import child_environment as settings_environment
from shrinkwatch.shutdown import stop_event_on_signals

Say = Callable[[str], None]


class Role(StrEnum):
    store = "store"
    central = "central"
    all = "all"


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment for the supervised commands: these settings, in `<home>/run/settings.yaml`
    (shrinkwatch.settings.child_environment)."""
    return settings_environment(settings, settings.home / "run" / "settings.yaml")


def dependencies_ready(settings: Settings) -> Callable[[], str | None]:
    """None when Kafka and PostgreSQL answer, else what does not."""
    from shrinkwatch.kafka_admin import kafka_healthy
    from warehouse.db import DatabaseUnreachable, connect

    def ready() -> str | None:
        ok, detail = kafka_healthy(settings.kafka_config(), timeout_s=2.0)
        if not ok:
            return f"Kafka at {settings.kafka_servers}: {detail}"
        try:
            connect(settings.database_dsn, timeout_s=2.0).close()
        except DatabaseUnreachable as exc:
            return f"PostgreSQL: {str(exc).splitlines()[0]}"
        return None

    return ready


def supervisor(settings: Settings, services: Sequence[Service], *, role: str, say: Say) -> Supervisor:
    """A supervisor of these services under these settings (not started)."""
    return Supervisor(
        services,
        home=settings.home,
        logs=settings.logs_dir(),
        env=lambda: child_environment(settings),
        role=role,
        say=say,
        ready=dependencies_ready(settings),
    )


def supervise(sup: Supervisor, stop: threading.Event, *, every_s: float = 0.5) -> None:
    """Start the services and watch them until `stop` is set; then stop them all."""
    try:
        sup.start()
        while not stop.wait(every_s):
            sup.poll()
    finally:
        sup.stop()


def run(
    ctx: typer.Context,
    role: Annotated[
        Role,
        typer.Option(
            help="store: the camera readers; central: the flows, schedulers, alerts and dashboard; "
            "all: both, on one box."
        ),
    ] = Role.all,
) -> None:
    """Keep a store's or a chain centre's services running: restart what dies, stop all on Ctrl-C."""
    settings = settings_of(ctx)
    services = services_of(role.value)
    sup = supervisor(settings, services, role=role.value, say=say)
    say(
        f"supervising {len(services)} service(s) for role {role.value} "
        f"(logs in {settings.logs_dir()}; `shrinkwatch status` shows them; Ctrl-C stops all)"
    )
    supervise(sup, stop_event_on_signals())
    say("all services stopped")


def _age(iso: str | None) -> str:
    if not iso:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def status_lines(state: dict[str, Any] | None, home: Path, lags: dict[str, str]) -> list[str]:
    """What `shrinkwatch status` prints for a supervisor's last state."""
    from infra.process import pid_alive

    if state is None:
        return [f"no `shrinkwatch run` has run with home {home}"]
    alive = pid_alive(int(state["pid"])) and not state.get("stopping")
    head = (
        f"supervisor pid {state['pid']}, role {state['role']}, up {_age(state['started_at'])}"
        if alive
        else f"supervisor not running (last state written {_age(state['updated_at'])} ago)"
    )
    rows = [("service", "state", "pid", "up for", "restarts", "lag", "last exit / last error")]
    for svc in state["services"]:
        last = " / ".join(x for x in (svc.get("last_exit"), svc.get("last_error")) if x) or "-"
        rows.append(
            (
                svc["name"],
                svc["state"] if alive else "stopped",
                str(svc["pid"] or "-") if alive else "-",
                _age(svc["up_since"]) if alive else "-",
                str(svc["restarts"]),
                lags.get(svc["name"], "-"),
                last,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = [head]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:6])) + "  " + row[6])
    return lines


def status(ctx: typer.Context) -> None:
    """Each supervised service: state, pid, up for, restarts, consumer lag, last exit and error."""
    from cli.lag import service_lags
    from infra.process import pid_alive

    settings = settings_of(ctx)
    state = read_status(settings.home)
    running = state is not None and pid_alive(int(state["pid"])) and not state.get("stopping")
    lags = service_lags(settings) if running else {}  # (nothing is reading when nothing runs)
    for line in status_lines(state, settings.home, lags):
        typer.echo(line)
