"""Opening hours: whether a store is open at a given local time.

A store's hours (the site file's `hours`, CONTRACTS §2) map a day to a span of local time,
`"HH:MM-HH:MM"`; a missing day is closed, and a span that closes before it opens runs past
midnight into the next day (`22:00-06:00`). The site file checks their form
(shrinkwatch.site_file); the behaviour rules (flows.behaviour.stores) and the demo's history
(warehouse.seed) ask here whether a store is open, so all of them read hours the same way.
"""

from __future__ import annotations

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # by datetime.weekday()


def open_at(hours: dict[str, str], weekday: int, hhmm: str) -> bool:
    """Whether opening hours (day -> "HH:MM-HH:MM") include local time `hhmm` on `weekday`
    (0 = Monday). A span closing before it opens runs past midnight into the next day."""
    today = hours.get(DAYS[weekday])
    if today is not None:
        opens, closes = today.split("-")
        if opens <= hhmm < closes or (closes < opens and hhmm >= opens):
            return True
    yesterday = hours.get(DAYS[(weekday - 1) % 7])
    if yesterday is not None:
        opens, closes = yesterday.split("-")
        if closes < opens and hhmm < closes:
            return True
    return False
