"""Where the shared sample weights and footage are, when this checkout has them."""

from __future__ import annotations

import os
from pathlib import Path

from shrinkwatch.settings import REPO_ROOT


def shared_dir() -> Path | None:
    """The `shared/` folder beside the checkout (or SHRINKWATCH_SHARED_DIR), if present."""
    candidates = [
        os.environ.get("SHRINKWATCH_SHARED_DIR"),
        REPO_ROOT.parent / "shared",
        Path.cwd().parent / "shared",
        REPO_ROOT / "shared",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "models").is_dir():
            return Path(candidate).resolve()
    return None


def shared_file(*parts: str) -> Path | None:
    """A file under the shared folder, if it exists."""
    root = shared_dir()
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.exists() else None


def evidence_file(root: Path, reference: str | None, suffix: str | None = None) -> Path | None:
    """The file an incident's `snapshot` reference names under the evidence folder `root`
    (or its clip, with suffix='.mp4'); None when it is missing (not saved yet, or never),
    points outside the folder, or cannot be looked at (a name too long, a folder this process
    may not read): a reader shows or sends the incident without it and never fails on it."""
    if not reference:
        return None
    try:
        base = root.resolve()
        path = (base / reference).resolve()
        if suffix:
            path = path.with_suffix(suffix)
        if base not in path.parents or not path.is_file():
            return None
    except (OSError, ValueError):  # ValueError: a NUL byte, a name with no stem for the suffix
        return None
    return path
