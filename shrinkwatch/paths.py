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
