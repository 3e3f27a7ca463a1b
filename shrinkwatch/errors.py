"""Errors that a user can act on, and turning validation errors into key-path messages."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError


class ShrinkwatchError(Exception):
    """An expected error: the CLI prints its message without a traceback and exits non-zero."""


class ConfigError(ShrinkwatchError):
    """A setting or configuration file is invalid."""


def key_path(loc: Iterable[int | str], prefix: str = "") -> str:
    """Render a pydantic location tuple as `cameras[2].zones[0].polygon`."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "(root)"


def validation_messages(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """(key path, message) for every error in a pydantic ValidationError."""
    out = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        message = err["msg"].removeprefix("Value error, ")
        out.append((key_path(loc, prefix), message))
    return out


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One `path: message` line per error."""
    return "\n".join(f"  {path}: {msg}" for path, msg in validation_messages(exc, prefix))
