"""`shrinkwatch camera-sim` and `shrinkwatch detect`: serve a file as a camera, read cameras."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.context import say, settings_of


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
    code = run_detect(settings_of(ctx), options, check_only=check, progress=say)
    raise typer.Exit(code)
