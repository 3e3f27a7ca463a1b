"""`shrinkwatch flows run|calibrate`: the Bytewax dataflows and the weights' calibration."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import say, settings_of

app = typer.Typer(help="Bytewax dataflows.", no_args_is_help=True)


@app.command("run")
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
    """Run a Bytewax dataflow (incidents and occupancy read sw.detections, health
    sw.camera-health) until interrupted."""
    from flows.run import run_cluster, run_flow

    if processes > 1 and process_id is None and not check:
        settings_file = ctx.parent.params.get("settings_file") if ctx.parent else None
        status = run_cluster(
            settings_of(ctx),
            name,
            processes=processes,
            workers=workers,
            recovery=recovery,
            snapshot_s=snapshot_s,
            settings_file=settings_file,
            progress=say,
        )
        raise typer.Exit(status)
    tell = say if process_id is None else lambda text: say(f"[process {process_id}] {text}")
    run_flow(
        settings_of(ctx),
        name,
        workers=workers,
        recovery=recovery,
        snapshot_s=snapshot_s,
        check_only=check,
        process_id=process_id,
        addresses=addresses.split(";") if addresses else None,
        progress=tell,
    )


@app.command("calibrate")
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

    run_calibration(settings_of(ctx), schedule=schedule, progress=say)
