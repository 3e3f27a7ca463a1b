"""Shrinkwatch dashboard: routes only; each page lives in its section folder."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

st.set_page_config(page_title="Shrinkwatch", page_icon=":material/shield:", layout="wide")
page = st.navigation(
    {
        "Review": [
            st.Page(
                HERE / "review" / "incidents.py", title="Incidents", icon=":material/warning:", default=True
            ),
            st.Page(HERE / "review" / "weights.py", title="Risk weights", icon=":material/tune:"),
        ],
        "Monitor": [
            st.Page(HERE / "monitor" / "live.py", title="Live view", icon=":material/videocam:"),
        ],
    }
)
page.run()
