"""Who may have an incident's evidence file, and which file it is: the one check behind every
way evidence is served (the dashboard's `/evidence/...` route, streamlit_app.served, and the
API's `/v1/incidents/{id}/evidence/...`, api.routes_incidents). (Not to be confused with a
shopper's subject access request: privacy.subject.)

- An id in an address is one we could have written (`valid_id`), else nothing is looked up.
- The incident must be in the caller's stores when it is served (warehouse.incidents.
  incident_detail under the caller's scope): something outside them and something that does
  not exist are the same None.
- A snapshot is looked for only while the incident's `snapshot` column names one, and neither
  kind once its deletion is marked (`snapshot_purged_at`, `clip_purged_at`): a file written
  again after its purge is not served (`evidence_on_disk`).
- The unblurred file goes only to an account whose role may reveal faces (REVEALERS) and whose
  reveal of that incident is in force now (warehouse.evidence_log.revealed_until, counted over
  `reveal_minutes`); a caller without an account (an API service token) never has it.
- Every file handed out to be sent is logged first in the evidence access log
  (warehouse.evidence_log.record): who, action "view", or "download" for an attachment, the
  incident, from where, and `detail` {"file": "snapshot" | "clip"} ("revealed": true for the
  unblurred one, and whatever more the caller logs, such as the API token's name); the same
  access once per ONCE_PER_S. A refusal logs nothing, nor does a request that sends no file
  (a HEAD).

Where the settings live (the evidence folder, the reveal minutes) is the caller's business:
they come in as arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from privacy import files
from shrinkwatch.contracts import snapshot_name
from warehouse.db import Connection
from warehouse.evidence_log import ONCE_PER_S, record, revealed_until
from warehouse.incidents import incident_detail
from warehouse.scope import Scope, User

File = Literal["snapshot", "clip"]
# The file names in an address, and the kind of evidence each one is.
FILE_NAMES: dict[str, File] = {"snapshot.jpg": "snapshot", "clip.mp4": "clip"}
REVEALERS = ("analyst", "admin")  # the roles that may reveal faces (never a store manager)

_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")  # the whole id (fullmatch: `$` lets a newline end it)
# Where each file is, in the order looked for: the clip is `.avi` where ffmpeg was missing.
_SUFFIXES: dict[tuple[File, bool], tuple[str, ...]] = {
    ("snapshot", False): (files.SNAPSHOT,),
    ("clip", False): (files.CLIP, files.CLIP_FALLBACK),
    ("snapshot", True): (files.UNBLURRED_SNAPSHOT,),
    ("clip", True): (files.UNBLURRED_CLIP, files.UNBLURRED_CLIP_FALLBACK),
}
_MEDIA_TYPES = {".jpg": "image/jpeg", ".mp4": "video/mp4", ".avi": "video/x-msvideo"}
_PURGED: dict[File, str] = {"snapshot": "snapshot_purged_at", "clip": "clip_purged_at"}


def valid_id(text: str) -> bool:
    """Whether an incident or camera id in an address is one we could have written: letters,
    digits, `.`, `_` and `-`, 1 to 128 of them, and nothing else (not even a newline at the end)."""
    return _ID.fullmatch(text) is not None


def media_type(path: Path) -> str:
    """The content type an evidence file is sent with."""
    return _MEDIA_TYPES.get(path.suffix, "application/octet-stream")


def evidence_on_disk(
    root: Path, row: Mapping[str, Any], file: File, *, revealed: bool = False
) -> Path | None:
    """The file of an incident (`row`: its incident_id, camera_id, snapshot, snapshot_purged_at
    and clip_purged_at columns, as incident_detail gives them) under the evidence folder `root`,
    blurred as stored or `revealed`; None when there is none. A snapshot is looked for only
    while the incident's `snapshot` column names one, and neither file once its kind is marked
    purged (a file written again after its purge is not served)."""
    if row[_PURGED[file]] is not None:
        return None
    if file == "snapshot" and not row.get("snapshot"):
        return None
    reference = snapshot_name(str(row["camera_id"]), str(row["incident_id"]))
    return next(files.existing(root, reference, _SUFFIXES[file, revealed]), None)


def may_reveal(user: User | None) -> bool:
    """Whether the account's role may reveal faces (analysts and admins; no account: never)."""
    return user is not None and user.role in REVEALERS


@dataclass(frozen=True)
class EvidenceRequest:
    """One request for an incident's file: which, how, by whom and from where."""

    username: str  # whom the access log names
    user: User | None  # the account asking (None: a caller without one, which never reveals)
    scope: Scope  # the stores the caller may see now
    incident_id: str
    file: File
    revealed: bool = False
    download: bool = False
    client: str | None = None
    logged: bool = True  # False for a request that sends no file (a HEAD)
    detail: Mapping[str, Any] = field(default_factory=dict)  # more for the log's detail


def checked_evidence(
    conn: Connection, request: EvidenceRequest, *, evidence_dir: Path, reveal_minutes: int
) -> Path | None:
    """The file `request` asks for, when its caller may have it now (the module docstring's
    rules); the access is logged before the path is returned. None (nothing logged) otherwise."""
    if not valid_id(request.incident_id):
        return None
    row = incident_detail(conn, request.scope, request.incident_id)
    if row is None:
        return None
    if request.revealed and not (
        may_reveal(request.user)
        and revealed_until(conn, request.username, request.incident_id, reveal_minutes) is not None
    ):
        return None
    path = evidence_on_disk(evidence_dir, row, request.file, revealed=request.revealed)
    if path is not None and request.logged:
        revealed = {"revealed": True} if request.revealed else {}
        record(
            conn,
            username=request.username,
            action="download" if request.download else "view",
            incident_id=request.incident_id,
            client=request.client,
            detail={**request.detail, "file": request.file, **revealed},
            once_per_s=ONCE_PER_S,
        )
    return path
