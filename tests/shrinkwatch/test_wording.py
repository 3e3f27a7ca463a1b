"""The words people read: incident types, levels, signals, the review link and store times,
the same in every place that uses them, and names passed through as plain text."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest

from shrinkwatch import wording
from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.settings import load_settings

HOSTILE = [
    "![x](http://evil.example/a.png)",
    "<b>Leeds</b> & <script>alert(1)</script>",
    ":red[boom] $x^2$ **bold**",
    "Line one\nline two",
    "\"quoted\" 'single'",
    "",
]


TYPES = [  # (type, in a sentence, as a heading): every type of the contract
    ("loitering_high_value", "loitering high value", "Loitering high value"),
    ("exit_without_checkout", "exit without checkout", "Exit without checkout"),
    ("restricted_zone", "restricted zone", "Restricted zone"),
    ("after_hours", "after hours", "After hours"),
    ("concealment_suspected", "concealment suspected", "Concealment suspected"),
    ("crowding", "crowding", "Crowding"),
    ("running_exit", "running exit", "Running exit"),
]


@pytest.mark.parametrize(("incident_type", "label", "title"), TYPES)
def test_incident_types_as_words_and_titles(incident_type: str, label: str, title: str) -> None:
    assert wording.incident_label(incident_type) == label
    assert wording.incident_title(incident_type) == title


def test_every_incident_type_of_the_contract_is_checked_above() -> None:
    assert {t for t, _label, _title in TYPES} == set(INCIDENT_TYPES)


@pytest.mark.parametrize(
    ("level", "words", "colour", "new", "escalated"),
    [
        ("high", "high risk", "red", "High risk", "Escalated to high risk"),
        ("medium", "medium risk", "orange", "Medium risk", "Escalated to high risk"),
        ("low", "low risk", "gray", "Low risk", "Escalated to high risk"),
        ("severe", "severe risk", None, "Severe risk", "Escalated to high risk"),  # not a level: no badge
    ],
)
def test_levels(level: str, words: str, colour: str | None, new: str, escalated: str) -> None:
    assert wording.level_words(level) == words
    assert wording.level_colour(level) == colour
    assert wording.alert_headline("new", level) == new
    assert wording.alert_headline("escalated", level) == escalated


def test_what_happened_where() -> None:
    assert wording.where("Leeds", "cam-1") == "Leeds (cam-1)"
    assert wording.incident_phrase("exit_without_checkout", "Leeds", "cam-1") == (
        "exit without checkout at Leeds (cam-1)"
    )
    assert wording.incident_phrase("crowding", "Leeds") == "crowding at Leeds"


@pytest.mark.parametrize("name", HOSTILE)
def test_names_from_people_pass_through_as_they_were_typed(name: str) -> None:
    """No escaping here and no mangling: each output escapes names for where they go."""
    assert wording.where(name, name) == f"{name} ({name})"
    assert wording.incident_phrase("after_hours", name, name) == f"after hours at {name} ({name})"
    assert wording.incident_phrase("after_hours", name) == f"after hours at {name}"


def test_verdicts() -> None:
    assert (wording.verdict_word(True), wording.verdict_word(False)) == ("confirmed", "rejected")


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("dwell_high_value_s", "dwell high value"),
        ("skipped_checkout", "skipped checkout"),
        ("restricted_zone_s", "restricted zone"),
        ("after_hours_s", "after hours"),
        ("concealment_cue_s", "concealment cue"),
        ("running_exit", "running exit"),
        ("bag_present", "bag present"),
        ("crowd_size", "crowd size"),
        ("zones_visited", "zones visited"),  # a data team's own signal (docs/EXTENDING.md)
        ("bags", "bags"),  # a trailing s without the unit stays
        ("time_s_s", "time s"),  # only one unit suffix goes
        ("_s", ""),
        ("<b>x</b>_s", "<b>x</b>"),  # plain text: the page or email escapes it
    ],
)
def test_signal_labels(name: str, label: str) -> None:
    assert wording.signal_label(name) == label


def test_every_built_in_signal_reads_as_words() -> None:
    """Built-in signals (named in flows' signals module) read without underscores or unit."""
    try:
        signals = importlib.import_module("flows.behaviour.signals")
    except ModuleNotFoundError:  # before the behaviour package
        signals = importlib.import_module("flows.signals")
    for name in signals.BUILT_IN_WEIGHTS:
        label = wording.signal_label(name)
        assert "_" not in label and not label.endswith(" s") and label, name


@pytest.mark.parametrize(
    ("value", "shown"),
    [(41.0, "41"), (11.4321, "11.4"), (0.5, "0.5"), (999.4, "999"), (1234.5, "1,234"), (-2.0, "-2")],
)
def test_signal_values(value: float, shown: str) -> None:
    assert wording.signal_value(value) == shown


def test_review_link_is_the_public_dashboard_address() -> None:
    public = load_settings(None, dashboard_public_url="https://sw.example.com/")
    assert wording.dashboard_base(public) == "https://sw.example.com"
    assert wording.review_link(public, "9f1c-2a") == "https://sw.example.com/review?id=9f1c-2a"
    local = load_settings(None, dashboard_public_url=None, dashboard_address="0.0.0.0", dashboard_port=8600)
    assert wording.review_link(local, "i1") == "http://127.0.0.1:8600/review?id=i1"
    assert wording.review_path("i1") == "/review?id=i1"


@pytest.mark.parametrize(
    ("incident_id", "path"),
    [
        ("a&b=c", "/review?id=a%26b%3Dc"),  # cannot add a parameter
        ('"><script>', "/review?id=%22%3E%3Cscript%3E"),  # cannot leave an href
        ("x y#z", "/review?id=x%20y%23z"),
        ("../signout", "/review?id=..%2Fsignout"),
    ],
)
def test_a_hostile_incident_id_stays_inside_the_review_link(incident_id: str, path: str) -> None:
    assert wording.review_path(incident_id) == path


@pytest.mark.parametrize(
    ("moment", "timezone", "shown"),
    [
        ("2026-11-30T11:13:42+00:00", "Europe/London", "30 Nov 2026 11:13:42 (Europe/London)"),
        ("2026-07-01T11:13:42+00:00", "Europe/London", "01 Jul 2026 12:13:42 (Europe/London)"),
        ("2026-07-01T11:13:42+00:00", "America/New_York", "01 Jul 2026 07:13:42 (America/New_York)"),
        ("2026-07-01T11:13:42+00:00", None, "01 Jul 2026 11:13:42 (UTC)"),
        (datetime(2026, 7, 1, 23, 30, tzinfo=UTC), "Asia/Tokyo", "02 Jul 2026 08:30:00 (Asia/Tokyo)"),
    ],
)
def test_store_times(moment: datetime | str, timezone: str | None, shown: str) -> None:
    assert wording.store_time(moment, timezone) == shown
    assert wording.store_clock(moment, timezone).utcoffset() is not None


def test_utc_minutes() -> None:
    assert wording.utc_minutes("2026-03-05T07:00:00+00:00") == "2026-03-05 07:00"
    assert wording.utc_minutes("2026-03-05T08:00:59+01:00") == "2026-03-05 07:00"
    assert wording.utc_minutes(datetime(2026, 3, 5, 7, 0, tzinfo=UTC)) == "2026-03-05 07:00"
    assert wording.utc_minutes("2026-03-05T07:00:00") == "2026-03-05 07:00"  # naive: UTC, never local
    assert wording.utc_minutes(datetime(2026, 3, 5, 7, 0)) == "2026-03-05 07:00"  # noqa: DTZ001


def test_text_headline() -> None:
    assert wording.text_headline("new", "high") == "HIGH"
    assert wording.text_headline("new", "medium") == "MEDIUM"
    assert wording.text_headline("escalated", "high") == "ESCALATED high"
