"""`shrinkwatch api`: the API under uvicorn, until SIGINT or SIGTERM.

A signal stops the server gracefully (requests in flight are finished, then the process exits
with status 0). uvicorn would raise the signal again once it has stopped, ending the process
by SIGTERM or with a KeyboardInterrupt; a command that was asked to stop and did has done what
it was asked, so the signal is taken as the request to stop and nothing more.

Open event streams (GET /v1/events) would hold a graceful stop open for as long as their
clients stay: the signal ends them at once (api.routes_events.end_streams), and their clients
reconnect with their last event id.

A request's address is its peer's, unless the peer is one of `api_trusted_proxies`: then it
is the address that proxy put in X-Forwarded-For (uvicorn's proxy headers, trusted from those
addresses only). None is trusted by default, so a client cannot forge its address.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

import uvicorn

from api.app import create_app
from api.routes_events import end_streams
from shrinkwatch.settings import Settings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM stop the server (a second SIGINT: at once), and are not raised
        again after it has stopped."""
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop, and end the open event streams now rather than wait for their clients."""
        super().handle_exit(sig, frame)
        end_streams(self.config.app)


def config_of(settings: Settings, *, host: str | None = None, port: int | None = None) -> uvicorn.Config:
    """uvicorn's configuration of the API on host:port (default: the api_host and api_port
    settings)."""
    trusted = settings.api_trusted_proxies
    return uvicorn.Config(
        create_app(settings),
        host=settings.api_host if host is None else host,
        port=settings.api_port if port is None else port,
        log_config=None,  # the command's logging (shrinkwatch.logs) stays as configured
        log_level=settings.log_level.lower(),
        server_header=False,
        proxy_headers=bool(trusted),  # with none trusted, the peer's address is the client's
        forwarded_allow_ips=list(trusted) or None,
    )


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """Serve the API on host:port until a signal; the exit status (0: stopped when asked)."""
    server = _Server(config_of(settings, host=host, port=port))
    server.run()
    return 0 if server.started else 1
