"""How `shrinkwatch detect` ends (issue 21's review: a SIGABRT, "terminate called without an
active exception", was seen once as a reader exited).

`detect` runs as a child process on the shared int8 IR, with an atexit hook that says when the
interpreter finalises and a wrapper that says when the models are closed. A run that ends by
itself closes its models and finalises as any process does. A run with a camera thread that
does not end once stopped (its source blocked, as in a read inside FFmpeg) names that thread
and leaves with os._exit and its exit code: the models are not closed under it, and the
interpreter never finalises (the atexit hook stays silent).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shrinkwatch.paths import shared_file
from shrinkwatch.settings import REPO_ROOT
from tests.detector.test_hostile_sources import apply_site
from tests.support import VTEST, cli_env, wait_for

INT8 = shared_file("models", "yolov8n_int8_openvino_model")

CHILD = """
import atexit, sys, threading
import detector.runner as runner
import detector.sources as sources
from detector.model import Detector

runner.JOIN_S = 1.0
close = Detector.close

def closing(self):
    print("models closed", flush=True)
    close(self)

Detector.close = closing
if sys.argv[1] == "stuck":
    never = threading.Event()

    def frames(self, stop):
        print("camera reading", flush=True)
        never.wait()  # a read that never returns, whatever the stop says
        yield from ()

    sources.FileSource.frames = frames
atexit.register(lambda: print("interpreter finalised", flush=True))
sys.argv = ["shrinkwatch", *sys.argv[2:]]
from cli.main import main
main()
"""


@pytest.mark.slow
@pytest.mark.skipif(INT8 is None or VTEST is None, reason="needs the shared int8 IR and vtest.avi")
@pytest.mark.parametrize("case", ["ends", "stuck"])
def test_detect_closes_its_models_or_leaves_at_once_when_a_thread_is_stuck(
    case: str, settings: Any, tmp_path: Path
) -> None:
    # imgsz 320 on an IR made for 640: it runs at 640, and says so.
    settings = settings.model_copy(
        update={"model": str(INT8), "evidence": False, "pose_model": None, "imgsz": 320}
    )
    apply_site(settings, {"cam-one": str(VTEST)})
    args = ["detect", "--pace", "fast", "--max-frames", "3"] if case == "ends" else ["detect"]
    log = tmp_path / "detect.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, case, *args],
            cwd=REPO_ROOT,
            env=cli_env(settings, tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if case == "stuck":
            wait_for(lambda: "camera reading" in log.read_text(), 120, 0.2, "the camera to start")
            proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    if case == "ends":
        assert "cam-one: 3 frames" in text
        assert "at imgsz 640;" in text and "the imgsz setting (320) does not apply to it" in text
        assert "models closed" in text and "interpreter finalised" in text
        assert "still running" not in text
    else:
        assert "still running 1 s after the stop: camera-cam-one" in text
        assert "models closed" not in text  # the stuck thread might be inside them
        assert "interpreter finalised" not in text  # os._exit: no teardown under that thread
