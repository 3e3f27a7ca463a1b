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


def test_alert_recipients_are_applied_with_the_site(settings: Settings, tmp_path: Path) -> None:
    from tests.shrinkwatch.test_site_file import WITH_ALERTS

    site = WITH_ALERTS.replace("[store-001, store-002]", "[store-001]")
    with connect(settings.database_dsn) as conn:
        # Someone made a recipient on the dashboard: the file leaves them alone.
        apply_site_config(conn, parse_site_config(SITE_YAML))
        conn.execute(
            """INSERT INTO alert_recipients (id, name, email, channels, stores)
               VALUES ('bo', 'Bo', 'bo@example.com', '{email}', '{store-001}')"""
        )
        conn.commit()
        result = apply_site_config(conn, parse_site_config(site), environ={"SOC_HOOK_SECRET": "s3cret"})
        assert result.recipients == 2
        rows = conn.execute(
            "SELECT id, channels, stores, quiet_start::text, webhook_secret FROM alert_recipients ORDER BY id"
        ).fetchall()
        # The secret is checked (set, not empty) but only its reference is stored.
        assert [(r["id"], r["channels"], r["quiet_start"], r["webhook_secret"]) for r in rows] == [
            ("ana", ["email", "sms"], "22:00:00", None),
            ("bo", ["email"], None, None),
            ("chain-soc", ["webhook"], None, "${SOC_HOOK_SECRET}"),
        ]
        # Applied again with a change: updated by id, nothing added.
        apply_site_config(
            conn,
            parse_site_config(site.replace("max_per_hour: 5", "max_per_hour: 7")),
            {"SOC_HOOK_SECRET": "x"},
        )
        assert conn.execute(
            "SELECT count(*) AS n, max(max_per_hour) AS m FROM alert_recipients"
        ).fetchone() == {
            "n": 3,
            "m": 10,
        }
        assert conn.execute("SELECT max_per_hour FROM alert_recipients WHERE id = 'ana'").fetchone() == {
            "max_per_hour": 7
        }


def test_a_recipient_of_an_unknown_store_or_a_missing_secret_changes_nothing(settings: Settings) -> None:
    from tests.shrinkwatch.test_site_file import WITH_ALERTS

    with connect(settings.database_dsn) as conn:
        with pytest.raises(SiteConfigError) as info:
            apply_site_config(conn, parse_site_config(WITH_ALERTS), environ={})
        assert [str(p) for p in info.value.problems] == [
            "alerts.recipients[1].stores[1]: no store 'store-002' in this file or the database",
            "alerts.recipients[1].webhook_secret: not set in the environment: SOC_HOOK_SECRET",
        ]
        assert conn.execute("SELECT count(*) AS n FROM alert_recipients").fetchone() == {"n": 0}
        assert conn.execute("SELECT count(*) AS n FROM stores").fetchone() == {"n": 0}


def test_what_the_environment_gives_is_checked_too(settings: Settings) -> None:
    from tests.shrinkwatch.test_site_file import WITH_ALERTS

    site = WITH_ALERTS.replace("[store-001, store-002]", "[store-001]").replace(
        "channels: [webhook]", "channels: [webhook, apprise]\n      apprise_url: ${SOC_CHAT}"
    )
    with connect(settings.database_dsn) as conn:
        with pytest.raises(SiteConfigError) as info:
            apply_site_config(
                conn, parse_site_config(site), environ={"SOC_HOOK_SECRET": "", "SOC_CHAT": "pager://nothing"}
            )
        assert [p.path for p in info.value.problems] == [
            "alerts.recipients[1].webhook_url",
            "alerts.recipients[1].apprise_url",
        ]
        assert all(p.message.endswith("(from the environment)") for p in info.value.problems)
        assert conn.execute("SELECT count(*) AS n FROM alert_recipients").fetchone() == {"n": 0}
