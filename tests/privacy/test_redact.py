"""Where a head is (pose keypoints, shoulders only, no pose), that a blurred head keeps no
detail, and who stands in a privacy zone (privacy.redact)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from privacy.redact import (
    HEAD_MARGIN,
    Ellipse,
    black_out,
    blur_heads,
    head_region,
    in_zones,
    sharpness,
)
from shrinkwatch.contracts import DetectedObject

W, H = 800, 600
BOX = (0.40, 0.20, 0.50, 0.80)  # 80 x 360 pixels: a standing person
NONE = (0.0, 0.0, 0.0)


def person(
    keypoints: list[tuple[float, float, float]] | None = None, box=BOX, track: int = 1
) -> DetectedObject:
    return DetectedObject(
        track_id=track, class_name="person", class_id=0, conf=0.9, box=box, keypoints=keypoints
    )


def pose(
    face: dict[int, tuple[float, float]], shoulders: tuple[tuple[float, float], tuple[float, float]] | None
) -> list[tuple[float, float, float]]:
    """17 COCO keypoints: the face points given (by index) seen, the shoulders if given."""
    points = [NONE] * 17
    for index, (x, y) in face.items():
        points[index] = (x, y, 0.9)
    if shoulders:
        points[5], points[6] = (*shoulders[0], 0.9), (*shoulders[1], 0.9)
    return points


def inside(e: Ellipse, x: float, y: float) -> bool:
    return ((x - e.cx) / e.ax) ** 2 + ((y - e.cy) / e.ay) ** 2 <= 1.0


SHOULDERS = ((0.42, 0.32), (0.48, 0.32))


def test_a_seen_face_places_the_head_on_its_keypoints() -> None:
    face = {0: (0.45, 0.26), 1: (0.455, 0.25), 2: (0.445, 0.25), 3: (0.46, 0.255), 4: (0.44, 0.255)}
    region = head_region(person(pose(face, SHOULDERS)), W, H)
    assert region is not None
    assert all(inside(region, x * W, y * H) for x, y in face.values())
    assert region.cx == pytest.approx(0.45 * W, abs=1)
    assert region.cy < 0.32 * H  # above the shoulders, not on them
    assert region.ay > region.ax  # a head is taller than it is wide


def test_a_face_turned_away_puts_the_head_above_the_shoulders() -> None:
    region = head_region(person(pose({}, SHOULDERS)), W, H)
    assert region is not None
    assert region.cx == pytest.approx(0.45 * W)
    assert region.cy + region.ay <= 0.32 * H + 1  # wholly above the shoulder line
    assert region.ax >= 0.5 * (0.48 - 0.42) * W  # as wide as the shoulders' half-span


def test_unsure_keypoints_count_as_not_seen() -> None:
    faint = [(0.45, 0.26, 0.1)] * 5 + [(*SHOULDERS[0], 0.9), (*SHOULDERS[1], 0.9)] + [NONE] * 10
    assert head_region(person(faint), W, H) == head_region(person(pose({}, SHOULDERS)), W, H)


@pytest.mark.parametrize("keypoints", [None, [NONE] * 17, pose({}, None)])
def test_without_a_pose_the_head_is_the_top_of_the_box(keypoints: list | None) -> None:
    region = head_region(person(keypoints), W, H)
    x1, y1, x2, y2 = BOX[0] * W, BOX[1] * H, BOX[2] * W, BOX[3] * H
    assert region is not None
    assert region.cx == pytest.approx((x1 + x2) / 2)
    assert y1 < region.cy < y1 + 0.2 * (y2 - y1)  # in the top fifth of the box
    assert inside(region, (x1 + x2) / 2, y1 + 2)  # the top of the head is covered
    assert 2 * region.ax >= 0.6 * (x2 - x1)  # most of the box's width


def test_only_people_have_heads() -> None:
    bag = DetectedObject(track_id=2, class_name="handbag", class_id=26, conf=0.8, box=BOX)
    assert head_region(bag, W, H) is None


def test_a_blurred_head_keeps_no_detail_and_the_rest_is_untouched() -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)  # detail everywhere
    original = image.copy()
    people = [person(track=1), person(box=(0.1, 0.5, 0.15, 0.9), track=2)]
    regions = [head_region(p, W, H) for p in people]
    before = [sharpness(image, r) for r in regions if r]
    blur_heads(image, people)
    after = [sharpness(image, r) for r in regions if r]
    assert min(before) > 1000 and max(after) < 5, (before, after)
    # Outside the heads (grown by HEAD_MARGIN, with a pixel of margin) nothing changed.
    mask = np.zeros((H, W), np.uint8)
    for r in regions:
        assert r is not None
        axes = (round(r.ax * HEAD_MARGIN) + 2, round(r.ay * HEAD_MARGIN) + 2)
        cv2.ellipse(mask, (round(r.cx), round(r.cy)), axes, 0, 0, 360, 1, -1)
    assert (image[mask == 0] == original[mask == 0]).all()


def test_sharpness_can_leave_drawn_pixels_out() -> None:
    image = np.full((100, 100, 3), 120, np.uint8)
    cv2.rectangle(image, (40, 10), (60, 90), (255, 255, 255), 2)  # a box drawn over a flat region
    region = Ellipse(50, 50, 30, 30)
    assert sharpness(image, region) > 100
    ignore = np.zeros((100, 100), bool)
    ignore[:, 37:64] = True
    assert sharpness(image, region, ignore=ignore) == 0.0


def test_who_stands_in_a_privacy_zone_goes_by_their_feet() -> None:
    zone = [(0.6, 0.5), (1.0, 0.5), (1.0, 1.0), (0.6, 1.0)]
    feet_in = person(box=(0.50, 0.1, 0.70, 0.8), track=1)  # foot (0.6, 0.8): on the edge, counts
    head_in = person(box=(0.65, 0.0, 0.75, 0.45), track=2)  # body in the zone's columns, feet above it
    away = person(box=(0.1, 0.5, 0.2, 0.9), track=3)
    outside, standing = in_zones([feet_in, head_in, away], [zone])
    assert [o.track_id for o in outside] == [2, 3] and [o.track_id for o in standing] == [1]
    assert in_zones([away], []) == ([away], [])


def test_black_out_fills_the_polygon_only() -> None:
    image = np.full((100, 200, 3), 200, np.uint8)
    black_out(image, [[(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]])
    assert image[:, 101:].max() == 0 and image[:, :99].min() == 200
