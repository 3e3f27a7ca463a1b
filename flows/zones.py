"""Zone geometry: which zones contain a point, on normalised image coordinates."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZoneArea:
    """A camera zone's polygon with its kind; validates its shape once."""

    zone_id: str
    kind: str
    polygon: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.polygon) < 3:
            msg = f"zone {self.zone_id}: a polygon needs at least 3 points"
            raise ValueError(msg)
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        object.__setattr__(self, "_bbox", (min(xs), min(ys), max(xs), max(ys)))

    def contains(self, x: float, y: float) -> bool:
        """Even-odd ray casting; points on the boundary may fall either way."""
        x0, y0, x1, y1 = self._bbox  # type: ignore[attr-defined]
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return False
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
