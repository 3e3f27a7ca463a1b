"""Is anything listening on a local port (for start-up checks and clear errors), and where the
dashboard is found."""

from __future__ import annotations

import socket

from shrinkwatch.settings import Settings


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dashboard_url(settings: Settings, port: int | None = None) -> str:
    """Where a browser on this machine finds the dashboard."""
    host = settings.dashboard_address
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or settings.dashboard_port}"
