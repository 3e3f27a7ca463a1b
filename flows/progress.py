"""Counters that a running dataflow reports on its console, so operators see it working."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class FlowCounters:
    """Items seen by this process's workers (approximate under concurrency; for display)."""

    frames: int = 0
    dead_letters: int = 0
    incident_changes: int = 0
    late_frames: int = 0

    def add_frames(self, count: int) -> None:
        self.frames += count

    def dead_letter(self, _step: str, _item: Any) -> None:
        self.dead_letters += 1

    def incident(self, _step: str, _item: Any) -> None:
        self.incident_changes += 1

    def line(self) -> str:
        late = f" | late frames {self.late_frames}" if self.late_frames else ""
        return (
            f"frames {self.frames} | incident updates {self.incident_changes} | "
            f"dead letters {self.dead_letters}{late}"
        )


COUNTERS = FlowCounters()


def report_periodically(
    say: Callable[[str], None], every_s: float, stop: threading.Event
) -> threading.Thread:
    """Print the counters every `every_s` seconds while they change, until stop is set."""

    def loop() -> None:
        last = ""
        while not stop.wait(every_s):
            line = COUNTERS.line()
            if line != last:
                say(line)
                last = line

    thread = threading.Thread(target=loop, name="flow-progress", daemon=True)
    thread.start()
    return thread
