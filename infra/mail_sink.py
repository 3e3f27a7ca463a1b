"""A local SMTP server that keeps every message as a file: where the demo's alerts go.

`shrinkwatch demo` starts it on a free port of 127.0.0.1 and points the alert dispatcher at
it; each message lands in `SHRINKWATCH_HOME/mail/` as `<time>-<n>.eml` (open it with any
mail program, or read it as text). Nothing leaves the machine.
"""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shrinkwatch.net import free_port


class _Keep:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = itertools.count(1)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{next(self.count):04d}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 kept"


class MailSink:
    """The sink, started and stopped by the caller."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self._controller = Controller(_Keep(folder), hostname="127.0.0.1", port=self.port)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per SMTP command

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml")) if self.folder.is_dir() else []
