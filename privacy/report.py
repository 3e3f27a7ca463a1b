"""The DPIA annex and the signage text (`shrinkwatch privacy report`), from the site file and
the settings: what a store's data protection impact assessment must describe of Shrinkwatch,
and what the sign at its doors must say.

- Every figure comes from where Shrinkwatch itself reads it: the stores, cameras, zones and
  alert recipients of the site file, each store's `privacy` (retention of its evidence,
  heads blurred), and the settings (what is kept outside the evidence, and for how long).
  The controller, its contact and its data protection officer are the caller's: no site file
  key holds them.
- The annex covers the stores asked for (every store by default) in one document, as Markdown
  and as HTML; each store gets a sign of its own, as plain text and as a printable HTML page.
- Nothing secret is written: a camera appears by name, never its stream address; an alert
  recipient by name and channel kind, never an address, a number or a URL.
- Text from the site file is shown as typed, never as markup: escaped with `html.escape` in
  HTML, with a backslash before Markdown's punctuation in Markdown.
- The documents are built as values first (`documents`), then written (`write_documents`):
  whatever is wrong is found before a file is written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from privacy.files import write_atomic
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import Camera, SiteConfig, Store
from shrinkwatch.wording import incident_title
from warehouse.incident_events import RETENTION as EVENTS_KEPT

ANNEX = "dpia-annex"
SIGNAGE = "signage-{store}"

# What each behaviour is, for people who assess it (docs/BEHAVIOUR.md has the rules).
BEHAVIOURS = {
    "loitering_high_value": "staying at a high-value shelf longer than the store's threshold",
    "exit_without_checkout": "reaching an exit after a high-value shelf without passing a checkout",
    "restricted_zone": "being in an area marked restricted (a stock room, behind a counter)",
    "after_hours": "being in the store while it is closed",
    "concealment_suspected": "a hand held at the waist or in a bag at a high-value shelf (pose model only)",
    "running_exit": "running and then reaching an exit",
    "crowding": "several people at once at one high-value shelf (about a place, not a person)",
}


class ReportError(ShrinkwatchError):
    """The report cannot be made as asked (a store that is not in the site file)."""


@dataclass(frozen=True)
class Controller:
    """Who is responsible for the processing, and how people reach them."""

    name: str
    contact: str
    dpo: str | None = None


@dataclass(frozen=True)
class Document:
    """One file of the report: its name in the output folder and its text."""

    name: str
    text: str


# A tiny document model, so that one annex renders as Markdown and as HTML, each escaping
# what came from the site file its own way. A plain `str` is text (always escaped); `Code` is
# a command, key or identifier shown as code.


@dataclass(frozen=True)
class Code:
    text: str


Inline = str | Code
Text = Inline | tuple[Inline, ...]


@dataclass(frozen=True)
class Heading:
    level: int
    text: Text


@dataclass(frozen=True)
class Paragraph:
    text: Text


@dataclass(frozen=True)
class Bullets:
    items: tuple[Text, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Text, ...], ...]


Block = Heading | Paragraph | Bullets | Table


def _pieces(text: Text) -> tuple[Inline, ...]:
    """The text's pieces, each on one line (a name with a line break in it is one line)."""
    pieces = text if isinstance(text, tuple) else (text,)
    return tuple(p if isinstance(p, Code) else " ".join(p.splitlines()) for p in pieces)


_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|&~])")
_MD_LINE_START = re.compile(r"^(\d*)([#+=-]|(?<=\d)[.)])")


def _md_inline(text: Text, *, line_start: bool = False) -> str:
    out = []
    for piece in _pieces(text):
        if isinstance(piece, Code):
            ticks = "`" * (max((len(m) for m in re.findall(r"`+", piece.text)), default=0) + 1)
            out.append(
                f"{ticks} {piece.text} {ticks}" if "`" in piece.text else f"{ticks}{piece.text}{ticks}"
            )
        else:
            out.append(_MD_PUNCTUATION.sub(r"\\\1", piece))
    joined = "".join(out)
    # Text that starts a line must not make it a heading or a list item ("1." too).
    return _MD_LINE_START.sub(r"\1\\\2", joined) if line_start else joined


def to_markdown(blocks: Iterable[Block]) -> str:
    """The blocks as CommonMark (GitHub's tables)."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {_md_inline(block.text)}")
        elif isinstance(block, Paragraph):
            out.append(_md_inline(block.text, line_start=True))
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {_md_inline(item, line_start=True)}" for item in block.items))
        else:
            lines = [
                "| " + " | ".join(_md_inline(h) for h in block.header) + " |",
                "|" + "---|" * len(block.header),
                *("| " + " | ".join(_md_inline(c) for c in row) + " |" for row in block.rows),
            ]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _html_inline(text: Text) -> str:
    return "".join(
        f"<code>{html.escape(p.text)}</code>" if isinstance(p, Code) else html.escape(p)
        for p in _pieces(text)
    )


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #111; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #999; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
code { font-size: 0.95em; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } }
"""


def to_html(title: str, blocks: Iterable[Block], style: str = _STYLE) -> str:
    """The blocks as one self-contained HTML page (nothing fetched from anywhere)."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_html_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_html_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in block.items) + "</ul>")
        else:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# The facts, each a small function of the site file and the settings.


def _days(n: int | float) -> str:
    return f"{n:g} day" if n == 1 else f"{n:g} days"


def _store_label(store: Store) -> str:
    return f"{store.name} ({store.city})" if store.city else store.name


def _cameras(site: SiteConfig, store: Store) -> list[Camera]:
    return [c for c in site.cameras if c.store_id == store.id]


def _zone_names(camera: Camera, *, privacy: bool) -> str:
    names = [z.name for z in camera.zones if (z.kind == "privacy") == privacy]
    return "; ".join(names) if names else "none"


def _recipients(site: SiteConfig, store: Store) -> list[tuple[str, str]]:
    """(name, channel kinds) of the site file's enabled recipients of the store's alerts."""
    return [
        (r.name, ", ".join(r.channels)) for r in site.alerts.recipients if store.id in r.stores and r.enabled
    ]


def select_stores(site: SiteConfig, store_ids: Sequence[str] | None) -> list[Store]:
    """The stores asked for, in the site file's order (all of them when none is named);
    ReportError naming any that the site file does not have."""
    if not store_ids:
        return list(site.stores)
    known = {s.id for s in site.stores}
    if unknown := [s for s in store_ids if s not in known]:
        msg = (
            f"no store {', '.join(map(repr, unknown))} in the site file "
            f"(it has {', '.join(sorted(known)) or 'no stores'})"
        )
        raise ReportError(msg)
    return [s for s in site.stores if s.id in store_ids]


def _controller_blocks(controller: Controller) -> list[Block]:
    return [
        Heading(2, "1. Controller"),
        Bullets(
            (
                f"Controller: {controller.name}",
                f"Contact: {controller.contact}",
                f"Data protection officer: {controller.dpo or 'none named'}",
            )
        ),
    ]


def _description_blocks(site: SiteConfig, stores: list[Store], settings: Settings) -> list[Block]:
    pose = "on" if settings.pose_model else "off"
    camera_rows = tuple(
        (
            Code(store.id),
            camera.name,
            camera.location or "",
            f"{camera.fps:g}",
            _zone_names(camera, privacy=False),
            _zone_names(camera, privacy=True),
        )
        for store in stores
        for camera in _cameras(site, store)
    )
    return [
        Heading(2, "2. Systematic description of the processing"),
        Paragraph(
            "Purpose: to prevent and detect theft (loss prevention) in the stores below by "
            "pointing staff to behaviour associated with it, for a person to review; and to count "
            "footfall and occupancy by area, as numbers without images."
        ),
        Heading(3, "Stores and cameras"),
        Table(
            ("store", "name", "cameras", "time zone"),
            tuple((Code(s.id), _store_label(s), str(len(_cameras(site, s))), s.timezone) for s in stores),
        ),
        Table(
            ("store", "camera", "where", "frames analysed per second", "zones", "privacy zones"),
            camera_rows or (("", "no cameras", "", "", "", ""),),
        ),
        Heading(3, "What is analysed"),
        Bullets(
            (
                (
                    "Person detection: each analysed frame is searched for "
                    f"{', '.join(settings.classes)} (YOLOv8); the result is a box per object, no image.",
                ),
                "Tracking within one visit: a person's boxes on one camera are linked into a track "
                "by their positions from frame to frame (ByteTrack). A track number means nothing "
                "outside that camera's current run: numbering starts again whenever a camera's stream "
                "is opened, and nothing links tracks across cameras, visits or days.",
                f"Pose (body keypoints, optional; here {pose}): 17 points of the body, used for the "
                "concealment cue and to place the head blur. Keypoints are positions of joints, not "
                "a template of anyone's face or body.",
                "Privacy zones are blacked out before a frame is analysed: nothing inside them is "
                "detected, stored or shown.",
            )
        ),
        Heading(3, "Behaviours"),
        Paragraph(
            "An incident is raised for a person's visit (or, for crowding, for a place) when one of "
            "these patterns is seen; its score lists the signals that make it up. Staff review every "
            "incident; Shrinkwatch takes no decision about a person by itself."
        ),
        Table(
            ("behaviour", "what is seen"),
            tuple((incident_title(kind), words) for kind, words in BEHAVIOURS.items()),
        ),
    ]


def _stored_blocks(stores: list[Store], settings: Settings) -> list[Block]:
    evidence = str(settings.evidence_dir())
    retention = tuple(
        (
            Code(s.id),
            _days(s.privacy.retention_days.snapshots),
            _days(s.privacy.retention_days.clips),
            _days(s.privacy.retention_days.live),
            "yes" if s.privacy.blur_heads else "no",
        )
        for s in stores
    )
    hours = settings.detections_retention_h
    return [
        Heading(3, "What is stored, where, and for how long"),
        Table(
            ("what", "holds", "where", "kept"),
            (
                (
                    "incident snapshot",
                    "one image of the incident (heads blurred where the store says so), and where heads "
                    "are blurred the same image unblurred, shown only after a logged reveal",
                    (Code(f"{evidence}/<camera>/<incident>.jpg"), ", ", Code(".unblurred.jpg")),
                    "the store's snapshot retention",
                ),
                (
                    "incident clip and frames",
                    f"the clip from about {settings.evidence_before_s:g} s before to "
                    f"{settings.evidence_after_s:g} s after the incident (blurred, and unblurred where "
                    "heads are blurred), and its raw frames for access requests and erasure",
                    (
                        Code(".mp4"),
                        " (",
                        Code(".avi"),
                        "), ",
                        Code(".unblurred.mp4"),
                        ", ",
                        Code(".frames.avi"),
                    ),
                    "the store's clip retention",
                ),
                (
                    "incident tracks",
                    "per frame of the clip: its time and the boxes (and keypoints) seen",
                    Code(".tracks.json"),
                    "the longer of the two",
                ),
                (
                    "live frame",
                    "each camera's newest frame for the dashboard's live view (blurred, privacy zones black)",
                    Code(f"{settings.live_dir()}/<camera>.jpg"),
                    "replaced about every second; deleted once its camera has stopped for the store's "
                    "live retention",
                ),
                (
                    "detections",
                    "per analysed frame: boxes, track numbers, keypoints; no image",
                    (Code(f"{settings.topic_prefix}detections"), " (Kafka)"),
                    f"{hours:g} hours",
                ),
                (
                    "incidents",
                    "type, time, camera, zones, score and signals, track number, the analyst's "
                    "verdict and note; no image",
                    (
                        Code("incidents"),
                        " (PostgreSQL), ",
                        Code(f"{settings.topic_prefix}incidents"),
                        " (Kafka)",
                    ),
                    "kept as the record of what happened; the purge clears its reference to deleted files",
                ),
                (
                    "live incidents' change log",
                    "a copy of the incident at each change (the API's event stream), verdict and note "
                    "included; no image",
                    Code("incident_events"),
                    f"{EVENTS_KEPT.days} days",
                ),
                (
                    "occupancy",
                    "people counted per zone per minute; no image, no track",
                    Code("occupancy_minutes"),
                    f"{_days(settings.retention_occupancy_days)}, then hourly totals only",
                ),
                (
                    "heatmaps",
                    "where feet were, summed per cell of a grid per hour; no image, no track",
                    Code("heatmap_hours"),
                    f"{_days(settings.retention_heatmap_days)}, then daily totals only",
                ),
                (
                    "alert messages",
                    "each alert sent to staff (the incident, a snapshot where the store's rules attach one)",
                    Code("alert_outbox"),
                    f"{_days(settings.retention_alerts_days)} after it was sent",
                ),
                (
                    "evidence access log",
                    "who viewed, downloaded, revealed, exported, held, released or erased which "
                    "evidence, when, from where and why",
                    Code("evidence_access"),
                    _days(settings.retention_evidence_access_days),
                ),
                (
                    "staff accounts and sign-ins",
                    "dashboard users' names, emails, roles and stores; their sessions; the addresses of "
                    "failed sign-ins; API tokens (who they act for, their last use and its address)",
                    (
                        Code("users"),
                        ", ",
                        Code("user_sessions"),
                        ", ",
                        Code("sign_in_failures"),
                        ", ",
                        Code("api_tokens"),
                    ),
                    "accounts kept (disabled, not deleted); sessions 30 days after they end; "
                    "failed sign-ins 15 minutes; API tokens 90 days after they are revoked or expire",
                ),
                (
                    "disclosures and access requests",
                    "to whom evidence was handed and why; who asked for their footage, when it is due",
                    (Code("disclosures"), ", ", Code("access_requests")),
                    "kept as the register of what was disclosed",
                ),
            ),
        ),
        Heading(3, "Retention and blurring per store"),
        Paragraph(
            (
                "From each store's ",
                Code("privacy"),
                " in the site file, counted from the incident's end. A scheduled purge deletes "
                "evidence past its retention every "
                f"{settings.privacy_purge_interval_s / 60:g} minutes; an incident under a legal hold "
                "keeps its evidence until the hold is released (who, when and why are logged).",
            )
        ),
        Table(("store", "snapshots", "clips", "live frame", "heads blurred"), retention),
    ]


def _recipient_blocks(site: SiteConfig, stores: list[Store]) -> list[Block]:
    rows = tuple(
        (Code(store.id), name, channels) for store in stores for name, channels in _recipients(site, store)
    )
    return [
        Heading(3, "Recipients of alerts"),
        Paragraph(
            "Staff named in the site file who are sent alerts about a store's incidents, by channel "
            "(email, text message, a webhook to another system, or a chat service). Admins may add "
            "more on the dashboard's Alert settings page, which this report does not read."
        ),
        Table(("store", "recipient", "channels"), rows or (("", "none in the site file", ""),)),
    ]


def _proportionality_blocks(stores: list[Store], settings: Settings) -> list[Block]:
    unblurred = [s for s in stores if not s.privacy.blur_heads]
    blur = (
        "Heads are blurred in stored evidence, the live view and alert images in every store covered."
        if not unblurred
        else "Heads are blurred in stored evidence, the live view and alert images, except in "
        + ", ".join(f"{s.name} ({s.id})" for s in unblurred)
        + ", where the site file turns blurring off; that choice needs its own justification here."
    )
    return [
        Heading(2, "3. Necessity and proportionality"),
        Bullets(
            (
                "Cameras already record for security; analysis only points staff to a few moments worth "
                "a look, so far less footage is watched, and less is kept, than with recording alone.",
                "Only an incident keeps images: a snapshot and a short clip around it. Everything else "
                "is numbers (boxes, counts, grids) that identify no one.",
                blur,
                "Areas that need not be watched (neighbouring property, toilet doors, staff rest "
                "areas) are drawn as privacy zones and never analysed or stored.",
                "Evidence is deleted automatically at the end of the store's retention, unless a legal "
                "hold keeps one incident's evidence for an investigation.",
                "Staff decide: an incident is a prompt to look, never a decision about a person.",
            )
        ),
    ]


def _risk_blocks(settings: Settings) -> list[Block]:
    rows: tuple[tuple[Text, ...], ...] = (
        (
            "Shoppers identified from stored or shown images",
            "Heads blurred (from pose keypoints, else the top of the person's box); the unblurred "
            "evidence of one incident is shown only to an analyst or admin who reveals it with a "
            f"reason, for {settings.reveal_minutes} minutes, and every reveal is logged.",
        ),
        (
            "Footage kept longer than needed",
            "Retention per store and kind of evidence; the scheduled purge deletes the files and logs "
            "each deletion; legal holds are logged with who, when and why.",
        ),
        (
            "Staff looking at footage without need",
            "Sign-in, roles and store scope on the dashboard; every view, download, reveal and export "
            f"is logged in an append-only table, kept {_days(settings.retention_evidence_access_days)}, "
            "that admins read and export on the Evidence log page.",
        ),
        (
            "Watching places or people beyond the purpose",
            "Privacy zones blacked out before analysis, in evidence and in the live view.",
        ),
        (
            "Biometric identification or profiling across visits",
            "No face recognition and no biometric identifiers: no face, body or gait template is "
            "computed or kept. No re-identification: track numbers start again whenever a camera's "
            "stream is opened, and nothing links a person across cameras, visits or days.",
        ),
        (
            "A wrong or unfair suspicion",
            "Each incident shows the signals behind its score; an analyst confirms or rejects it; "
            "no automated decision with legal or similar effect is taken.",
        ),
        (
            "Evidence handed over without control",
            "Case files (report, clips and a SHA-256 manifest) are recorded in a disclosure register: "
            "to whom, why and by whom.",
        ),
    )
    return [
        Heading(2, "4. Risks to rights and freedoms, and the measures"),
        Table(("risk", "measures"), rows),
    ]


def _rights_blocks(controller: Controller) -> list[Block]:
    return [
        Heading(2, "5. Rights of the people filmed"),
        Bullets(
            (
                f"Access: a person may ask for footage of themselves ({controller.contact}). It is "
                "found by store, camera and time, exported with everyone else in it blurred whole, and "
                "answered within one month of the request (the dashboard's Access requests page records "
                "the request and its deadline).",
                "Objection and erasure: a person's evidence for a camera and a time window can be "
                "irreversibly blurred or deleted; each erasure is logged.",
                "Information: a sign at each store's entrances says who the controller is, why the "
                "cameras are there, how long images are kept, and how to use these rights.",
            )
        ),
    ]


def annex_blocks(
    site: SiteConfig, stores: list[Store], settings: Settings, controller: Controller, written: date
) -> list[Block]:
    """The DPIA annex for these stores, as blocks (to_markdown, to_html)."""
    names = ", ".join(s.name for s in stores) or "no stores"
    return [
        Heading(1, "DPIA annex: Shrinkwatch video analytics"),
        Paragraph(f"Stores covered: {names}. Written {written.isoformat()} from the site file and settings."),
        *_controller_blocks(controller),
        *_description_blocks(site, stores, settings),
        *_stored_blocks(stores, settings),
        *_recipient_blocks(site, stores),
        *_proportionality_blocks(stores, settings),
        *_risk_blocks(settings),
        *_rights_blocks(controller),
    ]


def signage_lines(store: Store, controller: Controller) -> list[str]:
    """The sign for one store's entrances: a headline, then one short paragraph each."""
    days = store.privacy.retention_days
    kept = (
        f"Images of incidents are kept for {_days(days.snapshots)} and video clips for "
        f"{_days(days.clips)}, then deleted automatically, unless needed for an investigation."
    )
    contact = f"Contact: {controller.contact}" + (
        f". Data protection officer: {controller.dpo}" if controller.dpo else ""
    )
    return [
        "CCTV with automated behaviour analysis",
        f"{_store_label(store)} is monitored by CCTV operated by {controller.name}, to prevent and detect "
        "theft and to keep customers and staff safe.",
        "Images are analysed automatically for behaviour associated with theft; staff review what it "
        "points to. There is no face recognition and no one is identified from one visit to the next."
        + (" Faces are blurred in stored images." if store.privacy.blur_heads else ""),
        kept,
        "You may ask for a copy of footage of you, object to it, or ask for it to be erased; we answer "
        "within one month.",
        f"{contact}. Ask staff for our full privacy notice.",
    ]


_SIGN_STYLE = """
@page { size: A4; margin: 15mm; }
body { font-family: system-ui, sans-serif; max-width: 180mm; margin: 0 auto; color: #000; }
h1 { font-size: 30pt; line-height: 1.15; border-bottom: 3pt solid #000; padding-bottom: 4mm; }
p { font-size: 15pt; line-height: 1.4; margin: 0 0 5mm; }
"""


def signage_html(store: Store, controller: Controller) -> str:
    """The sign as a printable HTML page (one A4 page)."""
    headline, *paragraphs = signage_lines(store, controller)
    return to_html(
        f"{headline}: {store.name}",
        [Heading(1, headline), *(Paragraph(p) for p in paragraphs)],
        _SIGN_STYLE,
    )


def documents(
    site: SiteConfig,
    settings: Settings,
    controller: Controller,
    store_ids: Sequence[str] | None,
    written: date,
) -> list[Document]:
    """Every file of the report: the annex (Markdown, HTML) and each store's sign (text, HTML)."""
    stores = select_stores(site, store_ids)
    blocks = annex_blocks(site, stores, settings, controller, written)
    out = [
        Document(f"{ANNEX}.md", to_markdown(blocks)),
        Document(f"{ANNEX}.html", to_html("DPIA annex: Shrinkwatch video analytics", blocks)),
    ]
    for store in stores:
        name = SIGNAGE.format(store=store.id)  # ids are [a-z0-9-]: a safe file name
        out.append(Document(f"{name}.txt", "\n\n".join(signage_lines(store, controller)) + "\n"))
        out.append(Document(f"{name}.html", signage_html(store, controller)))
    return out


def write_documents(docs: Iterable[Document], folder: Path) -> list[Path]:
    """Write each document into `folder` (made if missing), each beside and moved in place;
    returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for doc in docs:
        written.append(write_atomic(folder / doc.name, doc.text.encode("utf-8")))
    return written
