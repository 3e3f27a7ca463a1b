"""Which runtime `backend: auto` picks, and the one-time export it announces."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector import export as model
from detector.export import choose_backend, exported_model
from shrinkwatch.paths import shared_file
from tests.support import MODEL, needs_footage

INT8 = shared_file("models", "yolov8n_int8_openvino_model")


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
