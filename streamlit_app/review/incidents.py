"""Incidents: what the pipeline found, newest first, refreshed live."""

from __future__ import annotations

import streamlit as st

from streamlit_app import data

st.title("Incidents")
st.caption("Loss-prevention incidents from every camera, newest first. Refreshes every few seconds.")

COLUMNS = {
    "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm:ss"),
    "incident_type": st.column_config.TextColumn("Type"),
    "risk_level": st.column_config.TextColumn("Risk"),
    "risk_score": st.column_config.ProgressColumn("Score", min_value=0.0, max_value=1.0, format="%.2f"),
    "status": st.column_config.TextColumn("Status"),
    "store_id": st.column_config.TextColumn("Store"),
    "camera_id": st.column_config.TextColumn("Camera"),
    "zone_ids": st.column_config.TextColumn("Zones"),
    "track_id": st.column_config.NumberColumn("Track"),
    "dwell_s": st.column_config.NumberColumn("Dwell (s)", format="%.1f"),
    "ended_at": st.column_config.DatetimeColumn("Ended", format="HH:mm:ss"),
    "version": st.column_config.NumberColumn("Version"),
    "incident_id": st.column_config.TextColumn("Incident id"),
}


@st.fragment(run_every=3)
def incident_table() -> None:
    frame = data.incidents()
    if frame.empty:
        st.info("No incidents yet. They appear here as soon as the dataflow reports them.")
        return
    open_count = int((frame["status"] == "open").sum())
    high = int((frame["risk_level"] == "high").sum())
    c1, c2, c3 = st.columns(3)
    c1.metric("Incidents", len(frame))
    c2.metric("Open now", open_count)
    c3.metric("High risk", high)
    st.dataframe(frame[list(COLUMNS)], column_config=COLUMNS, hide_index=True, width="stretch")


def evidence() -> None:
    frame = data.incidents()
    if frame.empty or "snapshot" not in frame:
        return
    with_evidence = frame[frame["snapshot"].notna()]
    st.subheader("Evidence")
    if with_evidence.empty:
        st.caption("Snapshots and clips appear here once the detector has saved them.")
        return
    labels = {
        row.incident_id: f"{row.started_at:%Y-%m-%d %H:%M:%S} · {row.incident_type} · "
        f"{row.camera_id} · track {row.track_id}"
        for row in with_evidence.itertuples()
    }
    chosen = st.selectbox("Incident", list(labels), format_func=lambda key: labels[key])
    reference = with_evidence.set_index("incident_id").loc[chosen, "snapshot"]
    left, right = st.columns(2)
    snapshot = data.evidence_file(reference)
    clip = data.evidence_file(reference, ".mp4")
    if snapshot:
        left.image(str(snapshot), caption="Snapshot when the incident opened")
    else:
        left.warning(f"Snapshot {reference} is not in the evidence folder.")
    if clip:
        right.video(str(clip))
        right.caption("Clip: about 5 s before to 5 s after")


incident_table()
evidence()
