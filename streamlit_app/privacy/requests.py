"""Access requests and erasure (admins): a person's footage found and exported with everyone
else blurred, or erased."""

from __future__ import annotations

import streamlit as st

from streamlit_app import auth

signed = auth.page()
st.title("Access requests")
st.info("Coming in this release.")
