"""Live view: the newest annotated frame of every camera, about once a second."""

from __future__ import annotations

import time

import streamlit as st

from streamlit_app import data

st.title("Live view")
st.caption("The newest analysed frame of each camera, with its tracked objects. Updates every second.")


@st.fragment(run_every=1)
def cameras() -> None:
    frames = data.live_frames()
    if not frames:
        st.info("No camera is being analysed on this machine right now (start `shrinkwatch detect`).")
        return
    columns = st.columns(min(3, len(frames)))
    for i, (camera_id, path) in enumerate(frames.items()):
        age = time.time() - path.stat().st_mtime
        with columns[i % len(columns)]:
            st.image(path.read_bytes(), caption=f"{camera_id} · {age:.0f} s ago")
            if age > 10:
                st.warning(f"{camera_id}: no new frame for {age:.0f} s")


cameras()
