"""The code base stays clean under ruff and mypy (their configuration is in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from shrinkwatch.settings import REPO_ROOT


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_ruff() -> None:
    check = run("ruff", "check", ".")
    assert check.returncode == 0, check.stdout
    fmt = run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout


def test_mypy() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout
