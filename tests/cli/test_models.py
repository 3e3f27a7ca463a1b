"""`shrinkwatch models export|list`: an export for a store box, printed where it is and how to
use it, and listed; on a store box (no Ultralytics) a clear error instead of an ImportError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detector.export import cache_folder
from shrinkwatch.settings import load_settings
from tests.support import MODEL, cli_env, needs_footage, run_cli


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    assert MODEL is not None
    settings = load_settings(None, home=tmp_path / "home", model=str(MODEL), model_cache=tmp_path / "cache")
    env = {k: v for k, v in cli_env(settings, tmp_path).items() if not k.startswith("YOLO_")}
    return env | extra  # Ultralytics' settings under the fresh home: its first-run notice too


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["models", "--help"], ["export", "list"]),
        (["models", "export", "--help"], ["--imgsz", "--precision", "--calibration", "--out", "--model"]),
        (["models", "list", "--help"], ["model cache"]),
    ],
)
def test_models_commands_have_help(args: list[str], expected: list[str]) -> None:
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    assert all(word in result.stdout for word in expected)


@needs_footage
def test_export_prints_the_model_folder_and_how_a_store_box_uses_it(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run_cli(["models", "list"], env=env).stderr.startswith("no exported models in ")
    out = tmp_path / "for-the-store"
    result = run_cli(
        ["models", "export", "--imgsz", "320", "--precision", "fp32", "--out", str(out)], env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr
    folder = out / "yolov8n_openvino_model"
    assert result.stdout == f"{folder}\n"  # standard output: the result, for scripts
    assert (folder / "yolov8n.xml").is_file() and (folder / "metadata.yaml").is_file()
    progress = result.stderr.splitlines()
    assert progress[0].startswith("exporting yolov8n to OpenVINO at imgsz 320, once (cached in ")
    assert progress[-2].startswith("exported: OpenVINO fp32, imgsz 320, any batch, ")
    assert progress[-1].startswith("on a store box: copy this folder there and set SHRINKWATCH_MODEL to it")
    listed = run_cli(["models", "list"], env=env)
    assert listed.returncode == 0
    (line,) = listed.stdout.splitlines()
    assert line.startswith(str(tmp_path / "cache")) and "openvino fp32  imgsz 320" in line


@needs_footage
def test_a_store_box_cannot_export_and_says_where_to(tmp_path: Path) -> None:
    # A store box's install: importing Ultralytics fails, as it does where it is not installed.
    lean = tmp_path / "lean"
    (lean / "ultralytics").mkdir(parents=True)
    (lean / "ultralytics" / "__init__.py").write_text("raise ImportError('No module named ultralytics')\n")
    path = os.pathsep.join(filter(None, [str(lean), os.environ.get("PYTHONPATH")]))
    result = run_cli(["models", "export", "--precision", "fp32"], env=_env(tmp_path, PYTHONPATH=path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: exporting needs the full install (PyTorch, Ultralytics, NNCF)")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists()


@needs_footage
@pytest.mark.parametrize("where", ["its-cache-folder", "inside-the-export", "the-cache"])
def test_export_refuses_to_copy_into_the_model_cache(where: str, tmp_path: Path) -> None:
    """`--out` in the model cache is refused before anything is exported or copied: as the
    export's own cache folder, the copy's rmtree removed the export it was about to copy."""
    assert MODEL is not None
    cache = tmp_path / "cache"
    export = cache_folder(MODEL, "openvino", 320, cache, "fp32", None) / "yolov8n_openvino_model"
    export.mkdir(parents=True)  # cached already: the export itself is not run
    (export / "yolov8n.xml").write_text("<net/>")
    out = {"its-cache-folder": export.parent, "inside-the-export": export / "copy", "the-cache": cache}[where]
    result = run_cli(
        ["models", "export", "--imgsz", "320", "--precision", "fp32", "--out", str(out)], env=_env(tmp_path)
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: --out {out} is inside the model cache ({cache}), where the export itself is kept: "
        "give a folder outside it\n"
    )
    assert sorted(p.name for p in export.iterdir()) == ["yolov8n.xml"]  # the export as it was
