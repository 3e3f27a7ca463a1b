"""ByteTrack per camera, turning pixel boxes into the contract's normalised objects.

Our own ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every
Detection Box", ECCV 2022), written from the paper's algorithm, with the parameters of
Ultralytics' bytetrack.yaml (below), so that a store box tracks without PyTorch or Ultralytics:

- Each track has a Kalman filter on (centre x, centre y, aspect w/h, height) and their
  velocities (constant velocity; noise proportional to the height).
- Each frame, every track that is tracked or lost is predicted; then the detections at
  TRACK_HIGH_THRESH or more are matched to them by IoU (the IoU multiplied by the detection's
  score), at a cost (1 - that) of at most MATCH_THRESH; the tracked ones left over are matched to the
  detections between TRACK_LOW_THRESH and TRACK_HIGH_THRESH by IoU alone (cost <= 0.5): a
  person the model sees faintly keeps their track; tracks still unmatched are lost.
  Unconfirmed tracks (born on the frame before) are matched to the high detections left over
  (fused IoU, cost <= 0.7) or removed. A high detection still left over, at NEW_TRACK_THRESH
  or more, starts a new, unconfirmed track. A lost track is kept TRACK_BUFFER frames, then
  removed; a lost track that is found again keeps its id. Assignment is `lap.lapjv`.
- A track is confirmed on its second matched frame (on the tracker's first frame at once).
  Of a lost track and a tracked one that overlap (IoU > 0.85), the younger is dropped.
- Track ids count from 1 for each tracker (each camera has its own).

The tracker returns only confirmed tracks: ByteTrack confirms a new person on their second
matched frame, and one it lost and found again can drop out for a frame. Those people are
still in the picture, so `untracked` gives back every person detection that no tracked object
stands for, without a track id: they are kept for redaction only (heads blurred in the live
view and the evidence, written in the tracks file) and are never published.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import lap
import numpy as np

from detector.model import Boxes
from detector.pose import iou_matrix
from shrinkwatch.contracts import DetectedObject

MATCH_IOU = 0.5  # a tracked box stands for the detection it overlaps this much (one each)

# Ultralytics' cfg/trackers/bytetrack.yaml
TRACK_HIGH_THRESH = 0.25  # first association: detections at this score or more
TRACK_LOW_THRESH = 0.1  # second association: detections above this and below the high one
NEW_TRACK_THRESH = 0.25  # a new track from an unmatched detection at this score or more
TRACK_BUFFER = 30  # frames a lost track is kept (at its 30 fps frame rate: one per frame)
MATCH_THRESH = 0.8  # first association: largest cost (1 - IoU x score)
FUSE_SCORE = True  # the first association's IoU is multiplied by the detection's score
# ByteTrack's own thresholds
LOW_MATCH_THRESH = 0.5  # second association: largest cost (1 - IoU)
UNCONFIRMED_MATCH_THRESH = 0.7  # unconfirmed tracks: largest cost (1 - fused IoU)
DUPLICATE_COST = 0.15  # a lost and a tracked track closer than this (1 - IoU) are one

# The Kalman filter's noise, relative to the box's height (as in DeepSORT and ByteTrack).
STD_POSITION = 1.0 / 20
STD_VELOCITY = 1.0 / 160


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """A box as centre x, centre y, aspect (w/h), height."""
    w, h = xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]
    return np.array([xyxy[0] + w / 2, xyxy[1] + h / 2, w / max(h, 1e-9), h], np.float64)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(cx, cy, aspect, h) back to x1, y1, x2, y2."""
    cx, cy, a, h = xyah[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float64)


class Kalman:
    """A constant-velocity Kalman filter on (cx, cy, aspect, h) and their velocities."""

    MOTION = np.eye(8) + np.eye(8, k=4)
    MEASURE = np.eye(4, 8)

    @staticmethod
    def start(measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state of a new track at its first box: (mean (8,), covariance (8,8))."""
        h = measured[3]
        std = np.array(
            [2 * STD_POSITION * h] * 2
            + [1e-2, 2 * STD_POSITION * h]
            + [10 * STD_VELOCITY * h] * 2
            + [1e-5, 10 * STD_VELOCITY * h]
        )
        return np.concatenate([measured, np.zeros(4)]), np.diag(std**2)

    @classmethod
    def predict(cls, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state one frame on."""
        h = mean[3]
        std = np.array(
            [STD_POSITION * h] * 2
            + [1e-2, STD_POSITION * h]
            + [STD_VELOCITY * h] * 2
            + [1e-5, STD_VELOCITY * h]
        )
        return cls.MOTION @ mean, cls.MOTION @ cov @ cls.MOTION.T + np.diag(std**2)

    @classmethod
    def correct(
        cls, mean: np.ndarray, cov: np.ndarray, measured: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The state after seeing `measured` (cx, cy, aspect, h)."""
        h = mean[3]
        noise = np.diag(np.array([STD_POSITION * h, STD_POSITION * h, 1e-1, STD_POSITION * h]) ** 2)
        projected = cls.MEASURE @ mean
        innovation_cov = cls.MEASURE @ cov @ cls.MEASURE.T + noise
        gain = np.linalg.solve(innovation_cov, (cov @ cls.MEASURE.T).T).T
        return mean + gain @ (measured - projected), cov - gain @ innovation_cov @ gain.T


class State(Enum):
    TRACKED = 1
    LOST = 2
    REMOVED = 3


@dataclass
class Track:
    """One track's filter and what it last matched."""

    mean: np.ndarray
    cov: np.ndarray
    score: float
    cls: int
    det: int  # the index of the detection it matched in the latest frame
    start: int  # the frame it started
    seen: int  # the last frame it matched
    track_id: int = 0
    state: State = State.TRACKED
    confirmed: bool = False

    @property
    def xyxy(self) -> np.ndarray:
        return xyah_to_xyxy(self.mean)

    def see(self, xyxy: np.ndarray, score: float, cls: int, det: int, frame: int) -> None:
        """The track matched a detection in `frame`: corrected, tracked and confirmed."""
        self.mean, self.cov = Kalman.correct(self.mean, self.cov, xyxy_to_xyah(xyxy))
        self.score, self.cls, self.det, self.seen = score, cls, det, frame
        self.state, self.confirmed = State.TRACKED, True


def _costs(tracks: list[Track], boxes: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """1 - IoU of each track with each box (times the box's score, where given)."""
    if not tracks or len(boxes) == 0:
        return np.zeros((len(tracks), len(boxes)), np.float64)
    similarity = iou_matrix(np.array([t.xyxy for t in tracks], np.float32), boxes.astype(np.float32))
    if scores is not None:
        similarity = similarity * scores[None, :]
    return 1.0 - similarity.astype(np.float64)


def assign(costs: np.ndarray, limit: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """The cheapest one-to-one pairs of rows and columns costing at most `limit`:
    (pairs, unmatched rows, unmatched columns)."""
    rows, cols = costs.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    _, row_to_col, col_to_row = lap.lapjv(costs, extend_cost=True, cost_limit=limit)
    pairs = [(r, int(c)) for r, c in enumerate(row_to_col) if c >= 0]
    return (
        pairs,
        [r for r, c in enumerate(row_to_col) if c < 0],
        [c for c, r in enumerate(col_to_row) if r < 0],
    )


class ByteTrack:
    """ByteTrack over one camera's frames: `update` gives the confirmed tracks of each frame."""

    def __init__(self) -> None:
        self.frame = 0
        self.tracked: list[Track] = []
        self.lost: list[Track] = []
        self._next_id = 0

    def update(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> list[Track]:
        """Associate this frame's detections (pixels) with the tracks; the confirmed tracks,
        each with the index of the detection it matched in this frame."""
        self.frame += 1
        high = np.flatnonzero(conf >= TRACK_HIGH_THRESH)
        low = np.flatnonzero((conf > TRACK_LOW_THRESH) & (conf < TRACK_HIGH_THRESH))
        unconfirmed = [t for t in self.tracked if not t.confirmed]
        pool = [t for t in self.tracked if t.confirmed] + self.lost
        for track in pool:
            if track.state != State.TRACKED:
                track.mean[7] = 0.0  # a lost track's height stops changing
            track.mean, track.cov = Kalman.predict(track.mean, track.cov)

        def see(track: Track, det: int) -> None:
            track.see(xyxy[det], float(conf[det]), int(cls[det]), det, self.frame)

        # 1. high-score detections: every tracked or lost track, IoU fused with the score
        fused = conf[high] if FUSE_SCORE else None
        pairs, left_tracks, left_high = assign(_costs(pool, xyxy[high], fused), MATCH_THRESH)
        for t, d in pairs:
            see(pool[t], int(high[d]))
        # 2. low-score detections: the tracked ones still unmatched, IoU alone
        rest = [pool[t] for t in left_tracks if pool[t].state == State.TRACKED]
        pairs, left_rest, _ = assign(_costs(rest, xyxy[low], None), LOW_MATCH_THRESH)
        for t, d in pairs:
            see(rest[t], int(low[d]))
        for t in left_rest:
            rest[t].state = State.LOST
        # 3. unconfirmed tracks: the high detections left over, or removed
        high = high[left_high]
        fused = conf[high] if FUSE_SCORE else None
        pairs, left_new, left_high = assign(_costs(unconfirmed, xyxy[high], fused), UNCONFIRMED_MATCH_THRESH)
        for t, d in pairs:
            see(unconfirmed[t], int(high[d]))
        for t in left_new:
            unconfirmed[t].state = State.REMOVED
        # 4. new tracks from the high detections still left
        born = [
            self._start(xyxy[d], float(conf[d]), int(cls[d]), int(d))
            for d in high[left_high]
            if conf[d] >= NEW_TRACK_THRESH
        ]
        for track in self.lost:
            if track.state == State.LOST and self.frame - track.seen > TRACK_BUFFER:
                track.state = State.REMOVED
        everyone = self.tracked + self.lost
        self.tracked = [t for t in everyone if t.state == State.TRACKED] + born
        self.lost = [t for t in everyone if t.state == State.LOST]
        self._drop_duplicates()
        return [t for t in self.tracked if t.confirmed]

    def _start(self, xyxy: np.ndarray, score: float, cls: int, det: int) -> Track:
        mean, cov = Kalman.start(xyxy_to_xyah(xyxy))
        self._next_id += 1
        return Track(
            mean,
            cov,
            score,
            cls,
            det,
            start=self.frame,
            seen=self.frame,
            track_id=self._next_id,
            confirmed=self.frame == 1,
        )

    def _drop_duplicates(self) -> None:
        """Of a tracked and a lost track on the same place, keep the one tracked longer."""
        costs = _costs(self.tracked, np.array([t.xyxy for t in self.lost]).reshape(-1, 4), None)
        drop: set[int] = set()
        for t, lost in zip(*np.nonzero(costs < DUPLICATE_COST), strict=True):
            a, b = self.tracked[int(t)], self.lost[int(lost)]
            drop.add(id(b) if a.seen - a.start > b.seen - b.start else id(a))
        if drop:
            self.tracked = [t for t in self.tracked if id(t) not in drop]
            self.lost = [t for t in self.lost if id(t) not in drop]


def _unit(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), 5)


def to_object(
    xyxy: tuple[float, float, float, float],
    track_id: int | None,
    score: float,
    cls: int,
    names: dict[int, str],
    width: int,
    height: int,
) -> DetectedObject:
    """A pixel box as the contract's object (normalised, clipped to the frame)."""
    x1, y1, x2, y2 = xyxy
    return DetectedObject(
        track_id=track_id,
        class_name=names.get(cls, str(cls)),
        class_id=cls,
        conf=round(min(max(score, 0.0), 1.0), 4),
        box=(_unit(x1 / width), _unit(y1 / height), _unit(x2 / width), _unit(y2 / height)),
    )


class CameraTracker:
    """Stable track ids for one camera's frames (ByteTrack, above)."""

    def __init__(self, names: dict[int, str]) -> None:
        self._tracker = ByteTrack()
        self._names = names

    def update(self, boxes: Boxes, width: int, height: int) -> list[DetectedObject]:
        """Associate this frame's boxes with tracks; only confirmed tracks are returned."""
        return self.update_seen(boxes, width, height)[0]

    def update_seen(
        self, boxes: Boxes, width: int, height: int
    ) -> tuple[list[DetectedObject], list[DetectedObject]]:
        """Associate this frame's boxes with tracks: (the confirmed tracks, with the tracker's
        boxes, which are what is published; the same tracks with the box of the detection each
        matched in this frame). A track's box is its motion model's estimate and lags a moving
        person by a few pixels: what is blurred and drawn on the frame is where the model saw
        the person in it."""
        published, seen = [], []
        for track in self._tracker.update(boxes.xyxy, boxes.conf, boxes.cls):
            score, cls = track.score, track.cls
            x1, y1, x2, y2 = (float(v) for v in track.xyxy)
            obj = to_object((x1, y1, x2, y2), track.track_id, score, cls, self._names, width, height)
            published.append(obj)
            dx1, dy1, dx2, dy2 = (float(v) for v in boxes.xyxy[track.det])
            box = to_object((dx1, dy1, dx2, dy2), None, score, cls, self._names, width, height).box
            seen.append(obj.model_copy(update={"box": box}))
        return published, seen


def untracked(
    boxes: Boxes, tracked: list[DetectedObject], names: dict[int, str], width: int, height: int
) -> list[DetectedObject]:
    """The person detections of `boxes` that no tracked object stands for, without a track id
    (for redaction only). Each tracked box stands for at most one detection, the one it
    overlaps most (IoU >= MATCH_IOU, best overlaps first), so a person half hidden behind a
    tracked one is not taken for them."""
    people = [i for i in range(len(boxes)) if names.get(int(boxes.cls[i])) == "person"]
    if not people:
        return []
    scale = np.array([width, height, width, height], np.float32)
    persons = [o.box for o in tracked if o.class_name == "person"]
    ious = iou_matrix(boxes.xyxy[people] / scale, np.array(persons, np.float32).reshape(-1, 4))
    claimed: set[int] = set()
    used: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        d, t = (int(v) for v in np.unravel_index(flat, ious.shape))
        if ious[d, t] < MATCH_IOU:
            break
        if d in claimed or t in used:
            continue
        claimed.add(d)
        used.add(t)
    out = []
    for d, i in enumerate(people):
        if d not in claimed:
            x1, y1, x2, y2 = (float(v) for v in boxes.xyxy[i])
            score, cls = float(boxes.conf[i]), int(boxes.cls[i])
            out.append(to_object((x1, y1, x2, y2), None, score, cls, names, width, height))
    return out
