"""The dashboard's access to the warehouse: one settings object, cached connections and
lookups. Those that list stores or cameras take the signed-in scope; the risk weights are
read for a store the page has already chosen from the scope's stores."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import streamlit as st

from shrinkwatch.settings import Settings, load_settings
from shrinkwatch.site_file import Zone
from shrinkwatch.wording import store_clock
from warehouse.db import Connection
from warehouse.scope import Scope
from warehouse.weights import WeightsVersion


@st.cache_resource
def settings() -> Settings:
    """Settings of the dashboard process (environment and SHRINKWATCH_SETTINGS_FILE)."""
    path = os.environ.get("SHRINKWATCH_SETTINGS_FILE")
    return load_settings(Path(path) if path else None)


@st.cache_resource
def _connection(dsn: str) -> Connection:
    from warehouse.db import connect

    return connect(dsn, autocommit=True)


def connection() -> Connection:
    """A live autocommit connection, re-opened if the server dropped it."""
    conn = _connection(settings().database_dsn)
    if conn.closed or conn.broken:
        _connection.clear()
        conn = _connection(settings().database_dsn)
    return conn


@st.cache_data(ttl=30, show_spinner=False)
def stores(scope: Scope) -> pd.DataFrame:
    """The stores in the scope: id, name, timezone, economics."""
    from warehouse.site_tables import stores_in_scope

    return stores_in_scope(connection(), scope)


@st.cache_data(ttl=30, show_spinner=False)
def cameras(scope: Scope) -> pd.DataFrame:
    """The cameras of the stores in the scope: id, store_id, name, location."""
    from warehouse.site_tables import cameras_in_scope

    return cameras_in_scope(connection(), scope)


def local_times(frame: pd.DataFrame, column: str, timezones: dict[str, str]) -> list[str]:
    """`column` of each row as the wall-clock time of its store (`store_id`), for tables."""
    out = []
    for store_id, moment in zip(frame["store_id"], frame[column], strict=True):
        if moment is None or pd.isna(moment):
            out.append("")
            continue
        out.append(store_clock(moment, timezones.get(store_id)).strftime("%Y-%m-%d %H:%M:%S"))
    return out


@st.cache_data(ttl=5, show_spinner=False)
def risk_weights() -> dict[str, WeightsVersion]:
    """The risk weights in force, by store (stores never calibrated are absent)."""
    from warehouse.weights import latest_weights

    return latest_weights(connection())


@st.cache_data(ttl=5, show_spinner=False)
def weights_history(store_id: str) -> pd.DataFrame:
    """A store's weight versions, newest first, one column per signal."""
    from warehouse.weights import weights_history as history

    return pd.DataFrame(
        [
            {"version": v.version, "computed": v.computed_at, "verdicts": v.reviews, **v.weights}
            for v in history(connection(), store_id)
        ]
    )


def client() -> str:
    """Where the viewer of this page is, for the evidence access log: the browser's address
    (or a trusted proxy's X-Forwarded-For, judged as the server judges it for sign-in), or
    "dashboard" when the page runs without a browser (a test)."""
    from streamlit_app.gate_rules import client_address

    headers = st.context.headers
    if not headers.get("Host"):
        return "dashboard"
    # Streamlit gives no address for a loopback peer (a proxy on this machine is one).
    peer = st.context.ip_address or "127.0.0.1"
    trusted = settings().dashboard_trusted_proxies
    if peer == "127.0.0.1" and "::1" in trusted and "127.0.0.1" not in trusted:
        peer = "::1"
    return client_address(peer, headers.get("X-Forwarded-For"), trusted)


def served_url(path: str) -> str:
    """The full address of one of the server's own routes (streamlit_app.served), on the
    site the browser is on (Streamlit's image and video elements take only full URLs)."""
    from urllib.parse import urlsplit

    from shrinkwatch.net import dashboard_url

    parts = urlsplit(st.context.url or "")
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}{path}"
    return dashboard_url(settings()) + path


def live_frames(camera_ids: set[str], *, viewer: str) -> dict[str, Path]:
    """The newest annotated frame of each of these cameras that has one, by camera id; each
    is a view of that camera's live frame by `viewer` in the evidence access log (once per
    warehouse.evidence_log.ONCE_PER_S, as the server's live route logs it)."""
    from warehouse.evidence_log import ONCE_PER_S, record

    folder = settings().live_dir()
    if not folder.is_dir():
        return {}
    found = {p.stem: p for p in sorted(folder.glob("*.jpg")) if p.stem in camera_ids}
    for camera_id in found:
        record(
            connection(),
            username=viewer,
            action="view",
            camera_id=camera_id,
            client=client(),
            detail={"file": "live"},
            once_per_s=ONCE_PER_S,
        )
    return found


def image_data_url(path: Path, zones: Iterable[Zone] = ()) -> str:
    """An image file as a data: URL (a Plotly figure draws it as its background), with the
    privacy zones among `zones` blacked out in the image itself: the page never holds their
    pixels, even for a zone drawn after the camera reader started (it blacks them out only
    from its next start)."""
    import base64

    data = path.read_bytes()
    kind = "png" if path.suffix.lower() == ".png" else "jpeg"
    private = [z.polygon for z in zones if z.kind == "privacy"]
    if private:
        import cv2
        import numpy as np

        from privacy.redact import black_out

        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:  # not an image we can black out: show nothing rather than the zone
            return ""
        ok, out = cv2.imencode(".jpg", black_out(image, private), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return ""
        data, kind = out.tobytes(), "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def image_aspect(path: Path) -> float:
    """Height / width of an image file."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return height / width if width else 1.0


ZONE_COLOURS = {  # BGR, by zone kind
    "high_value": (60, 60, 230),
    "restricted": (40, 40, 160),
    "checkout": (80, 180, 60),
    "entrance": (200, 140, 40),
    "exit": (200, 90, 160),
    "general": (200, 200, 200),
}


def with_zones(jpeg: bytes, zones: list[Zone]) -> bytes:
    """A camera frame (JPEG) with its privacy zones filled black and every zone outlined and
    named, as JPEG. The detector blacks privacy zones out of the frames it writes, but only
    those it read when it started: one drawn on the Cameras page since is filled here."""
    import cv2
    import numpy as np

    from privacy.redact import black_out

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or not zones:
        return jpeg
    black_out(image, [zone.polygon for zone in zones if zone.kind == "privacy"])
    height, width = image.shape[:2]
    for zone in zones:
        colour = ZONE_COLOURS.get(zone.kind, ZONE_COLOURS["general"])
        points = np.array([(round(x * width), round(y * height)) for x, y in zone.polygon], np.int32)
        cv2.polylines(image, [points], isClosed=True, color=colour, thickness=2, lineType=cv2.LINE_AA)
        x, y = points.min(axis=0)
        cv2.putText(
            image,
            zone.name[:24],
            (int(x) + 4, int(y) + 14),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            colour,
            1,
            cv2.LINE_AA,
        )
    ok, out = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return out.tobytes() if ok else jpeg
