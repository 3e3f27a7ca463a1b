"""The store box's runtime: an OpenVINO IR runs without PyTorch or Ultralytics, and finds what
Ultralytics finds on the same IR.

The shared int8 IRs (detector and pose) on 50 frames of vtest.avi, spread over the whole
video: our letterbox, decoding and NMS against Ultralytics' predict on the same IR, same
settings (conf down to redact_conf, the product's classes). Then the runtime path of a camera
reader (Detector, CameraTracker, pose, detector.runner.analyse_frame) in a child process that
reports which modules it imported.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detector.export import exported_model
from detector.model import Boxes, Detector
from detector.pose import PoseModel
from detector.yolo_openvino import OpenVinoYolo, cores
from shrinkwatch.paths import shared_file
from shrinkwatch.settings import REPO_ROOT, load_settings
from tests.support import MODEL, VTEST

INT8 = shared_file("models", "yolov8n_int8_openvino_model")
POSE = shared_file("models", "yolov8n-pose_int8_openvino_model")
needs_irs = pytest.mark.skipif(
    INT8 is None or POSE is None or VTEST is None,
    reason="needs ../shared/models/*_int8_openvino_model and ../shared/video/vtest.avi",
)
FRAMES = 50


def frames(count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over vtest.avi."""
    capture = cv2.VideoCapture(str(VTEST))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, total - 1, count).astype(int).tolist())
    out = []
    for index in range(total):
        ok, image = capture.read()
        if not ok:
            break
        if index in wanted:
            out.append(image)
    capture.release()
    assert len(out) == count
    return out


def by_position(xyxy: np.ndarray, *rest: np.ndarray) -> list[np.ndarray]:
    order = np.lexsort((xyxy[:, 1], xyxy[:, 0]))
    return [xyxy[order], *(r[order] for r in rest)]


@needs_irs
@pytest.mark.slow
def test_openvino_runtime_finds_what_ultralytics_finds_on_the_same_ir(tmp_path: Path) -> None:
    ultralytics = pytest.importorskip("ultralytics")
    settings = load_settings(None, home=tmp_path, model=str(INT8))
    detector = Detector(settings)
    assert type(detector._engine).__name__ == "_OpenVino" and detector.backend == "openvino"
    reference = ultralytics.YOLO(str(INT8), task="detect")
    images = frames(FRAMES)
    people = 0
    for image in images:
        sure, faint = detector.infer_faint(image)
        ours = Boxes(
            *(
                np.concatenate([a, b])
                for a, b in zip(
                    (sure.xyxy, sure.conf, sure.cls), (faint.xyxy, faint.conf, faint.cls), strict=True
                )
            )
        )
        theirs = (
            reference.predict(
                image, imgsz=640, conf=detector.redact_conf, classes=detector.class_ids, verbose=False
            )[0]
            .boxes.cpu()
            .numpy()
        )
        assert len(ours) == len(theirs)
        xyxy, conf, cls = by_position(ours.xyxy, ours.conf, ours.cls)
        ref_xyxy, ref_conf, ref_cls = by_position(theirs.xyxy, theirs.conf, theirs.cls.astype(np.int32))
        np.testing.assert_allclose(xyxy, ref_xyxy, atol=1.0)
        np.testing.assert_allclose(conf, ref_conf, atol=0.01)
        assert cls.tolist() == ref_cls.tolist()
        assert (sure.conf >= settings.conf).all() and (faint.conf < settings.conf).all()
        people += int((cls == 0).sum())
    assert people >= 5 * FRAMES  # vtest has about 6 people a frame: the comparison saw them

    # Several cameras' frames at once (the AsyncInferQueue path): each as if alone, in order.
    together = detector.infer_faint_batch(images[:8])
    for image, (sure, faint) in zip(images[:8], together, strict=True):
        alone_sure, alone_faint = detector.infer_faint(image)
        np.testing.assert_allclose(sure.xyxy, alone_sure.xyxy, atol=1.0)
        np.testing.assert_allclose(faint.conf, alone_faint.conf, atol=0.01)

    # Several cameras' threads at once, each frame on a stream of its own: each as if alone.
    assert detector.streams == min(cores(), 4)
    on_streams: dict[int, tuple[Boxes, Boxes]] = {}

    def camera(first: int) -> None:
        for i in range(first, 8, 3):
            on_streams[i] = detector.infer_faint_on_stream(images[i])

    threads = [threading.Thread(target=camera, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(on_streams) == list(range(8))
    for i, (sure, faint) in on_streams.items():
        alone_sure, alone_faint = detector.infer_faint(images[i])
        np.testing.assert_allclose(sure.xyxy, alone_sure.xyxy, atol=1.0)
        np.testing.assert_allclose(faint.conf, alone_faint.conf, atol=0.01)
    detector.close()
    with pytest.raises(RuntimeError, match="the model was closed"):
        detector.infer_faint_on_stream(images[0])


@needs_irs
@pytest.mark.slow
def test_openvino_pose_finds_what_ultralytics_finds_on_the_same_ir() -> None:
    ultralytics = pytest.importorskip("ultralytics")
    assert POSE is not None
    ours = PoseModel(POSE, 640, 0.25)
    assert ours.openvino is not None and ours.model is None
    reference = PoseModel(POSE, 640, 0.25)
    reference.openvino, reference.model = None, ultralytics.YOLO(str(POSE), task="pose")  # its other branch
    found = 0
    for image in frames(10):
        boxes, points = ours.poses(image)
        ref_boxes, ref_points = reference.poses(image)
        assert len(boxes) == len(ref_boxes)
        boxes, points = by_position(boxes, points)
        ref_boxes, ref_points = by_position(ref_boxes, ref_points)
        np.testing.assert_allclose(boxes * 768, ref_boxes * 768, atol=1.0)
        np.testing.assert_allclose(points[..., :2] * 768, ref_points[..., :2] * 768, atol=1.0)
        np.testing.assert_allclose(points[..., 2], ref_points[..., 2], atol=0.01)
        found += len(boxes)
    assert found >= 10  # 18 people on these frames


RUNTIME_PATH = """
import json, sys
from pathlib import Path
import cv2
import cli.main  # what `shrinkwatch detect` imports
from detector.model import Detector
from detector.runner import analyse_frame
from detector.tracking import CameraTracker
from shrinkwatch.settings import load_settings

home, model, pose, video = sys.argv[1:]
detector = Detector(load_settings(None, home=Path(home), model=model, pose_model=pose, backend="auto"))
tracker = CameraTracker(detector.names)
capture = cv2.VideoCapture(video)
published = 0
for _ in range(5):
    ok, image = capture.read()
    objects, shown, hidden = analyse_frame(detector, tracker, image, [])
    published += len(objects)
print(json.dumps({"published": published, "keypoints": sum(o.keypoints is not None for o in shown),
                  "backend": detector.backend, "modules": sorted(sys.modules)}))
"""


@needs_irs
@pytest.mark.slow
def test_the_store_box_runtime_imports_neither_torch_nor_ultralytics(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUNTIME_PATH, str(tmp_path), str(INT8), str(POSE), str(VTEST)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["backend"] == "openvino"
    assert report["published"] > 0 and report["keypoints"] > 0  # it tracked people and placed poses
    roots = {name.split(".")[0] for name in report["modules"]}
    assert "openvino" in roots
    assert not roots & {"torch", "ultralytics", "torchvision", "onnxruntime"}


FIRST_FRAMES_AT_ONCE = """
import sys, threading
from pathlib import Path
import numpy as np
from detector.model import Detector
from shrinkwatch.settings import load_settings

home, model, video, cameras = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
detector = Detector(load_settings(None, home=Path(home), model=model, pose_model=None, backend="auto"))
sys.setswitchinterval(1e-6)  # the GIL changes hands as often as it can: races show themselves
start = threading.Barrier(cameras)
found = []

def camera() -> None:
    start.wait()
    sure, _ = detector.infer_faint_on_stream(np.full((480, 640, 3), 90, np.uint8))
    found.append(len(sure))

threads = [threading.Thread(target=camera) for _ in range(cameras)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
detector.close()
print(len(found))
"""


@needs_irs
@pytest.mark.slow
def test_cameras_that_reach_the_model_at_the_same_moment_do_not_deadlock(tmp_path: Path) -> None:
    # The first inference of a process sets up OpenVINO's numpy bridge in a C++ static
    # initialiser that runs Python code: two threads there at once deadlocked on the GIL
    # (`detect`'s cameras hung at their first frame). The model now makes that first call when
    # it loads. Eight threads start together in each of 12 fresh processes (the set-up happens
    # once a process): before the fix about one process in three hung here.
    cameras, runs = 8, 12
    script = [sys.executable, "-c", FIRST_FRAMES_AT_ONCE, str(tmp_path), str(INT8), str(VTEST), str(cameras)]
    for run in range(0, runs, 3):  # three processes at a time
        children = [
            subprocess.Popen(script, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(run, min(run + 3, runs))
        ]
        for child in children:
            try:
                out, err = child.communicate(timeout=300)  # a deadlock waits for ever; a slow start does not
            except subprocess.TimeoutExpired:
                for other in children:
                    other.kill()
                pytest.fail(f"{cameras} cameras' first frames at once: the process never finished (deadlock)")
            assert child.returncode == 0, err[-3000:]
            assert out.split() == [str(cameras)]  # every camera's frame came back


class _Output:
    def __init__(self, index: int) -> None:
        self.data = np.full((1, 6, 4), index, np.float32)  # each image's output says which it is


class _Request:
    def __init__(self, index: int) -> None:
        self._output = _Output(index)

    def get_output_tensor(self, _: int) -> _Output:
        return self._output


class _Queue:
    """An AsyncInferQueue stand-in: answers every image but `lost`, or raises at `fails`."""

    def __init__(self, lost: int | None = None, fails: int | None = None) -> None:
        self.lost, self.fails = lost, fails
        self.started: list[int] = []
        self.waited_after: list[int] | None = None  # what had started when wait_all was called
        self._done: Any = None

    def set_callback(self, done: Any) -> None:
        self._done = done

    def start_async(self, _: dict[int, np.ndarray], index: int) -> None:
        if index == self.fails:
            msg = "infer request failed"
            raise RuntimeError(msg)
        self.started.append(index)
        if index != self.lost:
            self._done(_Request(index), index)

    def wait_all(self) -> None:
        self.waited_after = list(self.started)


def _async_engine(queue: _Queue) -> OpenVinoYolo:
    """An OpenVinoYolo whose several-image path runs on `queue` (no IR compiled)."""
    engine = object.__new__(OpenVinoYolo)
    engine.batch, engine.input_hw, engine.imgsz, engine.threads = 1, (32, 32), 32, 2
    engine._lock = threading.Lock()
    engine._many, engine._core = queue, object()
    engine.streams, engine._free, engine._throughput = 2, None, None
    return engine


@pytest.mark.parametrize(
    ("queue", "error"),
    [
        (_Queue(), None),
        (_Queue(lost=1), r"no output for image\(s\) \[1\] of 3"),
        (_Queue(fails=2), "infer request failed"),
    ],
    ids=["all-answered", "one-lost", "start-fails"],
)
def test_images_in_flight_keep_their_order_or_fail_whole(queue: _Queue, error: str | None) -> None:
    """Each image gets its own output back, in order; an image without one fails the call
    (a shorter list would hand the next camera the boxes of the one before), and the requests
    started are waited for whether or not the call fails."""
    engine = _async_engine(queue)
    images = [np.full((24, 32, 3), i, np.uint8) for i in range(3)]
    if error is None:
        outputs = engine.run(images)
        assert [int(output[0, 0]) for output, _fit in outputs] == [0, 1, 2]
    else:
        with pytest.raises(RuntimeError, match=error):
            engine.run(images)
    assert queue.waited_after == queue.started  # waited for, after the last one started


def exported(tmp_path: Path, size: int) -> Path:
    """yolov8n.pt exported to OpenVINO fp32 at `size` (any batch): this machine's cached export,
    made once where it is not there (the full install)."""
    pytest.importorskip("ultralytics")
    assert MODEL is not None
    return exported_model(MODEL, "openvino", size, load_settings(None, home=tmp_path).model_cache_dir())


def static_ir(tmp_path: Path, batch: int) -> Path:
    """The fp32 export at 640 with its batch fixed to `batch`, saved as a model folder."""
    import openvino as ov

    source = exported(tmp_path, 640)
    model = ov.Core().read_model(str(next(source.glob("*.xml"))))
    model.reshape([batch, 3, 640, 640])
    folder = tmp_path / f"yolov8n_b{batch}_openvino_model"
    folder.mkdir()
    ov.save_model(model, str(folder / "yolov8n.xml"), compress_to_fp16=False)
    shutil.copy(source / "metadata.yaml", folder)
    return folder


@needs_irs
@pytest.mark.slow
def test_an_ir_of_a_static_batch_takes_one_frame_and_a_short_batch(tmp_path: Path) -> None:
    """An IR of a static batch of 4 takes one frame alone (padded to 4), and 3 frames
    together, and finds in each what the same model of a free batch finds."""
    images = frames(3)
    reference = Detector(load_settings(None, home=tmp_path, model=str(exported(tmp_path, 640))))
    batched = Detector(load_settings(None, home=tmp_path, model=str(static_ir(tmp_path, 4))))
    engine = batched._engine.model  # type: ignore[attr-defined]
    assert engine.batch == 4
    alone = [batched.infer_faint(image) for image in images]
    together = batched.infer_faint_batch(images)
    for image, one, many in zip(images, alone, together, strict=True):
        sure, faint = reference.infer_faint(image)
        for got_sure, got_faint in (one, many):
            assert len(got_sure) == len(sure) > 0 and len(got_faint) == len(faint)
            np.testing.assert_allclose(got_sure.xyxy, sure.xyxy, atol=1.0)
            np.testing.assert_allclose(got_sure.conf, sure.conf, atol=0.01)


def test_close_waits_for_the_images_in_flight_then_lets_go_of_everything() -> None:
    queue = _Queue()
    engine = _async_engine(queue)
    engine.run([np.zeros((24, 32, 3), np.uint8)] * 2)
    queue.waited_after = None
    engine._request, engine._single, engine._model = object(), object(), object()
    engine.close()
    assert queue.waited_after == [0, 1]  # what was in flight was waited for
    assert (engine._many, engine._request, engine._single, engine._model, engine._core) == (None,) * 5
    with pytest.raises(RuntimeError, match="the model was closed"):
        engine.run([np.zeros((24, 32, 3), np.uint8)])
    engine.close()  # again: nothing to do


@needs_irs
@pytest.mark.slow
def test_a_detector_closes_its_model_and_its_pose_model(tmp_path: Path) -> None:
    detector = Detector(load_settings(None, home=tmp_path, model=str(INT8), pose_model=str(POSE)))
    images = frames(3)
    assert len(detector.infer_faint_batch(images)) == 3  # the images-in-flight queue made too
    engine = detector._engine.model  # type: ignore[attr-defined]
    assert detector.pose is not None and engine._many is not None
    detector.close()
    assert engine._core is None and engine._many is None and detector.pose.openvino._core is None
    with pytest.raises(RuntimeError, match="the model was closed"):
        detector.infer(images[0])


@needs_irs
@pytest.mark.slow
@pytest.mark.parametrize(("ir_size", "setting"), [(320, 640), (640, 640), (640, 320)])
def test_the_detector_runs_at_its_irs_input_size_and_says_so(
    ir_size: int, setting: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = INT8 if ir_size == 640 else exported(tmp_path, ir_size)  # [1,3,640,640], [?,3,320,320]
    with caplog.at_level(logging.WARNING, logger="detector.model"):
        detector = Detector(load_settings(None, home=tmp_path, model=str(model), imgsz=setting))
    assert detector.imgsz == ir_size
    warned = [r.getMessage() for r in caplog.records if "imgsz setting" in r.getMessage()]
    if ir_size == setting:
        assert warned == []
    else:
        assert warned == [
            f"the model {Path(str(model)).name} takes {ir_size}-pixel images (its input size is fixed): "
            f"the imgsz setting ({setting}) does not apply to it; export it at that size to change it"
        ]
