"""Case files: incidents exported for the police or an insurer, and the disclosure register."""

from __future__ import annotations

import streamlit as st

from streamlit_app import auth

signed = auth.page()
st.title("Case files")
st.info("Coming in this release.")
