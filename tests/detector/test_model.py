"""Which runtime `backend: auto` picks and at which precision, the one-time export it
announces (fp32, and int8 calibrated on footage; both take any batch), and a store box
without PyTorch given .pt weights."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import export as model
from detector import model as runtime
from detector.export import (
    CALIBRATION_FRAMES,
    cache_folder,
    calibration_frames,
    choose_backend,
    choose_precision,
    exported_model,
    prepare_model,
    record_verdict,
)
from detector.model import Detector
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import load_settings
from tests.support import MODEL, VTEST, needs_footage

INT8 = shared_file("models", "yolov8n_int8_openvino_model")


@pytest.fixture(autouse=True)
def _own_ultralytics_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # prepare_model sets these for Ultralytics when unset; each test gets them back as they were.
    for name in ("YOLO_CONFIG_DIR", "YOLO_AUTOINSTALL", "YOLO_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [
        ("auto", False, "openvino"),  # a CPU: OpenVINO, exported once from the .pt
        ("auto", True, "pytorch"),  # CUDA: PyTorch on the GPU
        ("pytorch", False, "pytorch"),
        ("onnx", True, "onnx"),
        ("openvino", True, "openvino"),
    ],
)
def test_auto_picks_the_fastest_runtime_for_pt_weights(
    requested: str, cuda: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "_cuda_available", lambda: cuda)
    assert choose_backend(requested, Path("yolov8n.pt")) == expected


def test_auto_keeps_an_exported_model_as_it_is(tmp_path: Path) -> None:
    onnx = tmp_path / "yolov8n.onnx"
    onnx.write_bytes(b"")
    assert choose_backend("auto", onnx) == "onnx"
    if INT8 is not None:
        assert choose_backend("auto", INT8) == "openvino"
    assert choose_backend("auto", None) == "pytorch"  # a name Ultralytics resolves itself


@needs_footage
def test_export_is_announced_once_and_then_cached(tmp_path: Path) -> None:
    assert MODEL is not None
    said: list[str] = []
    target = exported_model(MODEL, "openvino", 320, tmp_path / "cache", said.append, heartbeat_s=0.5)
    assert target.name == "yolov8n_openvino_model" and any(target.glob("*.xml"))
    assert said[0].startswith("exporting yolov8n to OpenVINO at imgsz 320, once")
    assert said[-1].startswith("exported yolov8n to OpenVINO in ")
    again: list[str] = []
    assert exported_model(MODEL, "openvino", 320, tmp_path / "cache", again.append) == target
    assert again == []  # cached: nothing to say, nothing exported


@pytest.mark.parametrize(
    ("requested", "backend", "holds", "expected"),
    [
        ("auto", "openvino", True, "int8"),  # checked, and it held
        ("auto", "openvino", False, "fp32"),  # checked, and it did not
        ("auto", "openvino", None, "fp32"),  # never checked: fp32 until it is
        ("fp32", "openvino", True, "fp32"),
        ("int8", "openvino", False, "int8"),  # asked for: int8 whatever the check said
        ("auto", "pytorch", True, "fp32"),  # a GPU runs the .pt as it is
        ("int8", "onnx", None, ShrinkwatchError),  # int8 is OpenVINO's
        ("int8", "pytorch", None, ShrinkwatchError),
    ],
)
def test_precision_is_int8_where_asked_or_where_its_check_held(
    requested: str, backend: str, holds: bool | None, expected: str | type[Exception]
) -> None:
    if isinstance(expected, str):
        assert choose_precision(requested, backend, holds) == expected
    else:
        with pytest.raises(expected, match="int8 is for OpenVINO"):
            choose_precision(requested, backend, holds)


def _fake_export(folder: Path, verdict: dict[str, object] | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "yolov8n.xml").write_text("<net/>")
    if verdict is not None:
        record_verdict(folder, verdict)
    return folder


@needs_footage
@pytest.mark.parametrize(
    ("precision", "holds", "expected"),
    [("auto", True, "int8"), ("auto", False, "fp32"), ("auto", None, "fp32"), ("fp32", True, "fp32")],
)
def test_prepare_model_follows_the_recorded_int8_check(
    precision: str, holds: bool | None, expected: str, tmp_path: Path
) -> None:
    assert MODEL is not None
    cache = tmp_path / "cache"
    key = hashlib.sha256(MODEL.read_bytes()).hexdigest()[:16]
    fp32 = _fake_export(cache / f"{key}-640-fp32-anybatch" / "yolov8n_openvino_model")
    folder = cache / f"{key}-640-int8-0123456789ab-anybatch" / "yolov8n_int8_openvino_model"
    int8 = _fake_export(folder, None if holds is None else {"holds": holds})
    settings = load_settings(
        None, home=tmp_path, model=str(MODEL), backend="openvino", precision=precision, model_cache=cache
    )
    said: list[str] = []
    source, backend = prepare_model(settings, said.append)
    assert (Path(source), backend) == ({"int8": int8, "fp32": fp32}[expected], "openvino")
    if precision == "auto" and holds is None:
        assert said == [
            "int8's accuracy was not checked for this model and imgsz: fp32 until "
            "`shrinkwatch models export --precision auto` checks it"
        ]


@needs_footage
def test_a_store_box_given_pt_weights_is_told_to_export_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MODEL is not None
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # `import ultralytics` raises ImportError
    settings = load_settings(None, home=tmp_path, model=str(MODEL), model_cache=tmp_path / "cache")
    with pytest.raises(ShrinkwatchError, match="shrinkwatch models export") as raised:
        prepare_model(settings)
    assert "is PyTorch weights" in str(raised.value) and "SHRINKWATCH_MODEL" in str(raised.value)
    assert not (tmp_path / "cache").exists()  # nothing was tried


@needs_footage
@pytest.mark.slow
def test_int8_export_is_calibrated_on_footage_and_takes_any_batch(tmp_path: Path) -> None:
    assert MODEL is not None and VTEST is not None
    import openvino as ov

    said: list[str] = []
    cache = tmp_path / "cache"
    int8 = exported_model(MODEL, "openvino", 320, cache, said.append, precision="int8", calibration=VTEST)
    assert int8.name == "yolov8n_int8_openvino_model"
    fp32_folder = cache_folder(MODEL, "openvino", 320, cache, "fp32", None)
    assert [line for line in said if line.startswith(("exporting", "calibrating"))] == [
        f"exporting yolov8n to OpenVINO at imgsz 320, once (cached in {fp32_folder})...",
        f"exporting yolov8n to OpenVINO int8 at imgsz 320, once (cached in {int8.parent})...",
        f"calibrating on {CALIBRATION_FRAMES} frames of vtest.avi...",
    ]
    model = ov.Core().read_model(next(int8.glob("*.xml")))
    assert str(model.input().get_partial_shape()) == "[?,3,320,320]"
    assert sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops()) > 50
    assert exported_model(MODEL, "openvino", 320, cache, precision="int8", calibration=VTEST) == int8

    # A batch of three frames gives each frame what it gives alone, in the IR and in the Detector.
    images = calibration_frames(VTEST, 320, 3)
    compiled = ov.Core().compile_model(model, "CPU")
    alone = [compiled(image)[0] for image in images]
    together = compiled(np.concatenate(images))[0]
    assert together.shape[0] == 3
    for one, batched in zip(alone, together, strict=True):
        np.testing.assert_allclose(batched, one[0], atol=1e-3)
    detector = Detector(load_settings(None, home=tmp_path, model=str(int8), imgsz=320))
    frames = _video_frames(VTEST, 3)
    for (sure, faint), image in zip(detector.infer_faint_batch(frames), frames, strict=True):
        one_sure, one_faint = detector.infer_faint(image)
        assert len(sure) == len(one_sure) > 0 and len(faint) == len(one_faint)
        np.testing.assert_allclose(sure.xyxy, one_sure.xyxy, atol=0.5)
        np.testing.assert_allclose(sure.conf, one_sure.conf, atol=1e-3)


def _video_frames(video: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    for _ in range(count * 50):
        ok, image = capture.read()
        assert ok
        frames.append(image)
    capture.release()
    return frames[::50]


@pytest.mark.parametrize("full_install", [False, True], ids=["store-box", "full-install"])
def test_a_model_that_does_not_load_says_what_to_set_on_this_install(
    full_install: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store box (no PyTorch, no Ultralytics) is told of an exported model folder, never of
    .pt weights it cannot run; the full install is told of both."""
    broken = tmp_path / "yolov8n_openvino_model"
    broken.mkdir()
    (broken / "yolov8n.xml").write_text("<net/>")  # an IR in name only
    monkeypatch.setattr(runtime, "exporter_available", lambda: full_install)
    settings = load_settings(None, home=tmp_path, model=str(broken), model_cache=tmp_path / "cache")
    with pytest.raises(ShrinkwatchError, match=f"cannot load the YOLOv8 model '{broken}'") as raised:
        Detector(settings)
    hint = str(raised.value).splitlines()[-1]
    assert "an exported model folder (`shrinkwatch models export` makes one" in hint
    assert ("yolov8n.pt" in hint) is full_install
