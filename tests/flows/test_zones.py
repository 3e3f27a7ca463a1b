"""Which zones contain a point: real polygons (concave, slanted, in perspective), not only boxes."""

from __future__ import annotations

import pytest

from flows.behaviour.zones import ZoneArea, ZoneIndex

# A shelf seen in perspective: wider near the camera (bottom of the image).
TRAPEZOID = ZoneArea("z-shelf", "high_value", ((0.35, 0.4), (0.65, 0.4), (0.8, 0.9), (0.2, 0.9)))
# An L-shaped stock room: concave, its notch at the top right.
L_SHAPE = ZoneArea(
    "z-stock", "restricted", ((0.0, 0.0), (0.3, 0.0), (0.3, 0.2), (0.1, 0.2), (0.1, 0.5), (0.0, 0.5))
)
# An exit lane drawn at a slant (a parallelogram).
SLANTED = ZoneArea("z-exit", "exit", ((0.7, 0.0), (0.9, 0.0), (1.0, 0.3), (0.8, 0.3)))
BOX = ZoneArea("z-checkout", "checkout", ((0.4, 0.0), (0.6, 0.0), (0.6, 0.3), (0.4, 0.3)))
INDEX = ZoneIndex([TRAPEZOID, L_SHAPE, SLANTED, BOX])


@pytest.mark.parametrize(
    ("point", "zones"),
    [
        ((0.5, 0.6), ["z-shelf"]),
        ((0.25, 0.85), ["z-shelf"]),  # the wide bottom of the trapezoid
        ((0.25, 0.45), []),  # inside its bounding box, outside the slanted side
        ((0.75, 0.45), []),
        ((0.05, 0.4), ["z-stock"]),  # the L's long arm
        ((0.2, 0.1), ["z-stock"]),  # its short arm
        ((0.2, 0.35), []),  # the notch: inside the bounding box, outside the L
        ((0.72, 0.02), ["z-exit"]),
        ((0.72, 0.28), []),  # left of the slanted lane's lower edge
        ((0.98, 0.28), ["z-exit"]),
        ((0.5, 0.1), ["z-checkout"]),
        ((0.5, 0.95), []),
    ],
)
def test_containing(point: tuple[float, float], zones: list[str]) -> None:
    assert [z.zone_id for z in INDEX.containing(*point)] == zones
    assert [z.zone_id for z in INDEX if z.contains(*point)] == zones  # the index agrees with each zone


def test_overlapping_zones_come_in_the_camera_order() -> None:
    inner = ZoneArea("z-inner", "general", ((0.45, 0.6), (0.55, 0.6), (0.55, 0.7), (0.45, 0.7)))
    assert [z.zone_id for z in ZoneIndex([TRAPEZOID, inner]).containing(0.5, 0.65)] == ["z-shelf", "z-inner"]


def test_high_value_zones_and_rectangles() -> None:
    assert INDEX.high_value == (TRAPEZOID,)
    assert BOX.rect and not TRAPEZOID.rect and not SLANTED.rect and not L_SHAPE.rect
    assert len(ZoneIndex()) == 0 and ZoneIndex().containing(0.5, 0.5) == []


def test_a_polygon_needs_three_points() -> None:
    with pytest.raises(ValueError, match="at least 3 points"):
        ZoneArea("z", "general", ((0.0, 0.0), (1.0, 1.0)))
