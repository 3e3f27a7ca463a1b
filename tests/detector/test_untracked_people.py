"""People the tracker has not confirmed are blurred, and not published (review finding on issue 20).

ByteTrack confirms a new person on their second matched frame. A camera reader is driven with
the sample video's first frame twice, a model stand-in that finds two people in the first and a
third, new one in the second, the real tracker, the real publisher on the real Kafka and the
real live view: on the second frame the tracker returns only the first two, and the third
person's head must still be blurred in the live view, kept in the ring without a track id (so
the evidence's tracks file has them) and left out of the published detection.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detector.model import Boxes
from detector.motion import MotionGate
from detector.publisher import Publisher
from detector.runner import CameraWorker, DetectOptions
from privacy import media
from shrinkwatch.contracts import DetectedObject, Detection, decode
from shrinkwatch.site_file import Camera
from tests.detector.test_evidence_privacy import BLURRED, PEOPLE, SHARP, drawn, heads, measured, video_frames
from tests.support import read_all

NEW = 9  # the person who enters on the second frame


class ModelStandIn:
    """Finds PEOPLE in each frame: all but NEW in the first, everyone from the second on."""

    names = {0: "person"}
    pose = None

    def __init__(self) -> None:
        self.calls = 0

    def infer_faint(self, image: np.ndarray) -> tuple[Boxes, Boxes]:
        none = Boxes(
            xyxy=np.zeros((0, 4), np.float32), conf=np.zeros(0, np.float32), cls=np.zeros(0, np.int32)
        )
        return self.infer(image), none

    def infer(self, image: np.ndarray) -> Boxes:
        self.calls += 1
        height, width = image.shape[:2]
        found = [box for person, box in PEOPLE.items() if person != NEW or self.calls > 1]
        scale = np.array([width, height, width, height], np.float32)
        return Boxes(
            xyxy=np.array(found, np.float32) * scale,
            conf=np.full(len(found), 0.9, np.float32),
            cls=np.zeros(len(found), np.int32),
        )


def person(box: tuple[float, float, float, float]) -> DetectedObject:
    return DetectedObject(track_id=None, class_name="person", class_id=0, conf=0.9, box=box)


def test_a_person_the_tracker_has_not_confirmed_is_blurred_and_not_published(
    settings: Any, tmp_path: Path
) -> None:
    from detector.evidence import FrameRing

    [image] = video_frames(1)
    video = tmp_path / "two.avi"
    media.write_frames([image, image], 5.0, video)
    camera = Camera(id="cam-1", store_id="store-1", name="Walkway", stream_url=str(video), fps=5)
    ring = FrameRing("cam-1", 5.0, 10.0, tmp_path / "live", live_every_s=0.0, blur_heads=True)
    publisher = Publisher(settings)
    worker = CameraWorker(
        camera,
        ModelStandIn(),  # type: ignore[arg-type]
        publisher,
        DetectOptions(realtime=False),
        threading.Event(),
        MotionGate(enabled=False),
        ring,
    )
    worker.run()
    publisher.close()
    assert worker.stats.error is None and worker.stats.frames == 2

    # Published: both people on the first frame (the tracker's first frame confirms at once),
    # and on the second the same two, without the newcomer.
    frames = [decode(m.value(), Detection) for m in read_all(settings, settings.topic("detections"))]
    assert [f.frame_id for f in frames] == [0, 1]
    assert all(o.track_id is not None for f in frames for o in f.objects)
    assert [len(f.objects) for f in frames] == [2, 2]
    newcomer = np.array(PEOPLE[NEW])
    assert all(np.abs(np.array(o.box) - newcomer).max() > 0.05 for o in frames[1].objects)

    # The ring keeps the newcomer for redaction, without a track id, with the tracked two.
    kept = ring.frames[-1].objects
    assert sorted(o.track_id is None for o in kept) == [False, False, True]
    [unseen] = [o for o in kept if o.track_id is None]
    assert np.abs(np.array(unseen.box) - newcomer).max() < 0.002

    # The live view (the second frame): every head blurred, the newcomer's too; no box is drawn
    # for them (their head is measured with only the tracked boxes set aside).
    live = cv2.imread(str(tmp_path / "live" / "cam-1.jpg"))
    shape = image.shape
    ignore = drawn(shape, kept, None)
    assert ignore.sum() == drawn(shape, [o for o in kept if o.track_id is not None], None).sum()
    everyone = [person(box) for box in PEOPLE.values()]
    values = [measured(live, region, ignore) for _o, region in heads(everyone, shape, ignore)]
    assert len(values) == 3 and all(v < BLURRED for v in values), values
    # ... where the raw frame has them sharp: the measure can tell.
    raw = cv2.imdecode(np.frombuffer(ring.frames[-1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    [(_o, region)] = heads([person(PEOPLE[NEW])], shape, ignore)
    assert measured(raw, region, ignore) > SHARP
