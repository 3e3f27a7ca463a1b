"""Clean shutdown on SIGINT/SIGTERM for long-running commands."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_event_on_signals() -> threading.Event:
    """An event set by the first SIGINT or SIGTERM; a second signal exits at once.

    Call from the main thread of a command; workers poll the event and wind down.
    """
    stop = threading.Event()

    def _handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        stop.set()

    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)
    return stop
