"""Redaction of frames: heads blurred, privacy zones blacked out, whole persons blurred.

No new model: a head is placed from the pose keypoints when the pose model ran (nose, eyes and
ears; above the shoulders when the face is not seen), and from the top of the person's box
otherwise. `blur_heads` blurs the top of the box even when keypoints place the head too: on
the sample video keypoints alone left the middle of the box's top sharp for about a quarter of
the people the model found (a pose given to a neighbour, or placed off the face). The regions
are generous on purpose: a blur that misses a face is a privacy failure, one that also covers
a shoulder is not. A blurred region is pixelated and then
smoothed, so nothing of the face's detail is left in the file (it cannot be "unblurred").

Coordinates in `DetectedObject`s are normalised (0..1); the functions work on BGR images in
place and return them, so a caller that must keep the original passes a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from shrinkwatch.contracts import DetectedObject, foot

FACE_KEYPOINTS = (0, 1, 2, 3, 4)  # COCO: nose, left eye, right eye, left ear, right ear
SHOULDERS = (5, 6)
MIN_KEYPOINT_CONF = 0.3
HEAD_MARGIN = 1.15  # each blurred head is this much larger than where its region is placed
_PIXEL_CELL = 6  # at most this many cells across a blurred head: no feature survives
_CELL_PX = 4  # a cell's size while it is smoothed


@dataclass(frozen=True)
class Ellipse:
    """An axis-aligned ellipse in pixels: centre and half-axes."""

    cx: float
    cy: float
    ax: float
    ay: float


def _seen(keypoints: Sequence[Sequence[float]] | None, indices: Iterable[int], width: int, height: int):
    if not keypoints:
        return []
    return [
        (keypoints[i][0] * width, keypoints[i][1] * height)
        for i in indices
        if i < len(keypoints) and keypoints[i][2] >= MIN_KEYPOINT_CONF
    ]


def head_region(obj: DetectedObject, width: int, height: int) -> Ellipse | None:
    """Where this person's head is, in pixels (from the keypoints when they place it, else the
    top of the box); None for an object that is not a person."""
    if obj.class_name != "person":
        return None
    x1, y1, x2, y2 = obj.box[0] * width, obj.box[1] * height, obj.box[2] * width, obj.box[3] * height
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    # A head is about a seventh of a standing person's height and a third of the box's width.
    least = max(0.16 * bw, 0.05 * bh, 3.0)
    face = _seen(obj.keypoints, FACE_KEYPOINTS, width, height)
    if face:
        xs, ys = [p[0] for p in face], [p[1] for p in face]
        spread = max(max(xs) - min(xs), max(ys) - min(ys))
        ax = max(0.9 * spread, least)
        ay = 1.3 * ax
        # Eyes and ears sit at the middle of the head; the nose a little lower.
        return Ellipse(float(np.mean(xs)), float(np.mean(ys)) - 0.1 * ay, ax, ay)
    shoulders = _seen(obj.keypoints, SHOULDERS, width, height)
    if len(shoulders) == 2:
        (sx1, sy1), (sx2, sy2) = shoulders
        span = max(abs(sx2 - sx1), least)
        ax = max(0.5 * span, least)
        ay = 1.3 * ax
        return Ellipse((sx1 + sx2) / 2, min(sy1, sy2) - 1.1 * ay, ax, ay)
    # No pose: the top of the box.
    ax = max(0.32 * bw, 0.06 * bh, 3.0)
    ay = max(0.11 * bh, ax)
    return Ellipse((x1 + x2) / 2, y1 + 0.85 * ay, ax, ay)


def _obscure(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """The region pixelated to a few cells and smoothed over a cell's width, so that not even
    the cells' edges are left (a new array of the region's size). The smoothing is done at
    `_CELL_PX` pixels a cell and then scaled to the region: its cost does not grow with the
    region's size."""
    region = image[y1:y2, x1:x2]
    h, w = region.shape[:2]
    cells_x = max(1, min(_PIXEL_CELL, w // 4))
    cells_y = max(1, min(round(_PIXEL_CELL * h / max(w, 1)), h // 4))
    small = cv2.resize(region, (cells_x, cells_y), interpolation=cv2.INTER_AREA)
    middle = cv2.resize(small, (cells_x * _CELL_PX, cells_y * _CELL_PX), interpolation=cv2.INTER_LINEAR)
    smooth = cv2.GaussianBlur(middle, (0, 0), _CELL_PX, borderType=cv2.BORDER_REPLICATE)
    shrinking = w < middle.shape[1] or h < middle.shape[0]
    return cv2.resize(smooth, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def blur_ellipses(image: np.ndarray, ellipses: Iterable[Ellipse]) -> np.ndarray:
    """Each ellipse of `image` obscured, in place."""
    height, width = image.shape[:2]
    for e in ellipses:
        x1, y1 = max(0, int(e.cx - e.ax) - 1), max(0, int(e.cy - e.ay) - 1)
        x2, y2 = min(width, int(e.cx + e.ax) + 2), min(height, int(e.cy + e.ay) + 2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        mask = np.zeros((y2 - y1, x2 - x1), np.uint8)
        centre = (round(e.cx - x1), round(e.cy - y1))
        cv2.ellipse(mask, centre, (max(1, round(e.ax)), max(1, round(e.ay))), 0, 0, 360, 255, -1)
        obscured = _obscure(image, x1, y1, x2, y2)
        region = image[y1:y2, x1:x2]
        np.copyto(region, obscured, where=mask[:, :, None].astype(bool))
    return image


def head_regions(obj: DetectedObject, width: int, height: int) -> list[Ellipse]:
    """Every region blurred as this person's head: the top of the box, and where the keypoints
    place the head when they do (empty for an object that is not a person)."""
    top = head_region(obj.model_copy(update={"keypoints": None}), width, height)
    if top is None:
        return []
    placed = head_region(obj, width, height) if obj.keypoints else None
    return [top] if placed is None or placed == top else [top, placed]


def blur_heads(image: np.ndarray, objects: Iterable[DetectedObject]) -> np.ndarray:
    """Every person's head in `image` obscured (each of its `head_regions`, grown by
    HEAD_MARGIN: a box found again in the same frame lands a few pixels off), in place."""
    height, width = image.shape[:2]
    grown = [
        Ellipse(r.cx, r.cy, r.ax * HEAD_MARGIN, r.ay * HEAD_MARGIN)
        for o in objects
        for r in head_regions(o, width, height)
    ]
    return blur_ellipses(image, grown)


def blur_people(
    image: np.ndarray, objects: Iterable[DetectedObject], *, keep: Iterable[int] = (), pad: float = 0.06
) -> np.ndarray:
    """Every person obscured whole (their box, padded by `pad` of its size), in place, except
    the tracks in `keep`."""
    kept = set(keep)
    height, width = image.shape[:2]
    for obj in objects:
        if obj.class_name != "person" or (obj.track_id is not None and obj.track_id in kept):
            continue
        x1, y1, x2, y2 = obj.box
        px, py = (x2 - x1) * pad, (y2 - y1) * pad
        left, top = max(0, int((x1 - px) * width)), max(0, int((y1 - py) * height))
        right, bottom = min(width, int((x2 + px) * width) + 1), min(height, int((y2 + py) * height) + 1)
        if right - left >= 2 and bottom - top >= 2:
            image[top:bottom, left:right] = _obscure(image, left, top, right, bottom)
    return image


def black_out(image: np.ndarray, polygons: Iterable[Sequence[tuple[float, float]]]) -> np.ndarray:
    """Each polygon (normalised points) filled black, in place."""
    height, width = image.shape[:2]
    shapes = [
        np.array([(round(x * width), round(y * height)) for x, y in polygon], np.int32)
        for polygon in polygons
    ]
    if shapes:
        cv2.fillPoly(image, shapes, (0, 0, 0))
    return image


def in_zones(
    objects: Iterable[DetectedObject], polygons: Iterable[Sequence[tuple[float, float]]]
) -> tuple[list[DetectedObject], list[DetectedObject]]:
    """The objects split by where they stand (their foot point, shrinkwatch.contracts.foot):
    (outside every polygon, inside one); a foot on a polygon's edge counts as inside."""
    shapes = [np.array(polygon, np.float32).reshape(-1, 1, 2) for polygon in polygons]
    outside: list[DetectedObject] = []
    inside: list[DetectedObject] = []
    for obj in objects:
        point = foot(obj.box)
        hit = any(cv2.pointPolygonTest(shape, point, False) >= 0 for shape in shapes)
        (inside if hit else outside).append(obj)
    return outside, inside


def sharpness(image: np.ndarray, region: Ellipse, *, ignore: np.ndarray | None = None) -> float:
    """The variance of the Laplacian inside an ellipse (shrunk by 2 pixels, off its edge): how
    much fine detail is there (a face in focus scores in the hundreds; an obscured one near 0).
    `ignore` (a boolean mask of the image's size) leaves pixels out: what was drawn over the
    frame after it was redacted, a box or a label."""
    height, width = image.shape[:2]
    x1, y1 = max(0, int(region.cx - region.ax)), max(0, int(region.cy - region.ay))
    x2, y2 = min(width, int(region.cx + region.ax) + 1), min(height, int(region.cy + region.ay) + 1)
    if x2 - x1 < 5 or y2 - y1 < 5:
        return 0.0
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    laplacian = cv2.Laplacian(grey, cv2.CV_64F)
    mask = np.zeros(grey.shape, np.uint8)
    axes = (max(1, round(region.ax) - 2), max(1, round(region.ay) - 2))
    cv2.ellipse(mask, (round(region.cx - x1), round(region.cy - y1)), axes, 0, 0, 360, 255, -1)
    counted = mask > 0
    if ignore is not None:
        counted &= ~ignore[y1:y2, x1:x2]
    inside = laplacian[counted]
    return float(inside.var()) if inside.size else 0.0
