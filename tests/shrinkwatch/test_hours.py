"""Opening hours: a day's span, a span past midnight, a missing day, no days."""

from __future__ import annotations

import pytest

from shrinkwatch.hours import open_at


@pytest.mark.parametrize(
    ("hours", "weekday", "hhmm", "open_"),
    [
        ({"mon": "08:00-21:00"}, 0, "07:59", False),
        ({"mon": "08:00-21:00"}, 0, "08:00", True),
        ({"mon": "08:00-21:00"}, 0, "20:59", True),
        ({"mon": "08:00-21:00"}, 0, "21:00", False),
        ({"mon": "08:00-21:00"}, 1, "12:00", False),  # a missing day is closed
        ({}, 2, "12:00", False),  # closed every day
        ({"sun": "00:00-24:00"}, 6, "23:59", True),
        ({"fri": "22:00-06:00"}, 4, "21:59", False),
        ({"fri": "22:00-06:00"}, 4, "22:00", True),
        ({"fri": "22:00-06:00"}, 4, "23:59", True),
        ({"fri": "22:00-06:00"}, 5, "00:00", True),  # Saturday morning: Friday's span
        ({"fri": "22:00-06:00"}, 5, "05:59", True),
        ({"fri": "22:00-06:00"}, 5, "06:00", False),
        ({"fri": "22:00-06:00"}, 3, "02:00", False),  # Thursday night: no span
        ({"sun": "20:00-02:00"}, 0, "01:00", True),  # Sunday's span into Monday
        ({"sun": "20:00-02:00", "mon": "09:00-17:00"}, 0, "08:00", False),
    ],
)
def test_open_at(hours: dict[str, str], weekday: int, hhmm: str, open_: bool) -> None:
    assert open_at(hours, weekday, hhmm) is open_
