"""Evidence log (admins): every view, download, reveal and export of evidence; legal holds."""

from __future__ import annotations

import streamlit as st

from streamlit_app import auth

signed = auth.page()
st.title("Evidence log")
st.info("Coming in this release.")
