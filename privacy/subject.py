"""Subject access requests and erasure (docs/CASES.md): a person's own footage handed to them
with everyone else blurred whole, or their footage blurred or deleted for good. Admins only.

Finding a person: a request names a store, a camera and a time window; the evidence is that
camera's incidents overlapping the window whose tracks (`.tracks.json`) are kept with their
raw frames (`.frames.avi`) or, once the clip's retention has deleted those (a store may keep
snapshots longer than clips), with a snapshot (privacy.files); nothing of a kind marked
deleted is used, even if a file of it is there again. The admin picks the person in each
incident by its track id, on the key frame with every track's box and id drawn (`key_frame`:
heads blurred where the store blurs them, so picking someone shows no more than the stored
snapshot does).

The export (`export_request`): every frame of each chosen incident's frames file with every
other person blurred whole (privacy.redact.blur_people, keeping that track), as a clip a
browser plays, and the key frame so redacted as a JPEG; where the frames went with the clip's
retention, only the snapshot (the unblurred one, else the shown one) with every other person
of the key frame's tracks blurred whole, and the cover letter says the recording itself was
deleted already. Then a cover letter (what is included, that others are blurred, the dates)
and the manifest and SHA-256 sums of privacy.cases. Built in memory first; then, in one
transaction, the request is marked answered, the ZIP goes in the disclosure register (kind
'access_request') and each incident gets an "access_request" row in the access log. A request
answered before may be exported again (the first answer may never have reached the
requester): that is a new disclosure, registered and logged the same way, and the request
keeps the date of its first answer.

Erasure or objection (`erase`): for a camera, a window and a person (a track per incident) or
everyone in it, either
- `blur`: the person (or every person) is blurred whole, irreversibly, in every image file of
  the incident's evidence: both snapshots (boxes of the key frame), both clips and the frames
  file frame by frame (boxes of that frame); each file is decoded, blurred, re-encoded and
  moved in place. Everyone else is left as they were. The tracks file keeps its boxes (no
  image), so that a later request can still be matched; it goes with the evidence's retention.
- `delete`: every file of the incident's evidence is deleted, and the incident is marked as
  having neither snapshot nor clip (warehouse.incidents.mark_evidence_gone).
The reason is checked before anything is touched. An incident under a legal hold is left as
it is (the hold is released first, by whoever placed it, when erasure wins over the claim it
protects) and reported as held. Each incident is logged before its files are touched, as the
purge does: one "erase" row with the reason, the mode, the tracks and the files about to be
changed (for `delete`, in the same transaction as the incident's mark, so the purge's sweep
deletes whatever a failure leaves). A file that cannot be changed stops that incident: a
second "erase" row says which file failed and which were changed before it, the incident is
reported as failed, and the next incident goes on. So every incident changed is logged,
whatever fails after it; the connection is in autocommit mode, each row committed as written.
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from privacy import files, media, redact
from privacy.cases import Package, folder_name, gone_kinds, sha256
from shrinkwatch import wording
from shrinkwatch.contracts import DetectedObject, snapshot_name
from shrinkwatch.errors import ShrinkwatchError
from warehouse import disclosures, evidence_log
from warehouse.db import Connection
from warehouse.incidents import lock_incident, mark_evidence_gone
from warehouse.scope import QueryError, Scope, User, check_text

Mode = Literal["blur", "delete"]
MANIFEST_SCHEMA = "shrinkwatch.access-request-manifest/1"
REASON_MAX = 1000  # characters of an erasure's reason (as the Review page's reasons)
_IMAGE_SUFFIXES = (files.SNAPSHOT, files.UNBLURRED_SNAPSHOT)
_CLIP_SUFFIXES = (files.CLIP, files.UNBLURRED_CLIP)
_MJPEG_SUFFIXES = (files.CLIP_FALLBACK, files.UNBLURRED_CLIP_FALLBACK, files.FRAMES)
_DELETED = (*files.BY_KIND["snapshots"], *files.BY_KIND["clips"], files.TRACKS)


class SubjectError(ShrinkwatchError):
    """An access request or erasure that cannot be done (the message says why)."""


def _admin(user: User) -> None:
    if not user.is_admin:
        msg = "access requests and erasure are for admins"
        raise SubjectError(msg)


@dataclass(frozen=True)
class Evidence:
    """One incident's evidence that a person can be found in: the incident, its tracks, and
    where its files are."""

    incident: dict[str, Any]
    tracks: files.Tracks
    reference: str

    @property
    def incident_id(self) -> str:
        return str(self.incident["incident_id"])

    def path(self, root: Path, suffix: str) -> Path:
        found = files.evidence_path(root, self.reference, suffix)
        assert found is not None  # (the reference is made here, from ids)
        return found

    def kept(self, root: Path, suffix: str) -> Path | None:
        """The file with this suffix, when it is there and its kind was not marked deleted."""
        gone = {s for kind in gone_kinds(self.incident) for s in files.BY_KIND[kind]}
        path = self.path(root, suffix)
        return path if suffix not in gone and path.is_file() else None

    def frames_file(self, root: Path) -> Path | None:
        """The raw frames, while the clip's retention keeps them."""
        return self.kept(root, files.FRAMES)

    def snapshot_file(self, root: Path) -> Path | None:
        """The key frame's picture when the raw frames are gone: the unblurred snapshot, else
        the shown one."""
        return self.kept(root, files.UNBLURRED_SNAPSHOT) or self.kept(root, files.SNAPSHOT)

    def track_ids(self) -> list[int]:
        """Every person's track id seen in any frame, in order."""
        seen = {
            o.track_id
            for f in self.tracks.frames
            for o in f.objects
            if o.class_name == "person" and o.track_id is not None
        }
        return sorted(seen)


def find_evidence(
    conn: Connection, root: Path, scope: Scope, camera_id: str, start: datetime, end: datetime
) -> list[Evidence]:
    """The camera's incidents overlapping [start, end) whose tracks are kept with their frames
    or a snapshot (a tracks file that cannot be read counts as none), oldest first."""
    found = []
    for row in disclosures.camera_incidents(conn, scope, camera_id, start, end):
        reference = snapshot_name(row["camera_id"], row["incident_id"])
        tracks = files.evidence_path(root, reference, files.TRACKS)
        if tracks is None or not tracks.is_file():
            continue
        try:
            evidence = Evidence(row, files.read_tracks(tracks), reference)
        except ValueError:
            continue
        if evidence.frames_file(root) is not None or evidence.snapshot_file(root) is not None:
            found.append(evidence)
    return found


def _boxes(objects: Iterable[DetectedObject], tracks: set[int] | None) -> list[DetectedObject]:
    """The persons among `objects` that are these tracks (None: every person)."""
    return [
        o
        for o in objects
        if o.class_name == "person" and (tracks is None or (o.track_id is not None and o.track_id in tracks))
    ]


def _frame_objects(tracks: files.Tracks, index: int) -> list[DetectedObject]:
    return tracks.frames[index].objects if 0 <= index < len(tracks.frames) else []


def _jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        msg = "could not encode a frame as JPEG"
        raise SubjectError(msg)
    return encoded.tobytes()


def _key_image(root: Path, evidence: Evidence) -> np.ndarray:
    """The key frame: from the raw frames while they are kept, else the snapshot."""
    frames_path = evidence.frames_file(root)
    if frames_path is not None:
        frames = media.read_frames(frames_path)
        if not frames:
            msg = f"incident {evidence.incident_id}: its frames file holds no frame"
            raise SubjectError(msg)
        return frames[min(max(evidence.tracks.key_index, 0), len(frames) - 1)]
    snapshot = evidence.snapshot_file(root)
    image = None if snapshot is None else cv2.imread(str(snapshot), cv2.IMREAD_COLOR)
    if image is None:
        msg = f"incident {evidence.incident_id}: neither its frames nor a snapshot can be read"
        raise SubjectError(msg)
    return image


def key_frame(root: Path, evidence: Evidence, *, blur_heads: bool = True) -> bytes:
    """The incident's key frame as JPEG with every person's box and track id drawn (heads
    blurred when asked), for picking the person."""
    image = _key_image(root, evidence).copy()
    objects = _boxes(_frame_objects(evidence.tracks, evidence.tracks.key_index), None)
    if blur_heads:
        redact.blur_heads(image, objects)
    height, width = image.shape[:2]
    for obj in objects:
        x1, y1, x2, y2 = (round(v * s) for v, s in zip(obj.box, (width, height, width, height), strict=True))
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 200, 255), 2)
        label = "?" if obj.track_id is None else str(obj.track_id)
        cv2.rectangle(image, (x1, max(0, y1 - 20)), (x1 + 12 * len(label) + 8, y1), (0, 200, 255), -1)
        cv2.putText(image, label, (x1 + 4, max(14, y1 - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 2)
    return _jpeg(image)


def blurs_heads(evidence: Evidence) -> bool:
    """Whether the incident's store blurs heads (its privacy setting; yes when unsaid)."""
    privacy = evidence.incident.get("store_privacy") or {}
    return bool(privacy.get("blur_heads", True))


# -- subject access request ------------------------------------------------------------------
def requester_frames(root: Path, evidence: Evidence, track_id: int) -> list[np.ndarray]:
    """Every frame of the incident's frames file with every person but `track_id` blurred
    whole (none when the frames are not kept)."""
    frames_path = evidence.frames_file(root)
    frames = [] if frames_path is None else media.read_frames(frames_path)
    return [
        redact.blur_people(image, _frame_objects(evidence.tracks, i), keep=(track_id,))
        for i, image in enumerate(frames)
    ]


def requester_still(root: Path, evidence: Evidence, track_id: int) -> np.ndarray:
    """The key frame (the snapshot, when the frames are gone) with every person of it but
    `track_id` blurred whole."""
    objects = _frame_objects(evidence.tracks, evidence.tracks.key_index)
    return redact.blur_people(_key_image(root, evidence).copy(), objects, keep=(track_id,))


@dataclass(frozen=True)
class Answered:
    """One incident of an answer: the requester's track, and how many frames its footage has
    (0: the clip was deleted by retention, only the key frame is kept)."""

    evidence: Evidence
    track_id: int
    frames: int


def _cover_letter(
    request: dict[str, Any], chosen: list[Answered], store_name: str, by: User, at: datetime
) -> str:
    tz = chosen[0].evidence.incident["store_timezone"] if chosen else None

    def item(a: Answered) -> str:
        when = html.escape(wording.store_time(a.evidence.incident["started_at"], tz))
        folder = f"<code>incidents/{html.escape(folder_name(a.evidence.incident_id))}/</code>"
        if a.frames:
            what = (
                f"a clip of {a.frames} frames (<code>footage</code>) and its key frame "
                "(<code>key_frame.jpg</code>)"
            )
        else:
            what = (
                "a still picture only (<code>key_frame.jpg</code>): the recording itself had already "
                "been deleted under the store's retention"
            )
        return f"<li>{when}: {folder} — {what}</li>"

    items = "".join(item(a) for a in chosen)
    stills = sum(1 for a in chosen if not a.frames)
    deleted = (
        f"<p>For {stills} of these recordings only a still picture was left: the video had already "
        "been deleted under the store's retention, before your request was answered.</p>"
        if stills
        else ""
    )
    start = wording.store_time(request["window_start"], tz)
    end = wording.store_time(request["window_end"], tz)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Your subject access request</title>
<style>body{{font-family:system-ui,sans-serif;max-width:760px;margin:24px auto;padding:0 16px;
line-height:1.5;color:#1f2933}}code{{font-size:.92em}}</style></head><body>
<h1>Your subject access request</h1>
<p>To: {html.escape(request["requester"])}</p>
<p>You asked on {request["received_on"]:%d %B %Y} for the footage of you recorded by our camera
<code>{html.escape(request["camera_id"])}</code> at {html.escape(store_name)} between {html.escape(start)}
and {html.escape(end)}. The answer was due by {request["due_on"]:%d %B %Y}; it was sent on
{at.astimezone(UTC):%d %B %Y}.</p>
<p>What is included: the recordings in which you appear, {len(chosen)} in all:</p>
<ul>{items}</ul>
{deleted}
<p>Every other person in these recordings is blurred whole, to protect their privacy; you are
shown as recorded. Recordings are kept only as long as the store's retention allows, then
deleted automatically. You may ask for your recordings to be erased, or object to them being
kept, by replying to this letter.</p>
<p>The SHA-256 of every file is in <code>manifest.json</code> and <code>SHA256SUMS</code>.</p>
<p>Answered by {html.escape(by.label)}.</p>
</body></html>
"""


@dataclass(frozen=True)
class RequestAnswer:
    """An access request's ZIP: its name, bytes, SHA-256, its row in the register, and when
    the request was first answered if this is a later answer (None: the first)."""

    file_name: str
    data: bytes
    sha256: str
    disclosure_id: int
    answered_before: datetime | None = None


def _answer(root: Path, evidence: Evidence, track_id: int, package: Package) -> Answered:
    """Put one incident's footage of the requester in the package."""
    folder = f"incidents/{folder_name(evidence.incident_id)}"
    if evidence.frames_file(root) is None:  # the clip's retention took the frames: the still
        package.add(f"{folder}/key_frame.jpg", _jpeg(requester_still(root, evidence, track_id)))
        return Answered(evidence, track_id, 0)
    frames = requester_frames(root, evidence, track_id)
    with tempfile.TemporaryDirectory(prefix="shrinkwatch-request-") as scratch:
        written = media.write_clip(frames, evidence.tracks.fps, Path(scratch) / "footage.mp4")
        if written is None:
            msg = f"incident {evidence.incident_id}: no frame to export"
            raise SubjectError(msg)
        package.add(f"{folder}/footage{written.suffix}", written.read_bytes())
    key = frames[min(max(evidence.tracks.key_index, 0), len(frames) - 1)]
    package.add(f"{folder}/key_frame.jpg", _jpeg(key))
    return Answered(evidence, track_id, len(frames))


def export_request(
    conn: Connection,
    root: Path,
    user: User,
    scope: Scope,
    request_id: int,
    people: Mapping[str, int],
    *,
    client: str | None = None,
    now: datetime | None = None,
) -> RequestAnswer:
    """Answer an access request with the requester's footage: `people` is the requester's
    track id in each incident chosen (incident id -> track id). See the module docstring."""
    _admin(user)
    request = disclosures.access_request(conn, request_id)
    if request is None or request["store_id"] not in scope.store_ids:
        msg = f"no such access request: {request_id}"
        raise SubjectError(msg)
    if not people:
        msg = "choose the requester in at least one incident"
        raise SubjectError(msg)
    found = {
        e.incident_id: e
        for e in find_evidence(
            conn, root, scope, request["camera_id"], request["window_start"], request["window_end"]
        )
    }
    at = now or datetime.now(UTC)
    package = Package()
    chosen: list[Answered] = []
    for incident_id, track_id in people.items():
        evidence = found.get(incident_id)
        if evidence is None:
            msg = f"incident {incident_id} is not in this request's camera and window (or keeps no footage)"
            raise SubjectError(msg)
        if track_id not in evidence.track_ids():
            msg = f"incident {incident_id}: no person with track id {track_id}"
            raise SubjectError(msg)
        chosen.append(_answer(root, evidence, track_id, package))
    store = chosen[0].evidence.incident["store_name"]
    package.add("cover_letter.html", _cover_letter(request, chosen, store, user, at).encode("utf-8"))
    ids = [a.evidence.incident_id for a in chosen]
    before = request["answered_at"]
    data = package.zip(
        {
            "schema": MANIFEST_SCHEMA,
            "kind": "access_request",
            "request_id": request_id,
            "created_at": at.astimezone(UTC).isoformat(),
            "exported_by": user.username,
            "requester": request["requester"],
            "received_on": request["received_on"].isoformat(),
            "due_on": request["due_on"].isoformat(),
            "answered_before": None if before is None else before.astimezone(UTC).isoformat(),
            "incidents": [
                {
                    "incident_id": a.evidence.incident_id,
                    "track_id": a.track_id,
                    "footage": "clip" if a.frames else "key frame only (the clip was deleted by retention)",
                }
                for a in chosen
            ],
        }
    )
    file_name = f"access-request-{request_id}-{at.astimezone(UTC):%Y%m%d-%H%M%S}.zip"
    digest = sha256(data)
    reason = f"subject access request {request_id}" + (" (answered again)" if before is not None else "")
    with conn.transaction():
        disclosures.mark_answered(conn, request_id, by=user.username)  # (the first answer's date stays)
        disclosure_id = disclosures.record_disclosure(
            conn,
            kind="access_request",
            disclosed_by=user.username,
            recipient=request["requester"],
            reason=reason,
            incident_ids=ids,
            store_ids=[request["store_id"]],
            file_name=file_name,
            sha256=digest,
            request_id=request_id,
        )
        for a in chosen:
            evidence_log.record(
                conn,
                username=user.username,
                action="access_request",
                incident_id=a.evidence.incident_id,
                client=client,
                reason=reason,
                detail={
                    "file": file_name,
                    "request_id": request_id,
                    "track_id": a.track_id,
                    "sha256": digest,
                    "footage": "clip" if a.frames else "key frame",
                },
            )
    return RequestAnswer(file_name, data, digest, disclosure_id, before)


# -- erasure and objection -------------------------------------------------------------------
@dataclass(frozen=True)
class Erased:
    """What an erasure did to one incident: the files it changed or deleted, why it left the
    incident alone (`skipped`), or what failed part-way (`failed`; `files` are those changed
    before it)."""

    incident_id: str
    files: list[str] = field(default_factory=list)
    skipped: str | None = None
    failed: str | None = None


def erasure_reason(reason: str) -> str:
    """The reason of an erasure, stripped; SubjectError when it is empty, longer than
    REASON_MAX or text PostgreSQL cannot keep."""
    reason = reason.strip()
    if not reason:
        msg = "reason: required (the request or objection this answers)"
        raise SubjectError(msg)
    if len(reason) > REASON_MAX:
        msg = f"reason: at most {REASON_MAX} characters (this one has {len(reason)})"
        raise SubjectError(msg)
    try:
        check_text("reason", reason)
    except QueryError as exc:
        raise SubjectError(str(exc)) from None
    return reason


def _blur_image_file(path: Path, objects: list[DetectedObject]) -> None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        msg = f"{path.name}: not an image"
        raise SubjectError(msg)
    redact.blur_people(image, objects)
    tmp = path.with_name(f".{path.name}.erasing.jpg")
    if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
        msg = f"{path.name}: could not be written"
        raise SubjectError(msg)
    tmp.replace(path)


def _blurred_frames(path: Path, tracks: files.Tracks, people: set[int] | None) -> list[np.ndarray]:
    return [
        redact.blur_people(image, _boxes(_frame_objects(tracks, i), people))
        for i, image in enumerate(media.read_frames(path))
    ]


def blur_file(path: Path, suffix: str, tracks: files.Tracks, people: set[int] | None) -> None:
    """Blur the people (None: everyone) in one evidence file, in place: a snapshot by the key
    frame's boxes, a clip or frames file frame by frame."""
    if suffix in _IMAGE_SUFFIXES:
        _blur_image_file(path, _boxes(_frame_objects(tracks, tracks.key_index), people))
    elif suffix in _CLIP_SUFFIXES:
        written = media.write_clip(_blurred_frames(path, tracks, people), tracks.fps, path)
        if written is not None and written != path:  # no ffmpeg now: never leave the old clip
            path.unlink(missing_ok=True)
    else:
        media.write_frames(_blurred_frames(path, tracks, people), tracks.fps, path)


Step = Callable[[Path, str], None]


def _change(
    log: Callable[[dict[str, Any]], None], incident_id: str, planned: list[tuple[Path, str]], step: Step
) -> Erased:
    """Apply `step` to each planned file (path, suffix); the first failure is logged and stops
    the incident."""
    changed: list[str] = []
    for path, suffix in planned:
        try:
            step(path, suffix)
        except Exception as exc:  # any failure: logged and reported, the other incidents go on
            failure = f"{path.name}: {exc}"
            log({"failed": failure, "files": changed})
            return Erased(incident_id, changed, failed=failure)
        changed.append(path.name)
    return Erased(incident_id, changed)


def _existing(root: Path, reference: str, suffixes: tuple[str, ...]) -> list[tuple[Path, str]]:
    return [(p, s) for s in suffixes for p in files.existing(root, reference, (s,))]


def _erase_incident(
    conn: Connection,
    root: Path,
    row: dict[str, Any],
    people: Mapping[str, int] | None,
    mode: Mode,
    log_as: Callable[[str, dict[str, Any]], None],
) -> Erased:
    incident_id = row["incident_id"]
    reference = snapshot_name(row["camera_id"], incident_id)
    held = Erased(incident_id, skipped="under a legal hold")
    tracks_list = None if people is None else sorted({people[incident_id]})
    said: dict[str, Any] = {"mode": mode, "track_ids": tracks_list if tracks_list is not None else "everyone"}

    def log(detail: dict[str, Any]) -> None:
        log_as(incident_id, said | detail)

    def decided(planned: list[tuple[Path, str]]) -> bool:
        """Whether the erasure goes ahead: in one transaction, the incident's row locked (a
        legal hold locks it too: the two never cross), no hold in force, and then the intent
        logged (and, for a deletion, the incident marked: the purge's sweep finishes a failure)."""
        with conn.transaction():
            lock_incident(conn, incident_id)
            if evidence_log.active_hold(conn, incident_id) is not None:
                return False
            if mode == "delete":
                mark_evidence_gone(conn, incident_id, ["snapshots", "clips"])
            log({"files": [p.name for p, _s in planned]})
        return True

    if mode == "delete":
        planned = _existing(root, reference, _DELETED)
        if not decided(planned):
            return held
        return _change(log, incident_id, planned, lambda p, _s: p.unlink(missing_ok=True))
    tracks_path = files.evidence_path(root, reference, files.TRACKS)
    if tracks_path is None or not tracks_path.is_file():
        return Erased(incident_id, skipped="no tracks file: who is where is not known")
    try:
        tracks = files.read_tracks(tracks_path)
    except ValueError:
        return Erased(incident_id, skipped="its tracks file cannot be read: who is where is not known")
    planned = _existing(root, reference, (*_IMAGE_SUFFIXES, *_CLIP_SUFFIXES, *_MJPEG_SUFFIXES))
    if not decided(planned):
        return held
    blurred = None if tracks_list is None else set(tracks_list)
    return _change(log, incident_id, planned, lambda p, s: blur_file(p, s, tracks, blurred))


def erase(
    conn: Connection,
    root: Path,
    user: User,
    scope: Scope,
    *,
    camera_id: str,
    start: datetime,
    end: datetime,
    people: Mapping[str, int] | None,
    mode: Mode,
    reason: str,
    client: str | None = None,
) -> list[Erased]:
    """Erase a person's evidence (see the module docstring): `people` is their track id per
    incident (incident id -> track id), None for everyone in the window. What was done, per
    incident. `conn` is in autocommit mode (each incident's rows are committed as written)."""
    _admin(user)
    if not conn.autocommit:
        msg = "erase needs an autocommit connection (each incident is logged before its files change)"
        raise SubjectError(msg)
    if mode not in ("blur", "delete"):
        msg = f"mode: {mode!r} is not blur or delete"
        raise SubjectError(msg)
    reason = erasure_reason(reason)
    if end <= start:
        msg = "time window: its end must be after its start"
        raise SubjectError(msg)
    rows = disclosures.camera_incidents(conn, scope, camera_id, start, end)
    if people is not None:
        unknown = sorted(set(people) - {r["incident_id"] for r in rows})
        if unknown:
            msg = f"not incidents of {camera_id} in this window: {', '.join(unknown)}"
            raise SubjectError(msg)
        rows = [r for r in rows if r["incident_id"] in people]

    def log_as(incident_id: str, detail: dict[str, Any]) -> None:
        evidence_log.record(
            conn,
            username=user.username,
            action="erase",
            incident_id=incident_id,
            client=client,
            reason=reason,
            detail=detail,
        )

    return [_erase_incident(conn, root, row, people, mode, log_as) for row in rows]
