"""Case files: incidents handed to the police or an insurer as one ZIP (docs/CASES.md).

An analyst or an admin picks one incident or several; each is looked up within their scope
(an incident of another store is refused in the same words as one that does not exist). The
ZIP holds:

- `report.html`: one self-contained page (inline CSS, the snapshots as data: URIs, nothing
  fetched) with who exported it, to whom, why and when, and per incident: what, where (store
  and camera), the timeline on the store's clock, the snapshot, the signals and how they make
  the score, the verdict, reviewer and note, and the legal hold if there is one;
- `incidents/<id>/snapshot.jpg` and `clip.mp4` (`clip.avi` where the clip was kept as MJPEG)
  as stored, heads blurred where the store blurs them; with `include_unblurred`, also
  `snapshot.unblurred.jpg` and `clip.unblurred.mp4`, and the export is logged as a reveal too;
  nothing of a kind that retention or an erasure marked deleted, even when a file of it is
  there again (the purge's next sweep deletes it);
- `manifest.json` (what, for whom, and each file's size and SHA-256) and `SHA256SUMS` (every
  other file's SHA-256, as `sha256sum -c SHA256SUMS` checks it).

All or nothing: the ZIP is built in memory first; then, in one transaction, the export goes in
the disclosure register (warehouse.disclosures: kind 'case', with the ZIP's SHA-256) and in the
access log (evidence_log: one "export" row per incident, and one "reveal" per incident when the
unblurred files went too). The caller gets the bytes only when both are written. That
transaction is the caller's connection's: the dashboard runs it on a connection of its own,
never on the one its sessions share (their statements would join it).

The helpers that make such a ZIP (`Package`) serve the access requests too (privacy.subject).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privacy import files
from shrinkwatch import wording
from shrinkwatch.contracts import snapshot_name
from shrinkwatch.errors import ShrinkwatchError
from warehouse import disclosures, evidence_log
from warehouse.db import Connection
from warehouse.incidents import incident_detail
from warehouse.scope import QueryError, Scope, User

MANIFEST_SCHEMA = "shrinkwatch.case-manifest/1"
EXPORT_ROLES = ("admin", "analyst")
MAX_INCIDENTS = 50


class CaseError(ShrinkwatchError):
    """A case file that cannot be made (the message says why, for the page)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def folder_name(incident_id: str) -> str:
    """An incident id as a folder name inside the ZIP (nothing but letters, digits, . _ -)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", incident_id).lstrip(".")
    return safe or "incident"


@dataclass
class Package:
    """The files of a ZIP being made, by path inside it; `zip()` adds the manifest and the sums."""

    entries: dict[str, bytes] = field(default_factory=dict)

    def add(self, path: str, data: bytes) -> None:
        self.entries[path] = data

    def zip(self, manifest: dict[str, Any]) -> bytes:
        """The ZIP: every file, `manifest.json` (`manifest` and every file's size and SHA-256)
        and `SHA256SUMS` (every file but itself)."""
        listed = [{"path": p, "bytes": len(d), "sha256": sha256(d)} for p, d in sorted(self.entries.items())]
        document = json.dumps({**manifest, "files": listed}, indent=2, ensure_ascii=False).encode("utf-8")
        everything = {**self.entries, "manifest.json": document}
        sums = "".join(f"{sha256(d)}  {p}\n" for p, d in sorted(everything.items())).encode("ascii")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path, data in sorted(everything.items()):
                archive.writestr(path, data)
            archive.writestr("SHA256SUMS", sums)
        return out.getvalue()


@dataclass(frozen=True)
class ExportFile:
    """A ZIP handed over: its name, bytes, SHA-256 and its row in the disclosure register."""

    file_name: str
    data: bytes
    sha256: str
    disclosure_id: int


def gone_kinds(row: dict[str, Any]) -> set[files.Kind]:
    """The kinds of an incident's evidence that retention or an erasure deleted (its
    `snapshot_purged_at`, `clip_purged_at`)."""
    gone: set[files.Kind] = set()
    if row.get("snapshot_purged_at") is not None:
        gone.add("snapshots")
    if row.get("clip_purged_at") is not None:
        gone.add("clips")
    return gone


def incident_files(
    root: Path, camera_id: str, incident_id: str, *, unblurred: bool, gone: Iterable[files.Kind] = ()
) -> dict[str, Path]:
    """The evidence files of an incident that exist, by their name in a case file
    (`snapshot.jpg`, `clip.mp4` or `clip.avi`, and the unblurred ones when asked); none of a
    kind that is `gone` (marked deleted: a file of it written again after the purge is not
    evidence to hand over, and the purge's next sweep deletes it)."""
    reference = snapshot_name(camera_id, incident_id)
    names = {
        "snapshot.jpg": files.SNAPSHOT,
        "clip.mp4": files.CLIP,
        "clip.avi": files.CLIP_FALLBACK,
    }
    if unblurred:
        names |= {
            "snapshot.unblurred.jpg": files.UNBLURRED_SNAPSHOT,
            "clip.unblurred.mp4": files.UNBLURRED_CLIP,
            "clip.unblurred.avi": files.UNBLURRED_CLIP_FALLBACK,
        }
    purged = {suffix for kind in gone for suffix in files.BY_KIND[kind]}
    found = {}
    for name, suffix in names.items():
        path = files.evidence_path(root, reference, suffix)
        if suffix not in purged and path is not None and path.is_file():
            found[name] = path
    return found


def _required(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        msg = f"{name}: required (who receives the case file, and why it is handed over)"
        raise CaseError(msg)
    return value


def _incidents(conn: Connection, scope: Scope, incident_ids: Sequence[str]) -> list[dict[str, Any]]:
    ids = list(dict.fromkeys(i.strip() for i in incident_ids if i.strip()))
    if not ids:
        msg = "no incident chosen"
        raise CaseError(msg)
    if len(ids) > MAX_INCIDENTS:
        msg = f"at most {MAX_INCIDENTS} incidents in one case file (chosen: {len(ids)})"
        raise CaseError(msg)
    rows = []
    for incident_id in ids:
        try:
            row = incident_detail(conn, scope, incident_id)
        except QueryError:
            row = None
        if row is None:  # missing, or another store's: the same words
            msg = f"no such incident in your stores: {incident_id}"
            raise CaseError(msg)
        rows.append(row)
    return rows


# -- the report ------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2933;max-width:960px;margin:24px auto;
padding:0 16px;line-height:1.45}
h1{margin:0 0 4px}h2{margin:32px 0 4px;border-top:2px solid #e4e7eb;padding-top:16px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d9dee3;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f5f7fa}.muted{color:#616e7c}.hold{background:#fff3c4;padding:6px 10px}
img{max-width:100%;border-radius:4px}code{font-size:.92em}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _clock(moment: datetime | None, timezone: str | None) -> str:
    return "—" if moment is None else _e(wording.store_time(moment, timezone))


def timeline(row: dict[str, Any], hold: dict[str, Any] | None) -> list[tuple[datetime, str]]:
    """What happened to an incident, in order: (moment, what)."""
    events = [(row["started_at"], "started (first seen)")]
    if row["ended_at"] is not None:
        events.append((row["ended_at"], "ended"))
    else:
        events.append((row["updated_at"], f"last updated (still {row['status']})"))
    if row["reviewed_at"] is not None and row["user_confirmed"] is not None:
        events.append(
            (row["reviewed_at"], f"{wording.verdict_word(row['user_confirmed'])} by {row['reviewed_by']}")
        )
    if hold is not None:
        events.append((hold["held_at"], f"legal hold by {hold['held_by']}"))
    return sorted(events, key=lambda e: e[0])


def _signals(row: dict[str, Any]) -> str:
    signals = sorted(row["signals"] or [], key=lambda s: -s.get("contribution", 0.0))
    if not signals:
        return "<p class='muted'>No signals recorded.</p>"
    body = "".join(
        f"<tr><td>{_e(wording.signal_label(s['name']))}</td><td>{_e(wording.signal_value(s['value']))}</td>"
        f"<td><b>+{s['contribution']:.2f}</b></td></tr>"
        for s in signals
    )
    total = sum(s["contribution"] for s in signals)
    return (
        "<table><tr><th>signal</th><th>measured</th><th>adds to the score</th></tr>"
        f"{body}<tr><td colspan='2'>sum (the score is the sum, at most 1)</td>"
        f"<td><b>{total:.2f}</b></td></tr>"
        "</table><p class='muted'>Each signal adds weight × strength to the risk score; the weights "
        f"are learnt from analysts' verdicts (weights version {row['weights_version'] or 0}).</p>"
    )


def _incident_section(
    row: dict[str, Any], hold: dict[str, Any] | None, snapshot: bytes | None, names: list[str]
) -> str:
    tz = row["store_timezone"]
    level = row["risk_level"]
    if row["user_confirmed"] is None:
        verdict = "Not reviewed yet."
    else:
        verdict = (
            f"<b>{_e(wording.verdict_word(row['user_confirmed']).capitalize())}</b>"
            f" by {_e(row['reviewed_by'])}"
            f" on {_clock(row['reviewed_at'], tz)}"
            + (f"<br>Note: {_e(row['review_note'])}" if row["review_note"] else "")
        )
    hold_html = (
        f"<p class='hold'>Under legal hold since {_clock(hold['held_at'], tz)} by {_e(hold['held_by'])}: "
        f"{_e(hold['reason'])}</p>"
        if hold
        else ""
    )
    steps = "".join(
        f"<tr><td>{_clock(at, tz)}</td><td>{_e(what)}</td></tr>" for at, what in timeline(row, hold)
    )
    picture = (
        f"<img alt='snapshot' src='data:image/jpeg;base64,{base64.b64encode(snapshot).decode('ascii')}'>"
        if snapshot
        else "<p class='muted'>No snapshot is kept for this incident.</p>"
    )
    folder = folder_name(row["incident_id"])
    listed = ", ".join(f"<code>incidents/{_e(folder)}/{_e(n)}</code>" for n in names) or "none"
    return f"""
<h2>{_e(wording.incident_title(row["incident_type"]))}</h2>
<p class="muted">Incident <code>{_e(row["incident_id"])}</code> · {_e(wording.level_words(level))}, score
{row["risk_score"]:.2f}</p>
{hold_html}
<table>
<tr><th>Store</th><td>{_e(row["store_name"])} (<code>{_e(row["store_id"])}</code>),
time zone {_e(tz)}</td></tr>
<tr><th>Camera</th><td><code>{_e(row["camera_id"])}</code></td></tr>
<tr><th>Zones</th><td>{_e(", ".join(row["zone_ids"] or [])) or "—"}</td></tr>
<tr><th>Person (track)</th><td>{row["track_id"] if row["track_id"] is not None else "— (a group)"}</td></tr>
<tr><th>Verdict</th><td>{verdict}</td></tr>
<tr><th>Files</th><td>{listed}</td></tr>
</table>
<h3>Timeline (store time)</h3>
<table><tr><th>when</th><th>what</th></tr>{steps}</table>
<h3>Snapshot</h3>
{picture}
<h3>Why this score</h3>
{_signals(row)}
"""


def report_html(
    rows: list[dict[str, Any]],
    holds: dict[str, dict[str, Any] | None],
    snapshots: dict[str, bytes],
    names: dict[str, list[str]],
    *,
    by: User,
    recipient: str,
    reason: str,
    at: datetime,
    unblurred: bool,
) -> str:
    """The case file's report: one self-contained HTML page (nothing to fetch)."""
    sections = "".join(
        _incident_section(
            r, holds[r["incident_id"]], snapshots.get(r["incident_id"]), names[r["incident_id"]]
        )
        for r in rows
    )
    blur = (
        "The unblurred snapshots and clips are included as well, at the exporter's request (logged)."
        if unblurred
        else "Snapshots and clips are as stored: heads blurred where the store blurs them."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Shrinkwatch case file</title>
<style>{_CSS}</style></head><body>
<h1>Case file</h1>
<p class="muted">{len(rows)} incident(s), exported from Shrinkwatch.</p>
<table>
<tr><th>Exported by</th><td>{_e(by.label)} (<code>{_e(by.username)}</code>,
{_e(wording.as_words(by.role))})</td></tr>
<tr><th>To</th><td>{_e(recipient)}</td></tr>
<tr><th>Why</th><td>{_e(reason)}</td></tr>
<tr><th>When</th><td>{at.astimezone(UTC):%d %b %Y %H:%M:%S} UTC</td></tr>
</table>
<p>{blur} Every file's SHA-256 is in <code>manifest.json</code> and <code>SHA256SUMS</code>
(check them with <code>sha256sum -c SHA256SUMS</code>).</p>
{sections}
</body></html>
"""


# -- the export ------------------------------------------------------------------------------
def build_case(
    conn: Connection,
    root: Path,
    user: User,
    scope: Scope,
    incident_ids: Iterable[str],
    *,
    recipient: str,
    reason: str,
    include_unblurred: bool = False,
    client: str | None = None,
    now: datetime | None = None,
) -> ExportFile:
    """A case file of these incidents (see the module docstring), entered in the disclosure
    register and the access log; CaseError when it cannot be made (nothing is then logged).
    `root` is the evidence folder."""
    if user.role not in EXPORT_ROLES:
        msg = "case files are made by analysts and admins"
        raise CaseError(msg)
    recipient, reason = _required("to whom", recipient), _required("why", reason)
    rows = _incidents(conn, scope, list(incident_ids))
    at = now or datetime.now(UTC)
    package = Package()
    holds: dict[str, dict[str, Any] | None] = {}
    snapshots: dict[str, bytes] = {}
    names: dict[str, list[str]] = {}
    for row in rows:
        incident_id = row["incident_id"]
        holds[incident_id] = evidence_log.active_hold(conn, incident_id)
        found = incident_files(
            root, row["camera_id"], incident_id, unblurred=include_unblurred, gone=gone_kinds(row)
        )
        names[incident_id] = sorted(found)
        for name, path in found.items():
            data = path.read_bytes()
            package.add(f"incidents/{folder_name(incident_id)}/{name}", data)
            if name == "snapshot.jpg":
                snapshots[incident_id] = data
    report = report_html(
        rows,
        holds,
        snapshots,
        names,
        by=user,
        recipient=recipient,
        reason=reason,
        at=at,
        unblurred=include_unblurred,
    )
    package.add("report.html", report.encode("utf-8"))
    ids = [r["incident_id"] for r in rows]
    stores = sorted({r["store_id"] for r in rows})
    data = package.zip(
        {
            "schema": MANIFEST_SCHEMA,
            "kind": "case",
            "created_at": at.astimezone(UTC).isoformat(),
            "exported_by": user.username,
            "recipient": recipient,
            "reason": reason,
            "incident_ids": ids,
            "store_ids": stores,
            "unblurred_included": include_unblurred,
        }
    )
    file_name = f"case-{at.astimezone(UTC):%Y%m%d-%H%M%S}-{len(ids)}.zip"
    digest = sha256(data)
    with conn.transaction():
        disclosure_id = disclosures.record_disclosure(
            conn,
            kind="case",
            disclosed_by=user.username,
            recipient=recipient,
            reason=reason,
            incident_ids=ids,
            store_ids=stores,
            file_name=file_name,
            sha256=digest,
        )
        for row in rows:
            detail = {
                "file": file_name,
                "disclosure_id": disclosure_id,
                "recipient": recipient,
                "sha256": digest,
            }
            evidence_log.record(
                conn,
                username=user.username,
                action="export",
                incident_id=row["incident_id"],
                client=client,
                reason=reason,
                detail=detail | {"files": names[row["incident_id"]]},
            )
            if include_unblurred:
                evidence_log.record(
                    conn,
                    username=user.username,
                    action="reveal",
                    incident_id=row["incident_id"],
                    client=client,
                    reason=reason,
                    detail=detail | {"kind": "case file"},
                )
    return ExportFile(file_name, data, digest, disclosure_id)
