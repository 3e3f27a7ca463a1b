"""`sites apply` against PostgreSQL: atomic, insert-or-update by id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shrinkwatch.settings import Settings
from shrinkwatch.site_file import SiteConfigError, parse_site_config
from tests.factories import SITE_YAML
from tests.support import cli_env, run_cli
from warehouse.db import connect
from warehouse.site_tables import apply_site_config, load_cameras, load_stores


def snapshot(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    with connect(settings.database_dsn) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()  # noqa: S608
            for table in ("stores", "cameras", "zones")
        }


def test_apply_then_update(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        result = apply_site_config(conn, parse_site_config(SITE_YAML))
        assert (result.stores, result.cameras, result.zones) == (1, 1, 2)
        changed = SITE_YAML.replace("name: Aisle", "name: Aisle 2").replace(
            """      - id: z-exit
        name: Exit
        kind: exit
        polygon: [[0.8, 0.0], [1.0, 0.0], [1.0, 1.0], [0.8, 1.0]]
""",
            "",
        )
        result = apply_site_config(conn, parse_site_config(changed))
        assert result.zones_removed == 1
        cams = load_cameras(conn)
    assert [c.name for c in cams] == ["Aisle 2"]
    assert [z.id for z in cams[0].zones] == ["z-razors"]
    assert cams[0].zones[0].polygon[0] == (0.0, 0.5)


def test_invalid_file_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    env = cli_env(settings, tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text(SITE_YAML)
    assert run_cli(["sites", "apply", str(good)], env=env).returncode == 0
    before = snapshot(settings)

    bad = tmp_path / "bad.yaml"
    bad.write_text(SITE_YAML.replace("name: Aisle", "name: Changed").replace("kind: exit", "kind: door"))
    result = run_cli(["sites", "apply", str(bad)], env=env)
    assert result.returncode == 2
    assert "cameras[0].zones[1].kind (line" in result.stderr
    assert "nothing was applied" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(settings) == before


def test_unknown_store_reference_rolls_back_everything(settings: Settings) -> None:
    text = SITE_YAML.replace("store_id: store-001", "store_id: store-999")
    with (
        connect(settings.database_dsn) as conn,
        pytest.raises(SiteConfigError, match=r"cameras\[0\]\.store_id"),
    ):
        apply_site_config(conn, parse_site_config(text))
    assert snapshot(settings) == {"stores": [], "cameras": [], "zones": []}


def test_check_only_touches_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE_YAML)
    result = run_cli(["sites", "apply", str(path), "--check"], env=cli_env(settings, tmp_path))
    assert result.returncode == 0 and "valid" in result.stdout
    assert snapshot(settings)["stores"] == []


@pytest.mark.parametrize(
    ("hours", "stored"),
    [("hours: {}", {}), ("", None), ('hours: {fri: "22:00-06:00"}', {"fri": "22:00-06:00"})],
)
def test_opening_hours_round_trip(settings: Settings, hours: str, stored: dict[str, str] | None) -> None:
    given = '    hours: {mon: "08:00-21:00", sat: "09:00-18:00"}\n'
    text = SITE_YAML.replace(given, f"    {hours}\n" if hours else "")
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(text))
        row = conn.execute("SELECT hours FROM stores").fetchone()
        assert row is not None and row["hours"] == stored
        assert load_stores(conn)[0].hours == stored


def test_apply_to_an_unmigrated_database_says_to_migrate(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    path = tmp_path / "site.yaml"
    path.write_text(SITE_YAML)
    result = run_cli(["sites", "apply", str(path)], env=cli_env(settings, tmp_path))
    assert result.returncode == 2, result.stderr
    assert "has no Shrinkwatch schema yet: run `shrinkwatch db migrate` first" in result.stderr
    assert "Traceback" not in result.stderr and "relation" not in result.stderr
