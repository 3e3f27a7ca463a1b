"""The fault suite's site: one store open around the clock, synthetic cameras with the four
kinds of zone the driver's shoppers walk through, and a manager who gets every medium and
high-risk incident by email (no hourly cap, so what is sent never depends on timing)."""

from __future__ import annotations

STORE = "fault-store"
ZONES = """
      - {id: z-entrance, name: Entrance, kind: entrance,
         polygon: [[0.0, 0.5], [0.12, 0.5], [0.12, 1.0], [0.0, 1.0]]}
      - {id: z-shelf, name: Shelf, kind: general,
         polygon: [[0.2, 0.45], [0.4, 0.45], [0.4, 0.7], [0.2, 0.7]]}
      - {id: z-high-value, name: Phones, kind: high_value,
         polygon: [[0.2, 0.72], [0.4, 0.72], [0.4, 1.0], [0.2, 1.0]]}
      - {id: z-checkout, name: Checkout, kind: checkout,
         polygon: [[0.5, 0.5], [0.7, 0.5], [0.7, 1.0], [0.5, 1.0]]}
      - {id: z-exit, name: Exit, kind: exit,
         polygon: [[0.85, 0.5], [1.0, 0.5], [1.0, 1.0], [0.85, 1.0]]}"""


REAL_ZONES = """
      - {id: z-entrance, name: Entrance, kind: entrance,
         polygon: [[0.0, 0.28], [0.14, 0.28], [0.14, 0.52], [0.0, 0.52]]}
      - {id: z-electronics, name: Electronics, kind: high_value,
         polygon: [[0.31, 0.29], [0.65, 0.29], [0.67, 0.57], [0.29, 0.57]]}
      - {id: z-checkout, name: Checkout, kind: checkout,
         polygon: [[0.66, 0.30], [0.76, 0.30], [0.76, 0.58], [0.66, 0.58]]}
      - {id: z-exit, name: Exit, kind: exit,
         polygon: [[0.76, 0.30], [1.0, 0.30], [1.0, 0.62], [0.76, 0.62]]}"""


def site_yaml(cameras: list[str], real_camera: str | None = None) -> str:
    """The site file for these synthetic cameras, and `cam-real` reading `real_camera` (a
    stream URL; the demo's zones on the sample video) when given."""
    extra_cameras = (
        f"""
  - id: cam-real
    store_id: {STORE}
    name: Walkway
    stream_url: "{real_camera}"
    fps: 5
    zones:{REAL_ZONES}"""
        if real_camera
        else ""
    )
    days = "\n".join(f'      {d}: "00:00-24:00"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    items = "".join(
        f"""
  - id: {camera}
    store_id: {STORE}
    name: Synthetic {camera}
    stream_url: "synthetic://{camera}"
    fps: 5
    zones:{ZONES}"""
        for camera in cameras
    )
    return f"""stores:
  - id: {STORE}
    name: Fault Store
    city: Leeds
    timezone: Europe/London
    hours:
{days}
    subscription_active: true
    thresholds:
      loiter_s: 8
cameras:{items}{extra_cameras}
alerts:
  recipients:
    - id: fault-manager
      name: Fault store manager
      email: manager@fault-store.example
      channels: [email]
      stores: [{STORE}]
      min_level: medium
      max_per_hour: 100000
"""
