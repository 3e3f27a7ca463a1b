"""`shrinkwatch models export|list`: the model a store box runs, exported once where the full
install (PyTorch, Ultralytics, NNCF) is, and the exports this machine has cached
(docs/DETECTOR.md, "Exporting a model and its precision")."""

from __future__ import annotations

import contextlib
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from cli.context import say, settings_of
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.site_file import Camera, parse_site_config

app = typer.Typer(
    help="Models: export once for a store box; list the exports cached here.", no_args_is_help=True
)

DEMO_CAMERA = "cam-walkway"


def demo_camera(video: Path) -> Camera:
    """The demo site's camera (infra/demo_site.yaml) reading `video`: the zones the int8
    accuracy check counts person-seconds in."""
    text = resources.files("infra").joinpath("demo_site.yaml").read_text(encoding="utf-8")
    site = parse_site_config(text.replace("{stream_url}", str(video)), "demo site")
    return next(c for c in site.cameras if c.id == DEMO_CAMERA)


def _describe(verdict: dict[str, Any]) -> list[str]:
    """The int8 check's verdict for people: each zone's person-seconds, and the outcome."""
    lines = [f"int8 check on {verdict['video']} at {verdict['fps']} fps, person-seconds per zone:"]
    for zone, figures in verdict["zones"].items():
        lines.append(
            f"  {zone:<16} fp32 {figures['fp32']:8.1f}  int8 {figures['int8']:8.1f}  "
            f"difference {figures['difference'] * 100:5.2f} %"
        )
    tolerance = f"{verdict['tolerance'] * 100:.0f} %"
    if verdict["holds"]:
        lines.append(f"int8 held: every zone within {tolerance} of fp32")
    else:
        lines.append(f"int8 did not hold: a zone more than {tolerance} off fp32, so fp32")
    return lines


@app.command("export")
def export(
    ctx: typer.Context,
    imgsz: Annotated[
        int | None, typer.Option("--imgsz", help="Input size (multiple of 32); default: the imgsz setting.")
    ] = None,
    precision: Annotated[
        Literal["auto", "fp32", "int8"] | None,
        typer.Option(
            "--precision",
            help="int8, fp32, or auto: int8 where its person-seconds per zone on the sample video are within "
            "2 % of fp32's (checked now, a minute or two). Default: the precision setting.",
        ),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="Video to calibrate int8 on (footage like the store's cameras); default: the sample video.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Copy the exported model folder into this folder (to carry to a store box)."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="The .pt weights; default: the model setting.")
    ] = None,
) -> None:
    """Export the .pt weights once to an OpenVINO model a store box runs without PyTorch; print its folder."""
    from detector.accuracy import store_model
    from detector.export import default_calibration, exporter_available

    if not exporter_available():
        msg = (
            "exporting needs the full install (PyTorch, Ultralytics, NNCF): pip install 'shrinkwatch[export]'"
        )
        raise ShrinkwatchError(msg)
    if imgsz is not None and not (64 <= imgsz <= 1920 and imgsz % 32 == 0):
        msg = f"--imgsz {imgsz}: give a multiple of 32 from 64 to 1920 (640, 480, 416, 320, ...)"
        raise ShrinkwatchError(msg)
    settings = settings_of(ctx)
    update: dict[str, object] = {
        "imgsz": imgsz or settings.imgsz,
        "precision": precision or settings.precision,
    }
    if model:
        update["model"] = model
    settings = settings.model_copy(update=update)
    refused = out_refused(out, settings.model_cache_dir()) if out is not None else None
    if refused:
        raise ShrinkwatchError(refused)
    video = default_calibration()
    # Standard output is the folder alone: what the exporters print goes with our progress.
    with contextlib.redirect_stdout(sys.stderr):
        path, chosen, verdict = store_model(
            settings, demo_camera(video or Path("vtest.avi")), video, calibration, say=say
        )
    for line in _describe(verdict) if verdict else []:
        say(line)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        copy = out / path.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(path, copy)
        path = copy.resolve()
    say(f"exported: OpenVINO {chosen}, imgsz {settings.imgsz}, any batch, {_size_mb(path):.1f} MB")
    say(
        "on a store box: copy this folder there and set SHRINKWATCH_MODEL to it; it runs without "
        f"PyTorch, at the input size it was exported for ({settings.imgsz})"
    )
    typer.echo(str(path))


def out_refused(out: Path, cache: Path) -> str | None:
    """Why `--out` cannot take the export, or None: a folder in the model cache (the cache
    itself, an export's folder, or inside one), where the copy could replace, or be made inside,
    the very export it copies."""
    where, cache = out.expanduser().resolve(), cache.expanduser().resolve()
    if where != cache and cache not in where.parents:
        return None
    return (
        f"--out {out} is inside the model cache ({cache}), where the export itself is kept: "
        "give a folder outside it"
    )


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


@app.command("list")
def list_models(ctx: typer.Context) -> None:
    """The models exported on this machine (its model cache): folder, precision, imgsz, size, check."""
    from detector.export import cached_exports

    cache = settings_of(ctx).model_cache_dir()
    found = cached_exports(cache)
    if not found:
        say(f"no exported models in {cache}; export one with `shrinkwatch models export`")
        return
    for entry in found:
        verdict = entry.verdict
        check = (
            ""
            if verdict is None
            else ("  int8 check held" if verdict.get("holds") else "  int8 check did not hold")
        )
        typer.echo(
            f"{entry.path}  {entry.backend} {entry.precision}  imgsz {entry.imgsz}  "
            f"{_size_mb(entry.path):.1f} MB{check}"
        )
