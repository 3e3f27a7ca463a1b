"""How Shrinkwatch names things to people: one voice for the pages, the alert emails, the
text and chat messages, the webhooks' links and the digests.

An incident type, a risk level or a signal is stored as an identifier
(`exit_without_checkout`, `high`, `dwell_high_value_s`); people read it as words
("exit without checkout", "high risk", "dwell high value"), and every place that speaks
to them takes those words from here, so that a manager reads the same phrase in a text, an
email and on the dashboard, and the link in each opens the same review page.

Everything here is plain text. Names that come from configuration or from people (a store
name, a camera id) pass through unchanged: each output escapes them for where it goes, as it
always has (`html.escape` in the emails, `streamlit_app.text` on the pages; see
docs/SECURITY.md, Output). The one exception is the review link: an incident id is
percent-encoded there, as anything in a URL's query must be.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shrinkwatch.net import dashboard_url
from shrinkwatch.settings import Settings

REVIEW_PAGE = "review"  # the review page's address on the dashboard (streamlit_app/app.py)

# What the dashboard's pages and its sign-in page say while PostgreSQL does not answer.
DATABASE_UNREACHABLE = (
    "The database is not reachable — nothing can be shown or signed in to until it is back. "
    "This page carries on by itself when it is; if it lasts, ask whoever runs Shrinkwatch to "
    "check PostgreSQL (`shrinkwatch infra status`)."
)

# The colour of a risk level's badge on the dashboard (Streamlit's badge colours).
LEVEL_COLOURS = {"high": "red", "medium": "orange", "low": "gray"}


def as_words(identifier: str) -> str:
    """An identifier as words: `store_manager` -> "store manager"."""
    return identifier.replace("_", " ")


def incident_label(incident_type: str) -> str:
    """An incident type in a sentence: `exit_without_checkout` -> "exit without checkout"."""
    return as_words(incident_type)


def incident_title(incident_type: str) -> str:
    """An incident type as a heading: `exit_without_checkout` -> "Exit without checkout"."""
    return incident_label(incident_type).capitalize()


def level_words(level: str) -> str:
    """A risk level as words: `high` -> "high risk"."""
    return f"{level} risk"


def level_colour(level: str) -> str | None:
    """The colour of a risk level's badge (None for a level Shrinkwatch does not know)."""
    return LEVEL_COLOURS.get(level)


def alert_headline(reason: str, level: str) -> str:
    """What an incident alert leads with: "High risk", or "Escalated to high risk" when an
    incident already told of has become high risk (`reason` "escalated")."""
    return "Escalated to high risk" if reason == "escalated" else level_words(level).capitalize()


def text_headline(reason: str, level: str) -> str:
    """What a text message (SMS) leads with, in capitals to be read at a glance: "HIGH", or
    "ESCALATED high" when an incident already told of has become high risk."""
    return "ESCALATED high" if reason == "escalated" else level.upper()


def where(store_name: str, camera_id: str) -> str:
    """Where an incident happened: "Leeds (cam-entrance-1)"."""
    return f"{store_name} ({camera_id})"


def incident_phrase(incident_type: str, store_name: str, camera_id: str | None = None) -> str:
    """What happened where: "exit without checkout at Leeds (cam-entrance-1)" (without the
    camera when it is None)."""
    place = store_name if camera_id is None else where(store_name, camera_id)
    return f"{incident_label(incident_type)} at {place}"


def verdict_word(confirmed: bool) -> str:
    """An analyst's verdict: "confirmed" or "rejected"."""
    return "confirmed" if confirmed else "rejected"


def signal_label(name: str) -> str:
    """A signal's name for people: its name without the unit suffix `_s`, underscores as
    spaces (`dwell_high_value_s` -> "dwell high value"). Built-in signals and a data team's
    own (flows' `register_signal`) read the same way."""
    return as_words(name.removesuffix("_s"))


def signal_value(value: float) -> str:
    """A signal's measured value as people read it: 11.4, 41, 1,235 (never 1.23e+03)."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def dashboard_base(settings: Settings) -> str:
    """The dashboard as people reach it (`dashboard_public_url`), else as this machine does;
    no trailing slash."""
    return (settings.dashboard_public_url or dashboard_url(settings)).rstrip("/")


def review_path(incident_id: str) -> str:
    """The review page of one incident, on the dashboard's own site: "/review?id=..."."""
    return f"/{REVIEW_PAGE}?id={quote(incident_id, safe='')}"


def review_link(settings: Settings, incident_id: str) -> str:
    """The review page of one incident as people reach it (alerts, digests, webhooks)."""
    return dashboard_base(settings) + review_path(incident_id)


def store_clock(moment: datetime | str, timezone: str | None) -> datetime:
    """A moment (aware, or ISO text) on the store's clock; UTC for a store with no zone."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(ZoneInfo(timezone or "UTC"))


def store_time(moment: datetime | str, timezone: str | None) -> str:
    """A moment as the store's clock reads it, with the zone: "30 Nov 2026 11:13:42
    (Europe/London)"."""
    return f"{store_clock(moment, timezone):%d %b %Y %H:%M:%S} ({timezone or 'UTC'})"


def utc_minutes(moment: datetime | str) -> str:
    """A moment in UTC to the minute, for the digests' windows: "2026-03-05 07:00"."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:  # Shrinkwatch stores UTC: never the machine's own zone
        when = when.replace(tzinfo=UTC)
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M}"
