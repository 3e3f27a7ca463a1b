"""Whether an int8 model holds the fp32 model's accuracy where it matters to a store: the
person-seconds it counts in each zone.

Both models read the same footage as a camera reader does (detector.runner.analyse_frame:
the model, the tracker, privacy zones blacked out first), not in real time; a zone's
person-seconds are the published people whose foot point stands in it, summed over the
analysed frames, divided by the analysed fps. int8 holds when every zone's figure is within
TOLERANCE (2 %) of fp32's, relative to fp32's. The check is run once, by `shrinkwatch models
export`, on the sample video with the demo site's zones (the rule of issue 21), and its
verdict is recorded beside the int8 model, where `precision: auto` reads it
(detector.export.prepare_model).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.export import exported_model, prepare_ultralytics, record_verdict, resolve_model_path
from detector.model import Detector
from detector.runner import analyse_frame, privacy_zones
from detector.sources import FileSource
from detector.tracking import CameraTracker
from privacy.redact import black_out, in_zones
from shrinkwatch.contracts import DetectedObject
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import Camera, Zone

TOLERANCE = 0.02


def person_seconds(
    frames: Iterable[Sequence[DetectedObject]], zones: Sequence[Zone], fps: float
) -> dict[str, float]:
    """{zone id: person-seconds}: people whose foot point is in the zone, summed over the
    frames, divided by the frames' rate."""
    counts = dict.fromkeys((z.id for z in zones), 0)
    for objects in frames:
        people = [o for o in objects if o.class_name == "person"]
        for zone in zones:
            counts[zone.id] += len(in_zones(people, [zone.polygon])[1])
    return {zone: count / fps for zone, count in counts.items()}


def relative_difference(reference: float, other: float) -> float:
    """|other - reference| relative to reference (0 when both are 0, infinite when only
    the reference is)."""
    if reference == 0:
        return 0.0 if other == 0 else float("inf")
    return abs(other - reference) / reference


def compare(fp32: dict[str, float], int8: dict[str, float], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """The verdict: each zone's figures and difference, and whether every one is within tolerance."""
    zones = {
        zone: {
            "fp32": fp32[zone],
            "int8": int8[zone],
            "difference": relative_difference(fp32[zone], int8[zone]),
        }
        for zone in fp32
    }
    holds = all(z["difference"] <= tolerance for z in zones.values())
    return {"holds": holds, "tolerance": tolerance, "zones": zones}


def analysed_frames(
    settings: Settings, model: Path, camera: Camera, video: Path, max_frames: int | None = None
) -> list[list[DetectedObject]]:
    """The published objects of each frame of `video` read at the camera's fps by `model`
    (an exported OpenVINO folder) as the camera's reader runs it, not in real time."""
    detector = Detector(
        settings.model_copy(update={"model": str(model), "backend": "openvino", "pose_model": None})
    )
    tracker = CameraTracker(detector.names)
    privacy = privacy_zones(camera)
    published: list[list[DetectedObject]] = []
    for frame in FileSource(str(video), camera.fps, realtime=False, loop=False).frames(threading.Event()):
        black_out(frame.image, privacy)
        objects, _shown, _hidden = analyse_frame(detector, tracker, frame.image, privacy)
        published.append(objects)
        if max_frames and len(published) >= max_frames:
            break
    return published


def zone_person_seconds(
    settings: Settings, model: Path, camera: Camera, video: Path, max_frames: int | None = None
) -> dict[str, float]:
    """Person-seconds per zone (privacy zones left out) that `model` counts on `video`."""
    zones = [z for z in camera.zones if z.kind != "privacy"]
    return person_seconds(analysed_frames(settings, model, camera, video, max_frames), zones, camera.fps)


def _pt_weights(settings: Settings, not_pt: str) -> tuple[Path, Path]:
    """The model setting's .pt weights (else ShrinkwatchError(`not_pt`)) and the export cache,
    with Ultralytics made ready to export offline."""
    weights = resolve_model_path(settings.model)
    if weights is None or weights.suffix != ".pt":
        raise ShrinkwatchError(not_pt)
    prepare_ultralytics(settings, offline=True)
    return weights, settings.model_cache_dir()


def check_int8(
    settings: Settings,
    camera: Camera,
    video: Path,
    calibration: Path | None = None,
    max_frames: int | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[Path, Path, dict[str, Any]]:
    """Export the model setting's .pt at fp32 and int8 (once, cached), compare their
    person-seconds per zone on `video` and record the verdict beside the int8 model:
    (fp32 model, int8 model, verdict)."""
    say = say or (lambda line: None)
    weights, cache = _pt_weights(
        settings, f"the int8 check needs .pt weights to export; model is {settings.model!r}"
    )
    fp32 = exported_model(weights, "openvino", settings.imgsz, cache, say, precision="fp32")
    int8 = exported_model(
        weights, "openvino", settings.imgsz, cache, say, precision="int8", calibration=calibration
    )
    zones = [z for z in camera.zones if z.kind != "privacy"]
    figures, frames = {}, 0
    for name, model in (("fp32", fp32), ("int8", int8)):
        say(f"counting person-seconds per zone on {video.name} with the {name} model...")
        published = analysed_frames(settings, model, camera, video, max_frames)
        figures[name], frames = person_seconds(published, zones, camera.fps), len(published)
    verdict = compare(figures["fp32"], figures["int8"])
    verdict.update(
        video=video.name,
        camera=camera.id,
        fps=camera.fps,
        frames=frames,
        imgsz=settings.imgsz,
        max_frames=max_frames,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    record_verdict(int8, verdict)
    return fp32, int8, verdict


def store_model(
    settings: Settings,
    camera: Camera,
    video: Path | None,
    calibration: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[Path, str, dict[str, Any] | None]:
    """The model a store box runs, exported once from the model setting's .pt at the setting's
    imgsz and precision: (OpenVINO folder, its precision, the int8 check's verdict or None).
    `auto` runs the int8 check on `video` (`camera`'s zones) and takes int8 where it held."""
    say = say or (lambda line: None)
    weights, cache = _pt_weights(
        settings,
        f"model {settings.model!r}: give the .pt weights to export (a path or a shared model's name)",
    )
    if settings.precision == "fp32":
        return exported_model(weights, "openvino", settings.imgsz, cache, say), "fp32", None
    if settings.precision == "int8":
        int8 = exported_model(
            weights, "openvino", settings.imgsz, cache, say, precision="int8", calibration=calibration
        )
        return int8, "int8", None
    if video is None:
        msg = (
            "precision auto checks int8 on the sample video (vtest.avi), which is not here: give --precision"
        )
        raise ShrinkwatchError(msg)
    fp32, int8, verdict = check_int8(settings, camera, video, calibration, say=say)
    return (int8, "int8", verdict) if verdict["holds"] else (fp32, "fp32", verdict)
