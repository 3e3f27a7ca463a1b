"""`shrinkwatch app`: run the Streamlit dashboard in this process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shrinkwatch.settings import Settings

APP = Path(__file__).with_name("app.py")


def streamlit_args(settings: Settings, port: int | None = None) -> list[str]:
    """The `python -m streamlit run ...` command line for the dashboard."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port or settings.dashboard_port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


def serve(settings: Settings, port: int | None = None) -> int:
    """Replace this process with Streamlit (it handles SIGINT/SIGTERM itself)."""
    args = streamlit_args(settings, port)
    print(f"dashboard: http://127.0.0.1:{port or settings.dashboard_port}", file=sys.stderr, flush=True)
    os.execv(args[0], args)
    return 0  # not reached
