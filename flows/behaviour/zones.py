"""Zone geometry: which zones contain a point, on normalised image coordinates.

Privacy zones (kind `privacy`) are not the flows' to look at: the detector blacks them out
and publishes no one standing in one, and a `ZoneIndex` leaves them out, so no rule, no
occupancy row and no incident ever names one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

PRIVACY = "privacy"  # the zone kind that is never analysed


@dataclass(frozen=True)
class ZoneArea:
    """A camera zone's polygon with its kind; validates its shape once."""

    zone_id: str
    kind: str
    polygon: tuple[tuple[float, float], ...]
    bbox: tuple[float, float, float, float] = field(init=False, repr=False)  # x0, y0, x1, y1
    rect: bool = field(init=False, repr=False)  # an axis-aligned rectangle: its box is exact

    def __post_init__(self) -> None:
        if len(self.polygon) < 3:
            msg = f"zone {self.zone_id}: a polygon needs at least 3 points"
            raise ValueError(msg)
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        pts = self.polygon
        rect = (
            len(pts) == 4
            and set(pts) == {(x0, y0), (x1, y0), (x1, y1), (x0, y1)}
            and all(a[0] == b[0] or a[1] == b[1] for a, b in zip(pts, pts[1:] + pts[:1], strict=True))
        )
        object.__setattr__(self, "bbox", (x0, y0, x1, y1))
        object.__setattr__(self, "rect", rect)

    def contains(self, x: float, y: float) -> bool:
        """Even-odd ray casting; points on the boundary may fall either way."""
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return False
        if self.rect:
            return True
        inside = False
        pts = self.polygon
        j = len(pts) - 1
        for i in range(len(pts)):
            xi, yi = pts[i]
            xj, yj = pts[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside


class ZoneIndex:
    """The zones of one camera, answering "which zones contain this point" for every flow;
    privacy zones are left out (never analysed).

    Most points fall outside most zones, so each zone's bounding box is tested first and
    the polygon only when the box holds the point (an axis-aligned rectangle is its box).
    """

    __slots__ = ("_boxes", "high_value", "zones")

    def __init__(self, zones: Iterable[ZoneArea] = ()) -> None:
        self.zones: tuple[ZoneArea, ...] = tuple(z for z in zones if z.kind != PRIVACY)
        self.high_value: tuple[ZoneArea, ...] = tuple(z for z in self.zones if z.kind == "high_value")
        self._boxes = [(*z.bbox, z.rect, z) for z in self.zones]

    def containing(self, x: float, y: float) -> list[ZoneArea]:
        """The zones containing the point (x, y), in the camera's zone order."""
        found = []  # a plain loop: on Python 3.11 a comprehension costs a call of its own
        for x0, y0, x1, y1, rect, zone in self._boxes:
            if x0 <= x <= x1 and y0 <= y <= y1 and (rect or zone.contains(x, y)):
                found.append(zone)
        return found

    def __iter__(self) -> Iterator[ZoneArea]:
        return iter(self.zones)

    def __len__(self) -> int:
        return len(self.zones)
