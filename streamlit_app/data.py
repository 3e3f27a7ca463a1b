"""The dashboard's access to the warehouse: one settings object, cached connections and queries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from shrinkwatch.settings import Settings, load_settings
from warehouse.db import Connection


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
