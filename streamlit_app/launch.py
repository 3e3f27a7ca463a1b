"""How `shrinkwatch app` starts the dashboard: the `streamlit run` command line for
streamlit_app/server.py (the web server itself: Streamlit behind the sign-in gate), run in
this process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shrinkwatch.net import dashboard_url
from shrinkwatch.settings import Settings

SERVER = Path(__file__).with_name("server.py")


def streamlit_args(settings: Settings, port: int | None = None) -> list[str]:
    """The `python -m streamlit run ...` command line for the dashboard."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER),
        "--server.port",
        str(port or settings.dashboard_port),
        "--server.address",
        settings.dashboard_address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--client.showErrorDetails",  # people see that something failed, never a traceback or a path
        "none",
        "--theme.base",
        "light",
    ]


def serve(settings: Settings, port: int | None = None) -> int:
    """Replace this process with Streamlit (it handles SIGINT/SIGTERM itself)."""
    args = streamlit_args(settings, port)
    # uvicorn would take the client's address from X-Forwarded-For of any loopback peer:
    # only the configured proxies are trusted (streamlit_app.server judges their header).
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(settings.dashboard_trusted_proxies)
    print(f"dashboard: {dashboard_url(settings, port)}", file=sys.stderr, flush=True)
    os.execv(args[0], args)
    return 0  # not reached
