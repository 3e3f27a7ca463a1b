"""`shrinkwatch camera-sim` and `shrinkwatch detect`: serve a file as a camera, read cameras."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.context import say, settings_of
from detector.shards import ShardBy
from shrinkwatch.settings import Settings


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
        port=port or settings_of(ctx).camera_sim_port,
        rtsp_port=rtsp_port,
        fps=fps,
        quality=quality,
        announce=say,
    )


class Pace(StrEnum):
    realtime = "realtime"
    fast = "fast"


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
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="I/N",
            help="Reader I of N: take only the cameras whose stable hash falls to I (docs/OPERATIONS.md).",
        ),
    ] = None,
    shard_by: Annotated[
        ShardBy, typer.Option(help="With --shard: hash the camera id, or its store's (a store together).")
    ] = ShardBy.camera,
) -> None:
    """Read the configured cameras, run YOLOv8 + ByteTrack, publish sw.detections."""
    from detector.runner import DetectOptions, run_detect
    from detector.shards import Shard
    from shrinkwatch.metrics import serve

    settings = settings_of(ctx)
    if shard is not None:
        camera = shard_cameras(settings, shard, shard_by, camera)
        if not camera:
            raise typer.Exit(0)
    if not check:  # /metrics at metrics_port + 10 x the shard (shrinkwatch.metrics)
        serve(settings, "detect", instance=Shard.parse(shard).index if shard is not None else 0)
    options = DetectOptions(
        camera_ids=camera or None,
        realtime=pace is Pace.realtime,
        loop=loop,
        max_frames=max_frames,
        motion_gating=motion_gating,
    )
    code = run_detect(settings, options, check_only=check, progress=say, exit_if_stuck=True)
    raise typer.Exit(code)


def shard_cameras(settings: Settings, text: str, by: ShardBy, named: list[str] | None) -> list[str]:
    """The enabled cameras (of those `named`, if any) that reader `text` (I/N) takes, said
    aloud. An empty shard is said and is no failure: the reader has nothing to do and exits 0."""
    from detector.shards import Shard, select
    from warehouse.db import connect
    from warehouse.site_tables import load_cameras

    try:
        shard = Shard.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--shard'") from None
    with connect(settings.database_dsn) as conn:
        cameras = load_cameras(conn, named or None)
    taken = select(((c.id, c.store_id) for c in cameras), shard, by)
    if not taken:
        say(f"shard {shard} (by {by}) takes none of the {len(cameras)} camera(s); nothing to read")
        return []
    say(f"shard {shard} (by {by}) takes {len(taken)} of {len(cameras)} camera(s): {', '.join(taken)}")
    return taken
