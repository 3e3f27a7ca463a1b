"""Retention: evidence is kept as long as its store says, then deleted; legal holds keep it.

One run of the purge (`shrinkwatch privacy purge`; every `privacy_purge_interval_s` under
`shrinkwatch run`) does this:

- **Incidents' evidence.** Each kind of an incident's evidence (snapshots, clips: the files
  of privacy.files.BY_KIND) goes once it is older than its store's `privacy.retention_days`
  for that kind, counted from the incident's end (else its last update), unless the incident
  is under a legal hold; held evidence goes at the first run after the hold is released. The
  files are found from the incident's camera and id (shrinkwatch.contracts.snapshot_name),
  never from a reference a message or a row carries; the tracks file goes with the last of
  the two kinds. First, in one transaction, the incident's row is locked and its hold asked
  for again (a hold placed since the due list was read keeps the evidence: counted as held;
  warehouse.evidence_log.hold locks the same row, so the two take turns), the incident is
  marked (when each kind went, the snapshot reference cleared for good) and, when it has
  files, one `purge` row is written to the evidence access log (user `retention`, with the
  kinds and how many files go); then the files are deleted. Mark first, files second: a run
  that dies between the two has logged what goes, and the next run's leftover sweep (below)
  deletes the files of a kind marked gone; so does it a file that could not be deleted (said,
  and counted as failed).
- **Live frames.** A camera's live-view frame (`SHRINKWATCH_HOME/live/<camera>.jpg`) that has
  not been rewritten for its store's `retention_days.live` days (the camera stopped) goes.
- **Leftovers.** An evidence file whose incident the warehouse does not hold goes once older
  than the longest retention of any store; a file of a kind already marked gone (written
  again after its purge) goes at once. A half-written temporary file (a name starting with a
  dot, in a camera's evidence folder or the live folder) may hold unblurred frames: it goes
  once older than a day (TEMP_DAYS; no write takes that long).
- Live frames and leftovers are logged as one `purge` row per run that deletes any (user
  `retention`, no incident, detail {live_frames, leftovers, cameras}), written before they go.
- **The access log** keeps `retention_evidence_access_days` (warehouse.evidence_log).

The run says what went in one line. A dry run deletes, marks and logs nothing, and says what
would go.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from privacy.files import BY_KIND, TRACKS, Kind, evidence_path
from shrinkwatch.contracts import snapshot_name
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import Camera, RetentionDays, Store
from warehouse.db import Connection, connect
from warehouse.evidence_log import access_log, active_hold, purge_access_log, record
from warehouse.incidents import (
    EvidenceDue,
    evidence_marks,
    evidence_past_retention,
    lock_incident,
    mark_evidence_gone,
)
from warehouse.site_tables import load_cameras, load_stores

Say = Callable[[str], None]

KINDS: tuple[Kind, ...] = ("snapshots", "clips")
RETENTION_USER = "retention"
DAY_S = 86400.0
TEMP_DAYS = 1.0  # a half-written file older than this was abandoned: no write takes a day
DRY_RUN_SAID = 50  # a dry run names this many incidents, then counts the rest


@dataclass
class PurgeResult:
    """What one run deleted (or, in a dry run, would have)."""

    dry_run: bool = False
    incidents: int = 0  # incidents whose evidence past retention went
    files: int = 0  # their files
    held: int = 0  # incidents past retention kept by a legal hold
    failed: int = 0  # files that could not be deleted (the leftover sweep tries again next run)
    live_frames: int = 0
    leftovers: int = 0
    access_rows: int = 0

    def line(self) -> str:
        """The run in one line."""
        verb = "would delete" if self.dry_run else "deleted"
        parts = [
            f"{verb} the evidence of {self.incidents} incident(s) past retention ({self.files} file(s))",
            f"{self.held} kept under a legal hold",
            f"{self.live_frames} live frame(s)",
            f"{self.leftovers} leftover file(s)",
            f"{self.access_rows} access-log row(s) past its retention",
        ]
        if self.failed:
            parts.append(f"{self.failed} file(s) not deleted (tried again next run)")
        return ("privacy purge (dry run): " if self.dry_run else "privacy purge: ") + ", ".join(parts)


# -- pure rules ----------------------------------------------------------------------------
def files_of(due: EvidenceDue) -> tuple[str, ...]:
    """The suffixes of the evidence files that go with the kinds now due: theirs, and the
    tracks file when no kind is left after them."""
    suffixes = [s for kind in KINDS if kind in due.due for s in BY_KIND[kind]]
    if set(due.due) | set(due.gone) >= set(KINDS):
        suffixes.append(TRACKS)
    return tuple(suffixes)


def longest(stores: Iterable[Store]) -> RetentionDays:
    """The longest retention of any store, per kind (the defaults when there is no store):
    what a file no store answers for is kept."""
    days = [s.privacy.retention_days for s in stores] or [RetentionDays()]
    return RetentionDays(
        snapshots=max(d.snapshots for d in days),
        clips=max(d.clips for d in days),
        live=max(d.live for d in days),
    )


def live_days(stores: Iterable[Store], cameras: Iterable[Camera]) -> dict[str, int]:
    """How many days each camera's live frame is kept once the camera stops: its store's."""
    by_store = {s.id: s.privacy.retention_days.live for s in stores}
    return {c.id: by_store[c.store_id] for c in cameras if c.store_id in by_store}


# Every suffix of an evidence file, longest first, so `.unblurred.jpg` is not read as `.jpg`.
SUFFIXES = sorted({*(s for kind in KINDS for s in BY_KIND[kind]), TRACKS}, key=len, reverse=True)


def evidence_file(name: str) -> tuple[str, str] | None:
    """(incident id, suffix) of an evidence file's name; None when it is not one."""
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) and not name.startswith("."):
            return name[: -len(suffix)], suffix
    return None


def kind_of(suffix: str) -> Kind | None:
    """The retention kind a suffix belongs to (None: the tracks file)."""
    return next((kind for kind in KINDS if suffix in BY_KIND[kind]), None)


# -- the run -------------------------------------------------------------------------------
def purge(settings: Settings, *, dry_run: bool = False, progress: Say = print) -> PurgeResult:
    """One run of the purge (see the module docstring); says what went in one line."""
    result = PurgeResult(dry_run=dry_run)
    with connect(settings.database_dsn, autocommit=True) as conn:
        stores = load_stores(conn)
        kept = longest(stores)
        _purge_incidents(conn, settings.evidence_dir(), result, progress)
        leftovers = _leftovers(conn, settings.evidence_dir(), kept)
        live = _stale_live(settings.live_dir(), live_days(stores, load_cameras(conn)), kept)
        if not dry_run and (leftovers or live):
            # Logged before they go, as the incidents' files are: one row for the run.
            record(
                conn,
                username=RETENTION_USER,
                action="purge",
                detail={
                    "live_frames": len(live),
                    "leftovers": len(leftovers),
                    "cameras": sorted({camera for camera, _path in [*leftovers, *live]}),
                },
            )
        result.leftovers = _delete(leftovers, result, progress)
        result.live_frames = _delete(live, result, progress)
        keep = timedelta(days=settings.retention_evidence_access_days)
        if dry_run:
            result.access_rows = len(access_log(conn, until=datetime.now(UTC) - keep, limit=2**62))
        else:
            result.access_rows = purge_access_log(conn, keep)
    progress(result.line())
    return result


def _purge_incidents(conn: Connection, root: Path, result: PurgeResult, progress: Say) -> None:
    result.held = len(evidence_past_retention(conn, held=True))
    for due in evidence_past_retention(conn):
        reference = snapshot_name(due.camera_id, due.incident_id)
        paths = [evidence_path(root, reference, suffix) for suffix in files_of(due)]
        if any(path is None for path in paths):
            progress(f"{reference}: its evidence would be outside {root}; left for the next run")
            result.failed += 1
            continue
        present = [p for p in paths if p is not None and p.is_file()]
        if result.dry_run:
            result.incidents += 1
            result.files += len(present)
            if result.incidents <= DRY_RUN_SAID:
                progress(f"would delete {reference} {' and '.join(due.due)}: {len(present)} file(s)")
            elif result.incidents == DRY_RUN_SAID + 1:
                progress("... (the rest are counted below)")
            continue
        # Mark and log first, then delete: a run that dies in between has said what goes, and
        # the next run's leftover sweep deletes files of a kind marked gone. The hold is asked
        # again with the row locked, in a statement of its own: it sees a hold committed since
        # the due list was read, and a hold placed now waits for this transaction.
        with conn.transaction():
            if not lock_incident(conn, due.incident_id):
                continue  # deleted from the warehouse since: the leftover sweep answers for its files
            if active_hold(conn, due.incident_id) is not None:
                result.held += 1
                continue
            mark_evidence_gone(conn, due.incident_id, due.due)
            if present:  # an incident that never had files (or seeded history) is only marked
                record(
                    conn,
                    username=RETENTION_USER,
                    action="purge",
                    incident_id=due.incident_id,
                    camera_id=due.camera_id,
                    store_id=due.store_id,
                    detail={"kinds": list(due.due), "files": len(present)},
                )
        result.incidents += 1
        for path in present:
            try:
                path.unlink(missing_ok=True)
                result.files += 1
            except OSError as exc:
                progress(f"{reference}: cannot delete {exc.filename}: {exc.strerror}; tried again next run")
                result.failed += 1


def _files(folder: Path) -> Iterator[os.DirEntry[str]]:
    """The plain files of a folder (no links), none when it is not there."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_file(follow_symlinks=False):
            yield entry


def _older_than(entry: os.DirEntry[str], days: float, now: float) -> bool:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > days * DAY_S
    except FileNotFoundError:
        return False


Found = list[tuple[str, Path]]  # (camera id, file) of what a sweep deletes


def _delete(found: Found, result: PurgeResult, progress: Say) -> int:
    """Delete the files found (in a dry run, none); how many went. One that could not be
    deleted is said and counted as failed (tried again next run)."""
    if result.dry_run:
        return len(found)
    deleted = 0
    for _camera, path in found:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            pass  # gone meanwhile
        except OSError as exc:
            progress(f"cannot delete {exc.filename}: {exc.strerror}; tried again next run")
            result.failed += 1
    return deleted


def _leftovers(conn: Connection, root: Path, keep: RetentionDays) -> Found:
    """The evidence files no incident keeps (see the module docstring), by camera folder."""
    now, days = time.time(), max(keep.snapshots, keep.clips)
    found: Found = []
    parsed_files: list[tuple[str, os.DirEntry[str], str, str]] = []  # camera, file, incident, suffix
    try:
        cameras = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return found
    for camera in cameras:
        for entry in _files(Path(camera.path)):
            parsed = evidence_file(entry.name)
            if parsed is not None:
                parsed_files.append((camera.name, entry, *parsed))
            elif entry.name.startswith(".") and _older_than(entry, TEMP_DAYS, now):
                found.append((camera.name, Path(entry.path)))  # a write that never finished
    marks = evidence_marks(conn, {incident for _c, _e, incident, _s in parsed_files})
    for camera_id, entry, incident_id, suffix in parsed_files:
        mark = marks.get(incident_id)
        if mark is None or mark.camera_id != camera_id:
            gone = _older_than(entry, days, now)  # no incident answers for it
        elif (kind := kind_of(suffix)) is not None:
            gone = kind in mark.gone  # written again after its purge
        else:
            gone = set(mark.gone) >= set(KINDS)  # the tracks of evidence that went
        if gone:
            found.append((camera_id, Path(entry.path)))
    return found


def _stale_live(folder: Path, days: dict[str, int], keep: RetentionDays) -> Found:
    """The live frames of cameras stopped longer than their store keeps them (a camera no
    store answers for: the longest `live`), and half-written ones older than TEMP_DAYS."""
    now = time.time()
    found: Found = []
    for entry in _files(folder):
        temporary = entry.name.startswith(".")  # `.<camera>.jpg.xxxxxx`, a write that never finished
        camera_id = entry.name.lstrip(".").split(".")[0]
        if _older_than(entry, TEMP_DAYS if temporary else days.get(camera_id, keep.live), now):
            found.append((camera_id, Path(entry.path)))
    return found


# -- the command ---------------------------------------------------------------------------
def run_purge_command(settings: Settings, *, dry_run: bool, schedule: bool, progress: Say) -> None:
    """`shrinkwatch privacy purge`: once, or now and every `privacy_purge_interval_s` (riding
    out a PostgreSQL outage: shrinkwatch.schedule)."""
    from shrinkwatch.schedule import run_every
    from warehouse.migrate import require_current_schema

    with connect(settings.database_dsn) as conn:
        require_current_schema(conn)

    def once() -> None:
        purge(settings, dry_run=dry_run, progress=progress)

    if schedule:
        from shrinkwatch.metrics import serve

        with serve(settings, "privacy"):  # a long-running service: its process metrics
            run_every(once, settings.privacy_purge_interval_s, "privacy purge", progress)
    else:
        once()
