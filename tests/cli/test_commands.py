"""Every command answers --help; expected errors print a message, not a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support import run_cli

COMMANDS = [
    [],
    ["infra"],
    ["infra", "up"],
    ["infra", "down"],
    ["infra", "status"],
    ["db"],
    ["db", "migrate"],
    ["sites"],
    ["sites", "apply"],
    ["camera-sim"],
    ["detect"],
    ["flows"],
    ["flows", "run"],
    ["flows", "calibrate"],
    ["warehouse"],
    ["warehouse", "seed"],
    ["warehouse", "prune"],
    ["rollups"],
    ["rollups", "run"],
    ["users"],
    ["users", "add"],
    ["users", "passwd"],
    ["users", "update"],
    ["users", "disable"],
    ["users", "enable"],
    ["users", "list"],
    ["tokens"],
    ["tokens", "add"],
    ["tokens", "list"],
    ["tokens", "revoke"],
    ["alerts"],
    ["alerts", "run"],
    ["alerts", "test"],
    ["alerts", "mute"],
    ["alerts", "digest"],
    ["privacy"],
    ["privacy", "purge"],
    ["privacy", "hold"],
    ["privacy", "release"],
    ["privacy", "holds"],
    ["privacy", "report"],
    ["models"],
    ["models", "export"],
    ["models", "list"],
    ["run"],
    ["status"],
    ["app"],
    ["api"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "shrinkwatch")
def test_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_every_command_is_in_the_list() -> None:
    """A new command is added here too (and so answers --help in the test above)."""
    import typer.main

    def walk(group: object, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(group, "commands", {}).items():
            if not sub.hidden:
                found += walk(sub, [*path, name])
        return found

    registered = walk(typer.main.get_command(app), [])
    assert sorted(registered) == sorted(COMMANDS)


def test_bad_settings_file_names_the_key(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "s.yaml"  # type: ignore[operator]
    path.write_text("loiter_treshold_s: 5\n")
    result = run_cli(["--settings", str(path), "infra", "status"])
    assert result.returncode == 2
    assert "loiter_treshold_s" in result.stderr and "Traceback" not in result.stderr


def test_unknown_flow(tmp_path: pytest.TempPathFactory) -> None:
    result = run_cli(
        ["flows", "run", "nope", "--check"],
        env={"SHRINKWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown dataflow 'nope'; give one of health, incidents, occupancy" in result.stderr
    assert "Traceback" not in result.stderr
