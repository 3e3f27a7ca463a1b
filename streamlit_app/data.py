"""The dashboard's access to the warehouse: one settings object, cached connections and
scoped lookups (every function that reads stores takes the signed-in scope)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from shrinkwatch.settings import Settings, load_settings
from warehouse.db import Connection
from warehouse.queries import Scope
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
    from warehouse.queries import stores_in_scope

    return stores_in_scope(connection(), scope)


@st.cache_data(ttl=30, show_spinner=False)
def cameras(scope: Scope) -> pd.DataFrame:
    """The cameras of the stores in the scope: id, store_id, name, location."""
    from warehouse.queries import cameras_in_scope

    return cameras_in_scope(connection(), scope)


def local_times(frame: pd.DataFrame, column: str, timezones: dict[str, str]) -> list[str]:
    """`column` of each row as the wall-clock time of its store (`store_id`), for tables."""
    from zoneinfo import ZoneInfo

    out = []
    for store_id, moment in zip(frame["store_id"], frame[column], strict=True):
        if moment is None or pd.isna(moment):
            out.append("")
            continue
        zone = ZoneInfo(timezones.get(store_id, "UTC"))
        out.append(moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"))
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


def evidence_file(reference: str | None, suffix: str | None = None) -> Path | None:
    """The file an incident's `snapshot` reference names (or its clip, with suffix='.mp4')."""
    if not reference:
        return None
    root = settings().evidence_dir().resolve()
    path = (root / reference).resolve()
    if suffix:
        path = path.with_suffix(suffix)
    if root not in path.parents or not path.is_file():
        return None  # missing, or a reference that points outside the evidence folder
    return path


def live_frames(camera_ids: set[str]) -> dict[str, Path]:
    """The newest annotated frame of each of these cameras that has one, by camera id."""
    folder = settings().live_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.jpg")) if p.stem in camera_ids}


def image_data_url(path: Path) -> str:
    """An image file as a data: URL (a Plotly figure draws it as its background)."""
    import base64

    kind = "png" if path.suffix.lower() == ".png" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def image_aspect(path: Path) -> float:
    """Height / width of an image file."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return height / width if width else 1.0


def signal_label(name: str) -> str:
    """A signal's name for people: `dwell_high_value_s` -> "dwell high value"."""
    return name.removesuffix("_s").replace("_", " ")
