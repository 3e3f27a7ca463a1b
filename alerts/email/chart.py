"""The digest email's chart: incidents per day over the last two weeks, high risk darker, as
a PNG (Matplotlib, imported when a digest is written, not when alerts start)."""

from __future__ import annotations

from typing import Any


def incidents_per_day(days: list[dict[str, Any]]) -> bytes:
    """The digest's chart: incidents per day, high risk darker (a PNG, 640x220)."""
    import io

    import matplotlib as mpl

    mpl.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6.4, 2.2), dpi=100)
    axes = figure.add_subplot()
    labels = [d["day"][5:] for d in days]
    high = [d["high"] for d in days]
    other = [d["incidents"] - d["high"] for d in days]
    axes.bar(labels, other, color="#f7a8a8", label="low and medium")
    axes.bar(labels, high, bottom=other, color="#d62728", label="high")
    axes.set_title("Incidents per day", fontsize=10, loc="left")
    axes.tick_params(axis="x", labelsize=7, rotation=45)
    axes.tick_params(axis="y", labelsize=8)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(fontsize=7, frameon=False)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
