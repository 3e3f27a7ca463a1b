"""Subject access requests and erasure (docs/CASES.md): a person's own footage handed to them
with everyone else blurred whole, or their footage blurred or deleted for good. Admins only.

Finding a person: a request names a store, a camera and a time window; the evidence is that
camera's incidents overlapping the window whose raw frames (`.frames.avi`) and tracks
(`.tracks.json`) are kept (privacy.files). The admin picks the person in each incident by
its track id, on the key frame with every track's box and id drawn (`key_frame`: heads
blurred where the store blurs them, so picking someone shows no more than the stored
snapshot does).

The export (`export_request`): every frame of each chosen incident's frames file with every
other person blurred whole (privacy.redact.blur_people, keeping that track), as a clip a
browser plays, the key frame so redacted as a JPEG, a cover letter (what is included, that
others are blurred, the dates) and the manifest and SHA-256 sums of privacy.cases. Built in
memory first; then, in one transaction, the request is marked answered, the ZIP goes in the
disclosure register (kind 'access_request') and each incident gets an "access_request" row in
the access log.

Erasure or objection (`erase`): for a camera, a window and a person (a track per incident) or
everyone in it, either
- `blur`: the person (or every person) is blurred whole, irreversibly, in every image file of
  the incident's evidence: both snapshots (boxes of the key frame), both clips and the frames
  file frame by frame (boxes of that frame); each file is decoded, blurred, re-encoded and
  moved in place. Everyone else is left as they were. The tracks file keeps its boxes (no
  image), so that a later request can still be matched; it goes with the evidence's retention.
- `delete`: every file of the incident's evidence is deleted, and the incident is marked as
  having neither snapshot nor clip (warehouse.incidents.mark_evidence_gone).
An incident under a legal hold is left as it is (the hold is released first, by whoever
placed it, when erasure wins over the claim it protects) and reported as held. Each erased
incident is logged ("erase", the reason, and the mode, tracks and files in `detail`).
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from privacy import files, media, redact
from privacy.cases import Package, folder_name, sha256
from shrinkwatch import wording
from shrinkwatch.contracts import DetectedObject, snapshot_name
from shrinkwatch.errors import ShrinkwatchError
from warehouse import disclosures, evidence_log
from warehouse.db import Connection
from warehouse.incidents import mark_evidence_gone
from warehouse.scope import Scope, User

Mode = Literal["blur", "delete"]
MANIFEST_SCHEMA = "shrinkwatch.access-request-manifest/1"
_IMAGE_SUFFIXES = (files.SNAPSHOT, files.UNBLURRED_SNAPSHOT)
_CLIP_SUFFIXES = (files.CLIP, files.UNBLURRED_CLIP)
_MJPEG_SUFFIXES = (files.CLIP_FALLBACK, files.UNBLURRED_CLIP_FALLBACK, files.FRAMES)


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
    """The camera's incidents overlapping [start, end) whose frames and tracks files are kept
    (a tracks file that cannot be read counts as none), oldest first."""
    found = []
    for row in disclosures.camera_incidents(conn, scope, camera_id, start, end):
        reference = snapshot_name(row["camera_id"], row["incident_id"])
        frames = files.evidence_path(root, reference, files.FRAMES)
        tracks = files.evidence_path(root, reference, files.TRACKS)
        if frames is None or tracks is None or not frames.is_file() or not tracks.is_file():
            continue
        try:
            found.append(Evidence(row, files.read_tracks(tracks), reference))
        except ValueError:
            continue
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
    frames = media.read_frames(evidence.path(root, files.FRAMES))
    if not frames:
        msg = f"incident {evidence.incident_id}: its frames file holds no frame"
        raise SubjectError(msg)
    return frames[min(max(evidence.tracks.key_index, 0), len(frames) - 1)]


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
    """Every frame of the incident's frames file with every person but `track_id` blurred whole."""
    frames = media.read_frames(evidence.path(root, files.FRAMES))
    return [
        redact.blur_people(image, _frame_objects(evidence.tracks, i), keep=(track_id,))
        for i, image in enumerate(frames)
    ]


def _cover_letter(
    request: dict[str, Any], chosen: list[tuple[Evidence, int, int]], store_name: str, by: User, at: datetime
) -> str:
    tz = chosen[0][0].incident["store_timezone"] if chosen else None
    items = "".join(
        f"<li>{html.escape(wording.store_time(e.incident['started_at'], tz))}: "
        f"<code>incidents/{html.escape(folder_name(e.incident_id))}/</code> — a clip of {n} frames "
        "(<code>footage</code>) and its key frame (<code>key_frame.jpg</code>)</li>"
        for e, _track, n in chosen
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
    """An access request's ZIP: its name, bytes, SHA-256 and its row in the register."""

    file_name: str
    data: bytes
    sha256: str
    disclosure_id: int


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
    if request["answered_at"] is not None:
        msg = f"access request {request_id} was answered already"
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
    chosen: list[tuple[Evidence, int, int]] = []
    for incident_id, track_id in people.items():
        evidence = found.get(incident_id)
        if evidence is None:
            msg = f"incident {incident_id} is not in this request's camera and window (or keeps no frames)"
            raise SubjectError(msg)
        if track_id not in evidence.track_ids():
            msg = f"incident {incident_id}: no person with track id {track_id}"
            raise SubjectError(msg)
        frames = requester_frames(root, evidence, track_id)
        folder = f"incidents/{folder_name(incident_id)}"
        with tempfile.TemporaryDirectory(prefix="shrinkwatch-request-") as scratch:
            written = media.write_clip(frames, evidence.tracks.fps, Path(scratch) / "footage.mp4")
            if written is None:
                msg = f"incident {incident_id}: no frame to export"
                raise SubjectError(msg)
            package.add(f"{folder}/footage{written.suffix}", written.read_bytes())
        key = frames[min(max(evidence.tracks.key_index, 0), len(frames) - 1)]
        package.add(f"{folder}/key_frame.jpg", _jpeg(key))
        chosen.append((evidence, track_id, len(frames)))
    store = next(iter(chosen))[0].incident["store_name"]
    package.add("cover_letter.html", _cover_letter(request, chosen, store, user, at).encode("utf-8"))
    ids = [e.incident_id for e, _t, _n in chosen]
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
            "incidents": [{"incident_id": e.incident_id, "track_id": t} for e, t, _n in chosen],
        }
    )
    file_name = f"access-request-{request_id}-{at.astimezone(UTC):%Y%m%d-%H%M%S}.zip"
    digest = sha256(data)
    with conn.transaction():
        if not disclosures.mark_answered(conn, request_id, by=user.username):
            msg = f"access request {request_id} was answered already"
            raise SubjectError(msg)
        disclosure_id = disclosures.record_disclosure(
            conn,
            kind="access_request",
            disclosed_by=user.username,
            recipient=request["requester"],
            reason=f"subject access request {request_id}",
            incident_ids=ids,
            store_ids=[request["store_id"]],
            file_name=file_name,
            sha256=digest,
            request_id=request_id,
        )
        for evidence, track_id, _n in chosen:
            evidence_log.record(
                conn,
                username=user.username,
                action="access_request",
                incident_id=evidence.incident_id,
                client=client,
                reason=f"subject access request {request_id}",
                detail={"file": file_name, "request_id": request_id, "track_id": track_id, "sha256": digest},
            )
    return RequestAnswer(file_name, data, digest, disclosure_id)


# -- erasure and objection -------------------------------------------------------------------
@dataclass(frozen=True)
class Erased:
    """What an erasure did to one incident: the files it changed or deleted, or why it left
    the incident alone (`skipped`)."""

    incident_id: str
    files: list[str] = field(default_factory=list)
    skipped: str | None = None


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


def _blur_incident(root: Path, evidence: Evidence, people: set[int] | None) -> list[str]:
    """Blur the people (None: everyone) in every image file of one incident; the files changed."""
    tracks = evidence.tracks
    changed = []
    key_objects = _boxes(_frame_objects(tracks, tracks.key_index), people)
    for suffix in _IMAGE_SUFFIXES:
        path = evidence.path(root, suffix)
        if path.is_file():
            _blur_image_file(path, key_objects)
            changed.append(path.name)
    for suffix in _CLIP_SUFFIXES:
        path = evidence.path(root, suffix)
        if path.is_file():
            written = media.write_clip(_blurred_frames(path, tracks, people), tracks.fps, path)
            if written is not None and written != path:  # no ffmpeg now: never leave the old clip
                path.unlink(missing_ok=True)
            changed.append(path.name)
    for suffix in _MJPEG_SUFFIXES:
        path = evidence.path(root, suffix)
        if path.is_file():
            media.write_frames(_blurred_frames(path, tracks, people), tracks.fps, path)
            changed.append(path.name)
    return changed


def _delete_incident(root: Path, reference: str) -> list[str]:
    suffixes = (*files.BY_KIND["snapshots"], *files.BY_KIND["clips"], files.TRACKS)
    gone = []
    for path in files.existing(root, reference, suffixes):
        path.unlink(missing_ok=True)
        gone.append(path.name)
    return gone


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
    incident."""
    _admin(user)
    if mode not in ("blur", "delete"):
        msg = f"mode: {mode!r} is not blur or delete"
        raise SubjectError(msg)
    if not reason.strip():
        msg = "reason: required (the request or objection this answers)"
        raise SubjectError(msg)
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
    done = []
    for row in rows:
        incident_id = row["incident_id"]
        reference = snapshot_name(row["camera_id"], incident_id)
        if evidence_log.active_hold(conn, incident_id) is not None:
            done.append(Erased(incident_id, skipped="under a legal hold"))
            continue
        tracks_list = None if people is None else sorted({people[incident_id]})
        if mode == "delete":
            changed = _delete_incident(root, reference)
        else:
            tracks_path = files.evidence_path(root, reference, files.TRACKS)
            if tracks_path is None or not tracks_path.is_file():
                done.append(Erased(incident_id, skipped="no tracks file: who is where is not known"))
                continue
            evidence = Evidence(row, files.read_tracks(tracks_path), reference)
            changed = _blur_incident(root, evidence, None if tracks_list is None else set(tracks_list))
        with conn.transaction():
            if mode == "delete":
                mark_evidence_gone(conn, incident_id, ["snapshots", "clips"])
            evidence_log.record(
                conn,
                username=user.username,
                action="erase",
                incident_id=incident_id,
                client=client,
                reason=reason.strip(),
                detail={
                    "mode": mode,
                    "track_ids": tracks_list if tracks_list is not None else "everyone",
                    "files": changed,
                },
            )
        done.append(Erased(incident_id, changed))
    return done
