"""The alert emails as people read them: the words and layout of each message, in HTML and
plain text, with the snapshot inlined, the signals that explain the score and a link to the
incident on the dashboard. The words come from shrinkwatch.wording; names from the site file
are escaped here, with `html.escape`, where they go into HTML. Each function returns a
message ready for alerts.email.smtp.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from alerts.email.chart import incidents_per_day
from alerts.email.thumbnails import thumbnail
from shrinkwatch.settings import Settings
from shrinkwatch.wording import (
    alert_headline,
    dashboard_base,
    incident_label,
    incident_phrase,
    level_words,
    review_link,
    signal_label,
    signal_value,
    store_time,
    utc_minutes,
)


def _message(settings: Settings, outbox_id: int, to: str, subject: str) -> EmailMessage:
    """A message's headers. Its Message-ID is the same every time this outbox row is sent: a
    resend after a crash is recognisable. Its Date (which every message must have, RFC 5322)
    is when it is written, just before it is sent."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.alerts_from
    message["To"] = to
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<alert-{outbox_id}@shrinkwatch>"
    return message


def incident_email(
    settings: Settings, outbox_id: int, to: str, reason: str, payload: dict[str, Any], evidence: Path | None
) -> EmailMessage:
    """The message for one incident alert (`new` or `escalated`)."""
    kind = incident_label(payload["incident_type"])
    prefix = alert_headline(reason, payload["risk_level"])
    subject = (
        f"[Shrinkwatch] {prefix}: "
        f"{incident_phrase(payload['incident_type'], payload['store_name'], payload['camera_id'])}"
    )
    link = review_link(settings, payload["incident_id"])
    signals = sorted(payload.get("signals") or [], key=lambda s: -s.get("contribution", 0.0))
    lines = [
        f"- {signal_label(s['name'])}: {signal_value(s['value'])} (adds {s['contribution']:.2f})"
        for s in signals
    ]
    started = store_time(payload["started_at"], payload.get("store_timezone"))
    text = "\n".join(
        [
            f"{prefix}: {kind}",
            f"Store: {payload['store_name']} · camera {payload['camera_id']}",
            f"Started: {started} · score {payload['risk_score']:.2f}",
            "",
            "Why:",
            *lines,
            "",
            f"Review it: {link}",
        ]
    )
    message = _message(settings, outbox_id, to, subject)
    message.set_content(text)
    cid = make_msgid(domain="shrinkwatch")
    rows = "".join(
        f"<tr><td>{html.escape(signal_label(s['name']))}</td><td>{signal_value(s['value'])}</td>"
        f"<td><b>+{s['contribution']:.2f}</b></td></tr>"
        for s in signals
    )
    picture = (
        f'<p><img src="cid:{cid[1:-1]}" alt="snapshot" style="max-width:640px;border-radius:6px"></p>'
        if evidence
        else "<p><i>No snapshot was saved for this incident.</i></p>"
    )
    message.add_alternative(
        f"""<html><body style="font-family:sans-serif;color:#1f2933">
<h2 style="margin:0 0 4px">{html.escape(prefix)}: {html.escape(kind)}</h2>
<p style="margin:0 0 12px;color:#52606d">{html.escape(payload["store_name"])} · camera
{html.escape(payload["camera_id"])} · started {html.escape(started)} · score
{payload["risk_score"]:.2f}</p>
{picture}
<table cellpadding="4" style="border-collapse:collapse"><tr><th align="left">signal</th>
<th align="left">value</th><th align="left">adds to the score</th></tr>{rows}</table>
<p><a href="{html.escape(link)}" style="background:#ff4b4b;color:#fff;padding:8px 14px;border-radius:6px;
text-decoration:none">Review the incident</a></p>
</body></html>""",
        subtype="html",
    )
    if evidence:
        html_part = message.get_body(preferencelist=("html",))
        assert isinstance(html_part, EmailMessage)
        html_part.add_related(evidence.read_bytes(), "image", "jpeg", cid=cid)
    return message


def summary_email(settings: Settings, outbox_id: int, to: str, payload: dict[str, Any]) -> EmailMessage:
    """'N more incidents': what came past the hourly limit."""
    entries = payload.get("entries") or []
    message = _message(
        settings,
        outbox_id,
        to,
        f"[Shrinkwatch] {len(entries)} more incidents in the hour from {payload['hour']}",
    )
    lines = [
        f"- {level_words(e['risk_level'])}: "
        f"{incident_phrase(e['incident_type'], e['store_name'], e['camera_id'])}: "
        f"{review_link(settings, e['incident_id'])}"
        for e in entries
    ]
    message.set_content(
        "These came after your hourly limit of alerts, so they were gathered here:\n\n" + "\n".join(lines)
    )
    return message


def test_email(settings: Settings, outbox_id: int, to: str, name: str) -> EmailMessage:
    """`shrinkwatch alerts test`: proves the way to this recipient works."""
    message = _message(settings, outbox_id, to, "[Shrinkwatch] Test alert")
    message.set_content(
        f"Hello {name},\n\nthis is a test from Shrinkwatch: alerts for your stores will reach you here.\n"
        f"Dashboard: {dashboard_base(settings)}\n"
    )
    return message


def camera_email(
    settings: Settings, outbox_id: int, to: str, reason: str, payload: dict[str, Any]
) -> EmailMessage:
    """A camera down (offline or degraded) for a while, or back up."""
    camera = f"{payload['camera_name']} ({payload['camera_id']}) at {payload['store_name']}"
    if reason == "camera_recovered":
        subject = f"[Shrinkwatch] Camera back online: {camera}"
        text = f"The camera {camera} is online again."
    else:
        subject = f"[Shrinkwatch] Camera {payload['status']}: {camera}"
        why = f"\nThe reader says: {payload['error']}" if payload.get("error") else ""
        text = (
            f"The camera {camera} has been {payload['status']} since {payload['since']} (UTC): "
            f"incidents there may go unseen.{why}\n\nYou will hear again when it is back."
        )
    message = _message(settings, outbox_id, to, subject)
    message.set_content(text)
    return message


def digest_email(
    settings: Settings,
    outbox_id: int,
    to: str,
    name: str,
    payload: dict[str, Any],
    snapshot: Callable[[str | None], Path | None] = lambda _ref: None,
) -> EmailMessage:
    """The digest: counts by store, level and type, a chart of the last two weeks, the top
    incidents with their snapshots (`snapshot` finds an evidence file by reference),
    verdicts, and ROI this year."""
    start, end = utc_minutes(payload["start"]), utc_minutes(payload["end"])
    total = payload["total"]
    message = _message(
        settings,
        outbox_id,
        to,
        f"[Shrinkwatch] Digest: {total} incident{'s' if total != 1 else ''} since {start} UTC",
    )
    levels = ", ".join(f"{n} {level}" for level, n in payload["by_level"].items())
    by_type = sorted(payload["by_type"].items(), key=lambda kv: -kv[1])
    stores = "\n".join(f"- {store}: {n}" for store, n in payload["by_store"].items())
    kinds = "\n".join(f"- {incident_label(kind)}: {n}" for kind, n in by_type)
    top = "\n".join(
        f"- {t['risk_level']} ({t['risk_score']:.2f}): "
        f"{incident_phrase(t['incident_type'], t['store_name'], t['camera_id'])} "
        f"{review_link(settings, t['incident_id'])}"
        for t in payload["top"]
    )
    money = {
        currency: (m, f" (ROI {m['net_benefit'] / m['cost'] * 100:,.0f}%)" if m.get("cost") else "")
        for currency, m in payload["year_to_date"].items()
    }
    money_text = "\n".join(
        f"- {currency}: prevented loss {m['prevented_loss']:,.0f}, net benefit {m['net_benefit']:,.0f}{roi}"
        for currency, (m, roi) in money.items()
    )
    rate = (
        f"{payload['confirmed']} of {payload['reviewed']} reviewed were confirmed"
        if payload["reviewed"]
        else "none reviewed yet"
    )
    message.set_content(
        f"Hello {name},\n\nfrom {start} to {end} UTC: {total} incidents ({levels}).\n\n"
        f"By store:\n{stores or '- none'}\n\n"
        f"By type:\n{kinds or '- none'}\n\nThe top ones:\n{top or '- none'}\n\nVerdicts: {rate}.\n\n"
        f"This year so far:\n{money_text or '- no ROI figures yet'}\n"
    )

    pictures: list[tuple[str, bytes, str]] = []  # (content id, data, subtype)
    chart_cid = make_msgid(domain="shrinkwatch")
    if payload.get("days"):
        pictures.append((chart_cid, incidents_per_day(payload["days"]), "png"))
    cells = []
    for t in payload["top"]:
        found = snapshot(t.get("snapshot"))
        thumb = thumbnail(found) if found else None
        image = ""
        if thumb:
            cid = make_msgid(domain="shrinkwatch")
            pictures.append((cid, thumb, "jpeg"))
            image = f'<img src="cid:{cid[1:-1]}" alt="snapshot" width="240" style="border-radius:4px"><br>'
        link = html.escape(review_link(settings, t["incident_id"]))
        cells.append(
            f'<td valign="top" style="padding:4px 8px 12px 0;font-size:13px">{image}'
            f"<b>{html.escape(t['risk_level'])}</b> {t['risk_score']:.2f} · "
            f"{html.escape(incident_label(t['incident_type']))}<br>{html.escape(t['store_name'])} · "
            f'{html.escape(t["camera_id"])}<br><a href="{link}">Review</a></td>'
        )
    rows = "".join("<tr>" + "".join(cells[i : i + 2]) + "</tr>" for i in range(0, len(cells), 2))
    heading = "<tr><th colspan='2' align='left' style='padding-top:8px'>{}</th></tr>"
    listing = (
        heading.format("By store")
        + "".join(
            f"<tr><td>{html.escape(store)}</td><td align='right'>{n}</td></tr>"
            for store, n in payload["by_store"].items()
        )
        + heading.format("By type")
        + "".join(
            f"<tr><td>{html.escape(incident_label(kind))}</td><td align='right'>{n}</td></tr>"
            for kind, n in by_type
        )
    )
    money_html = "".join(
        f"<li>{html.escape(currency)}: prevented loss <b>{m['prevented_loss']:,.0f}</b>, net benefit "
        f"<b>{m['net_benefit']:,.0f}</b>{html.escape(roi)}</li>"
        for currency, (m, roi) in money.items()
    )
    chart = (
        f'<p><img src="cid:{chart_cid[1:-1]}" alt="incidents per day" width="640"></p>'
        if payload.get("days")
        else ""
    )
    message.add_alternative(
        f"""<html><body style="font-family:sans-serif;color:#1f2933">
<h2 style="margin:0 0 4px">{total} incident{"s" if total != 1 else ""}</h2>
<p style="margin:0 0 12px;color:#52606d">Hello {html.escape(name)}: from {start} to {end} UTC
({html.escape(levels)}).</p>
{chart}
<table cellpadding="3" style="border-collapse:collapse;font-size:14px">{listing}</table>
<h3 style="margin:16px 0 6px">The top ones</h3>
<table>{rows or "<tr><td>none</td></tr>"}</table>
<p>Verdicts: {html.escape(rate)}.</p>
<h3 style="margin:16px 0 6px">This year so far</h3>
<ul>{money_html or "<li>no ROI figures yet</li>"}</ul>
</body></html>""",
        subtype="html",
    )
    html_part = message.get_body(preferencelist=("html",))
    assert isinstance(html_part, EmailMessage)
    for cid, data, subtype in pictures:
        html_part.add_related(data, "image", subtype, cid=cid)
    return message
