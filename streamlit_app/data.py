"""The dashboard's access to the warehouse: one settings object, cached connections and queries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from shrinkwatch.settings import Settings, load_settings
from warehouse.db import Connection
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


@st.cache_data(ttl=2, show_spinner=False)
def incidents(limit: int = 500) -> pd.DataFrame:
    """Recent incidents as a frame, newest first."""
    from warehouse.incidents import list_incidents

    rows: list[dict[str, Any]] = list_incidents(connection(), limit=limit)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["dwell_s"] = [
            next((s["value"] for s in signals if s["name"] == "dwell_high_value_s"), None)
            for signals in frame["signals"]
        ]
        frame["zone_ids"] = [", ".join(z) for z in frame["zone_ids"]]
    return frame


@st.cache_data(ttl=5, show_spinner=False)
def stores() -> list[str]:
    """Store ids of the site configuration."""
    from warehouse.site_tables import load_stores

    return [store.id for store in load_stores(connection())]


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


def live_frames() -> dict[str, Path]:
    """The newest annotated frame of each camera, by camera id."""
    folder = settings().live_dir()
    return {p.stem: p for p in sorted(folder.glob("*.jpg"))} if folder.is_dir() else {}
