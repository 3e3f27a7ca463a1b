"""The retention purge on real PostgreSQL and real files: evidence past its store's retention
is deleted per kind (and only that), its incident marked and its reference cleared for good,
held evidence kept until released (a hold placed while the run goes too), a crash between
mark and delete safe to rerun, live frames, leftovers and day-old half-written files deleted
and logged as one row per run; the commands through the real CLI."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from privacy import purge as purge_module
from privacy.files import (
    CLIP,
    FRAMES,
    SNAPSHOT,
    TRACKS,
    UNBLURRED_CLIP,
    UNBLURRED_SNAPSHOT,
)
from privacy.purge import purge
from shrinkwatch import __version__
from shrinkwatch.contracts import snapshot_name
from shrinkwatch.schedule import guard
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import incident
from tests.metrics_support import metrics_base, metrics_url, try_scrape, value
from tests.support import cli_env, run_cli, spawn_cli, wait_for
from tests.tcp_proxy import TcpProxy
from warehouse.db import connect
from warehouse.evidence_log import access_log, hold
from warehouse.incidents import EvidenceDue, upsert_incidents
from warehouse.site_tables import apply_site_config

# Store A keeps snapshots 30 days and clips 1; store B keeps both 3 days and live frames 5.
SITE = """\
stores:
  - id: store-a
    name: Alpha
    timezone: Europe/London
    privacy: {retention_days: {snapshots: 30, clips: 1, live: 1}}
  - id: store-b
    name: Beta
    timezone: Europe/Paris
    privacy: {retention_days: {snapshots: 3, clips: 3, live: 5}}
cameras:
  - {id: cam-a, store_id: store-a, name: Aisle, stream_url: "synthetic://a", fps: 5, zones: []}
  - {id: cam-a2, store_id: store-a, name: Door, stream_url: "synthetic://a2", fps: 5, zones: []}
  - {id: cam-b, store_id: store-b, name: Till, stream_url: "synthetic://b", fps: 5, zones: []}
"""
STORE_OF = {"cam-a": "store-a", "cam-a2": "store-a", "cam-b": "store-b"}
ALL = (SNAPSHOT, UNBLURRED_SNAPSHOT, CLIP, UNBLURRED_CLIP, FRAMES, TRACKS)
CLIPS = (CLIP, UNBLURRED_CLIP, FRAMES)


def _site(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE, "site.yaml"))


def _incident(
    settings: Settings, incident_id: str, camera: str, days_ago: float, *, ended: bool = True
) -> None:
    """A closed incident that ended `days_ago` (or an open one last updated then), with a
    snapshot reference, and every file of its evidence."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    with connect(settings.database_dsn) as conn:
        upsert_incidents(
            conn,
            [
                incident(
                    1,
                    "closed" if ended else "open",
                    incident_id=incident_id,
                    store_id=STORE_OF[camera],
                    camera_id=camera,
                    started_at=at - timedelta(minutes=2),
                    updated_at=at,
                    ended_at=at if ended else None,
                    snapshot=snapshot_name(camera, incident_id),
                )
            ],
        )
    _evidence(settings, camera, incident_id, ALL)


def _evidence(settings: Settings, camera: str, incident_id: str, suffixes: tuple[str, ...]) -> None:
    folder = settings.evidence_dir() / camera
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in suffixes:
        (folder / f"{incident_id}{suffix}").write_bytes(b"evidence " + suffix.encode())


def _files(folder: Path) -> set[str]:
    """Every file under a folder, as `camera/name`."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _of(camera: str, incident_id: str, suffixes: tuple[str, ...]) -> set[str]:
    return {f"{camera}/{incident_id}{s}" for s in suffixes}


def _row(settings: Settings, incident_id: str) -> dict[str, Any]:
    with connect(settings.database_dsn) as conn:
        row = conn.execute(
            "SELECT snapshot, snapshot_purged_at, clip_purged_at, status, version FROM incidents "
            "WHERE incident_id = %s",
            (incident_id,),
        ).fetchone()
    assert row is not None
    return row


def _log(settings: Settings, **filters: Any) -> list[dict[str, Any]]:
    with connect(settings.database_dsn) as conn:
        frame = access_log(conn, **filters)
    frame = frame.astype(object).where(frame.notna(), None)  # nothing as None, not NaN
    return list(reversed(frame.to_dict("records")))  # oldest first


def _age(path: Path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_evidence_past_its_stores_retention_goes_per_kind(settings: Settings) -> None:
    _site(settings)
    _incident(settings, "a-2d", "cam-a", 2)  # store A: clips past (1 day), snapshots not (30)
    _incident(settings, "a-31d", "cam-a", 31)  # store A: both past
    _incident(settings, "a-2h", "cam-a", 2 / 24)  # within every retention
    _incident(settings, "b-2d", "cam-b", 2)  # store B (3 days): nothing yet, unlike store A's
    _incident(settings, "b-4d", "cam-b", 4)  # store B: both past
    _incident(settings, "b-open", "cam-b", 4, ended=False)  # still open, not updated for 4 days
    root = settings.evidence_dir()
    before = _files(root)
    said: list[str] = []

    result = purge(settings, progress=said.append)

    gone = (
        _of("cam-a", "a-2d", CLIPS)
        | _of("cam-a", "a-31d", ALL)
        | _of("cam-b", "b-4d", ALL)
        | _of("cam-b", "b-open", ALL)
    )
    assert _files(root) == before - gone
    assert (result.incidents, result.files, result.held, result.failed) == (4, 3 + 6 + 6 + 6, 0, 0)
    assert said == [result.line()]
    assert said[0].startswith(
        "privacy purge: deleted the evidence of 4 incident(s) past retention (21 file(s))"
    )

    a2d = _row(settings, "a-2d")
    assert a2d["clip_purged_at"] is not None and a2d["snapshot_purged_at"] is None
    assert a2d["snapshot"] == "cam-a/a-2d.jpg"  # the snapshot is still there to show
    for incident_id in ("a-31d", "b-4d", "b-open"):
        row = _row(settings, incident_id)
        assert row["snapshot"] is None
        assert row["snapshot_purged_at"] is not None and row["clip_purged_at"] is not None
    for incident_id in ("a-2h", "b-2d"):
        row = _row(settings, incident_id)
        assert (row["snapshot_purged_at"], row["clip_purged_at"]) == (None, None)
        assert row["snapshot"] == f"{'cam-a' if incident_id.startswith('a') else 'cam-b'}/{incident_id}.jpg"

    rows = {r["incident_id"]: r for r in _log(settings, actions=["purge"])}
    assert set(rows) == {"a-2d", "a-31d", "b-4d", "b-open"}
    assert {k: rows["a-2d"][k] for k in ("username", "store_id", "camera_id", "detail")} == {
        "username": "retention",
        "store_id": "store-a",
        "camera_id": "cam-a",
        "detail": {"kinds": ["clips"], "files": 3},
    }
    assert rows["b-4d"]["detail"] == {"kinds": ["snapshots", "clips"], "files": 6}

    # A second run finds nothing more; once store A's snapshots are past too, they go with
    # the tracks file, the clips having gone before.
    assert purge(settings, progress=said.append).incidents == 0
    with connect(settings.database_dsn) as conn:
        conn.execute("UPDATE incidents SET ended_at = now() - interval '40 days' WHERE incident_id = 'a-2d'")
    again = purge(settings, progress=said.append)
    assert (again.incidents, again.files) == (1, 3)
    assert not _of("cam-a", "a-2d", ALL) & _files(root)
    assert _log(settings, actions=["purge"], incident_id="a-2d")[-1]["detail"] == {
        "kinds": ["snapshots"],
        "files": 3,
    }


def test_a_dry_run_deletes_marks_and_logs_nothing(settings: Settings) -> None:
    _site(settings)
    _incident(settings, "b-4d", "cam-b", 4)
    abandoned = settings.evidence_dir() / "cam-b" / ".b-4d.unblurred.0a1b2c.mp4"
    abandoned.write_bytes(b"x")
    _age(abandoned, 2)
    before = _files(settings.evidence_dir())
    said: list[str] = []
    result = purge(settings, dry_run=True, progress=said.append)
    assert (result.incidents, result.files, result.leftovers) == (1, 6, 1)
    assert said == ["would delete cam-b/b-4d.jpg snapshots and clips: 6 file(s)", result.line()]
    assert said[-1].startswith("privacy purge (dry run): would delete the evidence of 1 incident(s)")
    assert _files(settings.evidence_dir()) == before
    assert _row(settings, "b-4d")["snapshot"] == "cam-b/b-4d.jpg"
    assert _log(settings) == []


def test_a_crash_between_mark_and_delete_is_safe_to_rerun(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _site(settings)
    _incident(settings, "b-4d", "cam-b", 4)
    files = _files(settings.evidence_dir())
    assert files

    def crash(*_args: Any, **_kwargs: Any) -> None:
        msg = "killed between mark and delete"
        raise RuntimeError(msg)

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(RuntimeError, match="killed"):
        purge(settings, progress=lambda _m: None)
    assert _files(settings.evidence_dir()) == files  # the files are still there ...
    row = _row(settings, "b-4d")
    assert row["snapshot"] is None and row["snapshot_purged_at"] is not None  # ... the mark is made
    logged = [{"kinds": ["snapshots", "clips"], "files": len(files)}]
    assert [r["detail"] for r in _log(settings, actions=["purge"])] == logged  # ... and logged

    monkeypatch.undo()
    result = purge(settings, progress=lambda _m: None)
    assert (result.incidents, result.leftovers, result.failed) == (0, len(files), 0)  # the sweep
    assert _files(settings.evidence_dir()) == set()
    assert [r["detail"] for r in _log(settings, actions=["purge"])] == [  # the incident logged once
        *logged,
        {"live_frames": 0, "leftovers": len(files), "cameras": ["cam-b"]},  # and the sweep's run
    ]


def test_a_hold_placed_after_the_due_list_was_read_keeps_the_evidence(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _site(settings)
    _incident(settings, "b-4d", "cam-b", 4)
    _incident(settings, "b-5d", "cam-b", 5)
    read = purge_module.evidence_past_retention
    listed: list[str] = []

    def read_then_hold(conn: Any, *, held: bool = False) -> list[EvidenceDue]:
        due = read(conn, held=held)
        if not held:  # the list the run goes through: an analyst places a hold just after
            listed.extend(d.incident_id for d in due)
            with connect(settings.database_dsn) as other:
                assert hold(other, "b-4d", by="ana", reason="police request 42")
        return due

    monkeypatch.setattr(purge_module, "evidence_past_retention", read_then_hold)
    result = purge(settings, progress=lambda _m: None)

    assert listed == ["b-5d", "b-4d"]  # b-4d was due when the list was read ...
    assert (result.incidents, result.files, result.held) == (1, 6, 1)
    assert _files(settings.evidence_dir()) == _of("cam-b", "b-4d", ALL)  # ... and is kept
    row = _row(settings, "b-4d")
    assert row["snapshot"] == "cam-b/b-4d.jpg"
    assert (row["snapshot_purged_at"], row["clip_purged_at"]) == (None, None)
    assert [(r["action"], r["incident_id"]) for r in _log(settings)] == [("hold", "b-4d"), ("purge", "b-5d")]


def test_a_replayed_incident_state_never_brings_a_purged_reference_back(settings: Settings) -> None:
    _site(settings)
    _incident(settings, "b-4d", "cam-b", 4)
    purge(settings, progress=lambda _m: None)
    at = datetime.now(UTC) - timedelta(days=4)
    newer = incident(
        2,
        "closed",
        incident_id="b-4d",
        store_id="store-b",
        camera_id="cam-b",
        started_at=at,
        updated_at=at,
        ended_at=at,
        snapshot=snapshot_name("cam-b", "b-4d"),
    )
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [newer])
    row = _row(settings, "b-4d")
    assert row["version"] == 2  # the new state was written ...
    assert row["snapshot"] is None  # ... but not the reference to a deleted file


def test_live_frames_and_leftovers_go(settings: Settings) -> None:
    _site(settings)
    live = settings.live_dir()
    live.mkdir(parents=True)
    for name, days in [
        ("cam-a.jpg", 2),  # store A keeps a stopped camera's frame 1 day
        ("cam-a2.jpg", 0),  # running
        ("cam-b.jpg", 2),  # store B keeps it 5 days
        ("cam-removed.jpg", 6),  # no store answers for it: the longest (5 days)
        ("cam-removed2.jpg", 4),
        (".cam-b.jpg.0a1b2c", 6),  # a write that never finished
        (".cam-a.jpg.1a2b3c", 2),  # so is this one: a day is enough, whatever the store keeps
        (".cam-a2.jpg.ffffff", 0.5),  # maybe still being written
    ]:
        (live / name).write_bytes(b"jpeg")
        _age(live / name, days)

    root = settings.evidence_dir()
    _incident(settings, "a-31d", "cam-a", 31)
    _incident(settings, "b-2d", "cam-b", 2)
    (root / "cam-gone").mkdir()
    leftovers = [
        ("cam-gone/x.jpg", 31),  # no such incident, older than the longest retention (30 days)
        ("cam-gone/x.tracks.json", 31),
        ("cam-gone/y.mp4", 10),  # not yet
        ("cam-a/.a-31d.jpg.0a1b2c", 31),  # a half-written file
        ("cam-b/.b-2d.unblurred.0a1b2c.mp4", 2),  # a half-written unblurred clip: a day is enough
        ("cam-a/.b-2d.jpg.0a1b2c", 0.5),  # maybe still being written
        ("cam-a/b-2d.jpg", 31),  # b-2d is an incident of cam-b, not cam-a
        ("cam-gone/notes.txt", 40),  # not evidence: not ours to delete
    ]
    for name, days in leftovers:
        (root / name).write_bytes(b"x")
        _age(root / name, days)

    result = purge(settings, progress=lambda _m: None)
    assert _files(live) == {"cam-a2.jpg", "cam-b.jpg", "cam-removed2.jpg", ".cam-a2.jpg.ffffff"}
    assert result.live_frames == 4
    assert _files(root) == {
        "cam-gone/y.mp4",
        "cam-a/.b-2d.jpg.0a1b2c",
        "cam-gone/notes.txt",
        *_of("cam-b", "b-2d", ALL),
    }
    assert (result.incidents, result.leftovers) == (1, 5)
    # What went besides the incident's evidence is one row of the access log for the run.
    run_row = {
        "username": "retention",
        "action": "purge",
        "store_id": None,
        "camera_id": None,
        "incident_id": None,
        "client": None,
        "reason": None,
        "detail": {
            "live_frames": 4,
            "leftovers": 5,
            "cameras": ["cam-a", "cam-b", "cam-gone", "cam-removed"],
        },
    }
    logged = [{k: v for k, v in r.items() if k != "at"} for r in _log(settings)]
    assert [r["incident_id"] for r in logged] == ["a-31d", None] and logged[1] == run_row

    # Evidence written again after its purge goes at the next run, whatever its age.
    _evidence(settings, "cam-a", "a-31d", (SNAPSHOT, TRACKS))
    assert purge(settings, progress=lambda _m: None).leftovers == 2
    assert not _of("cam-a", "a-31d", ALL) & _files(root)
    assert _log(settings)[-1]["detail"] == {"live_frames": 0, "leftovers": 2, "cameras": ["cam-a"]}
    # A run that deletes nothing of them logs nothing.
    assert purge(settings, progress=lambda _m: None).leftovers == 0
    assert len(_log(settings)) == 3


def test_the_access_log_keeps_its_own_retention(settings: Settings) -> None:
    _site(settings)
    with connect(settings.database_dsn) as conn:
        for days in (800, 700):  # written by the log's owner as of that day
            conn.execute(
                "INSERT INTO evidence_access (at, username, action) VALUES (now() - %s, 'ana', 'view')",
                (timedelta(days=days),),
            )
        conn.commit()
    result = purge(
        settings.model_copy(update={"retention_evidence_access_days": 730}), progress=lambda _m: None
    )
    assert result.access_rows == 1
    rows = _log(settings)
    assert len(rows) == 1 and datetime.now(UTC) - rows[0]["at"] < timedelta(days=701)


def test_the_scheduled_purge_rides_out_a_postgresql_outage(settings: Settings) -> None:
    _site(settings)
    _incident(settings, "b-4d", "cam-b", 4)
    said: list[str] = []
    with TcpProxy.before(settings.database_dsn) as proxy:
        proxied = settings.model_copy(update={"database_url": proxy.dsn(settings.database_dsn)})

        def job() -> None:
            purge(proxied, progress=said.append)

        run = guard(job, "privacy purge", said.append)
        proxy.cut()
        for _ in range(3):  # three intervals of the outage: said once, nothing deleted
            run()
        assert len(_files(settings.evidence_dir())) == 6
        proxy.restore()
        run()
    assert said[0].startswith("privacy purge: PostgreSQL is not reachable")
    assert said[1].startswith("privacy purge: deleted the evidence of 1 incident(s)")
    assert said[2].startswith("privacy purge: PostgreSQL is back after ")
    assert len(said) == 3 and _files(settings.evidence_dir()) == set()


# -- the commands ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command", [[], ["purge"], ["hold"], ["release"], ["holds"]], ids=lambda c: " ".join(c) or "privacy"
)
def test_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, ["privacy", *command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_held_evidence_is_kept_past_retention_until_released(settings: Settings, tmp_path: Path) -> None:
    _site(settings)
    _incident(settings, "b-4d", "cam-b", 4)
    _incident(settings, "b-5d", "cam-b", 5)
    env = cli_env(settings, tmp_path)

    def cli(*args: str) -> Any:
        result = run_cli(["privacy", *args], env=env)
        assert result.returncode == 0, result.stderr
        return result

    held = cli("hold", "b-4d", "--reason", "police request 42", "--by", "ana")
    assert held.stdout.strip() == "b-4d: held; its evidence is kept until the hold is released"
    again = cli("hold", "b-4d", "--reason", "twice", "--by", "bob")
    assert again.stdout.startswith("b-4d: already held by ana since ")
    table = cli("holds").stdout.splitlines()
    assert table[0].split() == ["incident", "id", "held", "by", "held", "at", "(UTC)", "reason"]
    assert len(table) == 2 and table[1].startswith("b-4d") and table[1].endswith("police request 42")

    purged = cli("purge")
    assert "deleted the evidence of 1 incident(s) past retention (6 file(s)), 1 kept under a legal hold" in (
        purged.stderr
    )
    assert _files(settings.evidence_dir()) == _of("cam-b", "b-4d", ALL)
    assert _row(settings, "b-4d")["snapshot_purged_at"] is None

    released = cli("release", "b-4d", "--reason", "case closed", "--by", "ana")
    assert released.stdout.strip() == "b-4d: released; its evidence follows its store's retention again"
    assert cli("holds").stdout.strip() == "no legal holds in force"
    history = cli("holds", "--all").stdout.splitlines()
    assert len(history) == 2 and history[1].rstrip().endswith("case closed")

    assert "deleted the evidence of 1 incident(s)" in cli("purge").stderr
    assert _files(settings.evidence_dir()) == set()
    assert [
        (r["username"], r["action"], r["incident_id"], r["client"], r["reason"]) for r in _log(settings)
    ] == [
        ("ana", "hold", "b-4d", "cli", "police request 42"),
        ("retention", "purge", "b-5d", None, None),
        ("ana", "release", "b-4d", "cli", "case closed"),
        ("retention", "purge", "b-4d", None, None),
    ]


def test_hold_and_release_refuse_what_cannot_be(settings: Settings, tmp_path: Path) -> None:
    _site(settings)
    env = cli_env(settings, tmp_path)
    unknown = run_cli(["privacy", "hold", "nope", "--reason", "x"], env=env)
    assert unknown.returncode == 2
    assert (
        "error: no incident 'nope' in the warehouse" in unknown.stderr and "Traceback" not in unknown.stderr
    )
    _incident(settings, "b-2d", "cam-b", 2)
    blank = run_cli(["privacy", "hold", "b-2d", "--reason", "  "], env=env)
    assert blank.returncode == 2 and "--reason must not be empty" in blank.stderr
    free = run_cli(["privacy", "release", "b-2d", "--reason", "x"], env=env)
    assert free.returncode == 2 and "is not under a legal hold" in free.stderr
    assert _log(settings) == []


def test_the_scheduled_purge_runs_at_once_and_stops_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    """... and, a long-running service, serves its /metrics on the privacy role's port."""
    settings = settings.model_copy(update={"metrics_port": metrics_base("privacy")})
    _site(settings)
    _incident(settings, "b-4d", "cam-b", 4)
    log = tmp_path / "purge.log"
    proc = spawn_cli(["privacy", "purge", "--schedule"], cli_env(settings, tmp_path), log)
    try:
        wait_for(lambda: "privacy purge: deleted" in log.read_text(), what="the first run")
        samples = wait_for(lambda: try_scrape(metrics_url(settings, "privacy")), what="the purge's /metrics")
        assert value(samples, "shrinkwatch_build_info", version=__version__, role="privacy") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    out = log.read_text()
    assert code == 0, out
    assert "privacy purge every 3600 s" in out
    assert "deleted the evidence of 1 incident(s) past retention (6 file(s))" in out
    assert out.rstrip().endswith("privacy purge scheduler stopped")
    assert _files(settings.evidence_dir()) == set()
