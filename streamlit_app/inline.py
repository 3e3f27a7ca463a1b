"""Files handed to the browser inside the page, for the privacy pages: a case file, an access
request's answer, a key frame.

The dashboard's server closes Streamlit's media store (streamlit_app.gate_rules: it would
serve a file to any signed-in account that knows its address), and `st.download_button` and
`st.image` of bytes go through it. What these pages make is for the person who made it, at
that moment: it travels in the page itself (the page's websocket, to that session only) as
base64, and the browser turns it into a file (a blob: link) or shows it (a data: image).
"""

from __future__ import annotations

import base64
import html
import uuid

import streamlit as st

_BUTTON = (
    "display:inline-block;padding:0.45rem 0.9rem;border-radius:0.5rem;background:#ff4b4b;color:#fff;"
    "text-decoration:none;font-weight:500"
)


def download(label: str, data: bytes, file_name: str, mime: str) -> None:
    """A link that saves `data` as `file_name` in the browser."""
    element = f"dl-{uuid.uuid4().hex[:12]}"
    encoded = base64.b64encode(data).decode("ascii")
    st.html(
        f'<a id="{element}" download="{html.escape(file_name)}" style="{_BUTTON}">{html.escape(label)}</a>'
        f"<script>(() => {{const raw = atob('{encoded}'); const bytes = new Uint8Array(raw.length);"
        "for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);"
        f"document.getElementById('{element}').href = URL.createObjectURL("
        f"new Blob([bytes], {{type: '{html.escape(mime)}'}}));}})();</script>",
        unsafe_allow_javascript=True,
    )


def image(jpeg: bytes, alt: str) -> None:
    """A JPEG shown at the column's width."""
    encoded = base64.b64encode(jpeg).decode("ascii")
    st.html(
        f'<img alt="{html.escape(alt)}" src="data:image/jpeg;base64,{encoded}" '
        'style="width:100%;border-radius:0.5rem">'
    )
