"""Who hears of what, and quiet hours in the store's time zone (DST changes included)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from alerts.rules import Recipient, interested, problems, quiet_until

ANA = Recipient(id="ana", name="Ana", channels=("email",), stores=("store-001",), min_level="medium")


@pytest.mark.parametrize(
    ("recipient", "store", "kind", "level", "hears"),
    [
        (ANA, "store-001", "loitering_high_value", "medium", True),
        (ANA, "store-001", "loitering_high_value", "high", True),
        (ANA, "store-001", "loitering_high_value", "low", False),
        (ANA, "store-002", "loitering_high_value", "high", False),  # not her store
        (
            Recipient(**{**ANA.__dict__, "incident_types": ("restricted_zone",)}),
            "store-001",
            "crowding",
            "high",
            False,
        ),
        (
            Recipient(**{**ANA.__dict__, "incident_types": ("restricted_zone",)}),
            "store-001",
            "restricted_zone",
            "high",
            True,
        ),
        (Recipient(**{**ANA.__dict__, "enabled": False}), "store-001", "crowding", "high", False),
    ],
)
def test_the_rule(recipient: Recipient, store: str, kind: str, level: str, hears: bool) -> None:
    assert interested(recipient, store, kind, level) is hears


NIGHT = Recipient(**{**ANA.__dict__, "quiet_start": time(22, 0), "quiet_end": time(7, 0)})
LUNCH = Recipient(**{**ANA.__dict__, "quiet_start": time(12, 0), "quiet_end": time(13, 30)})


@pytest.mark.parametrize(
    ("recipient", "when", "timezone", "until"),
    [
        (ANA, datetime(2026, 3, 1, 3, tzinfo=UTC), "Europe/London", None),  # no quiet hours
        (NIGHT, datetime(2026, 3, 1, 21, 59, tzinfo=UTC), "Europe/London", None),
        (
            NIGHT,
            datetime(2026, 3, 1, 22, 0, tzinfo=UTC),
            "Europe/London",
            datetime(2026, 3, 2, 7, tzinfo=UTC),
        ),
        (
            NIGHT,
            datetime(2026, 3, 2, 6, 59, tzinfo=UTC),
            "Europe/London",
            datetime(2026, 3, 2, 7, tzinfo=UTC),
        ),
        (NIGHT, datetime(2026, 3, 2, 7, 0, tzinfo=UTC), "Europe/London", None),
        # New York, the night the clocks go forward (2026-03-08, 02:00 EST -> 03:00 EDT):
        # 07:00 EDT is 11:00 UTC.
        (
            NIGHT,
            datetime(2026, 3, 8, 4, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2026, 3, 8, 11, tzinfo=UTC),
        ),
        # ... and the night they go back (2026-11-01): 07:00 EST is 12:00 UTC.
        (
            NIGHT,
            datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2026, 11, 1, 12, tzinfo=UTC),
        ),
        # London in summer time: 22:30 BST is 21:30 UTC, quiet until 07:00 BST = 06:00 UTC.
        (
            NIGHT,
            datetime(2026, 7, 1, 21, 30, tzinfo=UTC),
            "Europe/London",
            datetime(2026, 7, 2, 6, tzinfo=UTC),
        ),
        # Tokyo: 23:00 JST is 14:00 UTC; quiet until 07:00 JST = 22:00 UTC.
        (NIGHT, datetime(2026, 3, 1, 14, 0, tzinfo=UTC), "Asia/Tokyo", datetime(2026, 3, 1, 22, tzinfo=UTC)),
        (
            LUNCH,
            datetime(2026, 3, 1, 12, 15, tzinfo=UTC),
            "Europe/London",
            datetime(2026, 3, 1, 13, 30, tzinfo=UTC),
        ),
        (LUNCH, datetime(2026, 3, 1, 13, 30, tzinfo=UTC), "Europe/London", None),
    ],
)
def test_quiet_hours_are_the_stores_local_time(
    recipient: Recipient, when: datetime, timezone: str, until: datetime | None
) -> None:
    assert quiet_until(recipient, when, timezone) == until


HOOK = Recipient(
    id="feed",
    name="Feed",
    channels=("webhook",),
    stores=("store-001",),
    webhook_url="https://soc.example.com/in",
    webhook_secret="${FEED_SECRET}",
)


@pytest.mark.parametrize(
    ("secret", "environ", "said"),
    [
        ("${FEED_SECRET}", {"FEED_SECRET": "k3y-value"}, []),
        ("${FEED_SECRET}", {}, ["webhook_secret: not set in the environment: FEED_SECRET"]),
        (
            "k3y-value",
            {"FEED_SECRET": "k3y-value"},
            ["webhook_secret: write it as ${VAR}, with VAR set in the environment: secrets are never stored"],
        ),
        (
            "${FEED_SECRET}",
            {"FEED_SECRET": ""},
            ["webhook_url: a URL and a secret are needed for the webhook channel (from the environment)"],
        ),
    ],
)
def test_the_alert_settings_page_takes_a_secret_only_as_a_reference(
    secret: str, environ: dict[str, str], said: list[str]
) -> None:
    """What the dashboard checks before it saves a recipient: the secret as ${VAR}, set (in
    the dashboard's environment) to a value that works; never the secret itself."""
    wanted = Recipient(**{**HOOK.__dict__, "webhook_secret": secret})
    assert problems(wanted, {"store-001"}, environ) == said
