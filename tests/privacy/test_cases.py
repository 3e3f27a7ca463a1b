"""Case files (privacy.cases) on real PostgreSQL with real evidence files: what the ZIP holds
and that its sums check, what the report says, the register and the access log; and who is
refused."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from privacy import files
from privacy.cases import CaseError, build_case
from shrinkwatch import wording
from shrinkwatch.contracts import Signal
from shrinkwatch.settings import Settings
from tests.factories import T0, incident
from tests.privacy.test_subject import evidence_site, write_evidence
from warehouse.accounts import add_user
from warehouse.db import connect
from warehouse.evidence_log import access_log, hold
from warehouse.incidents import mark_evidence_gone, record_verdict, upsert_incidents
from warehouse.scope import Scope, User

ANA = User("ana", "analyst", display_name="Ana Analyst")
ALL = Scope.of("store-001", "store-002")
AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def site(settings: Settings) -> Settings:
    """The evidence site, inc-a with its evidence, reviewed, two signals and a legal hold;
    inc-x (Boston, 10:00 UTC = 05:00 there) with its evidence, unreviewed."""
    with connect(settings.database_dsn) as conn:
        evidence_site(conn)
        upsert_incidents(
            conn,
            [
                incident(
                    3,
                    "closed",
                    incident_id="inc-a",
                    ended_at=T0 + timedelta(seconds=40),
                    risk_score=0.74,
                    risk_level="high",
                    signals=[
                        Signal(name="dwell_high_value_s", value=95.0, contribution=0.41),
                        Signal(name="skipped_checkout", value=1.0, contribution=0.33),
                    ],
                )
            ],
        )
        add_user(conn, "bea", "analyst", password="correct-horse-battery")
        record_verdict(conn, ALL, "inc-a", confirmed=True, reviewer="bea", note="took two razors <b>")
        hold(conn, "inc-a", by="bea", reason="police case 41/2026")
        conn.commit()
    write_evidence(settings.evidence_dir(), "cam-1", "inc-a", T0)
    write_evidence(settings.evidence_dir(), "cam-2", "inc-x", T0)
    return settings


def unzip(data: bytes, into: Path) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    archive.extractall(into)
    return archive


def test_a_case_file_holds_the_report_the_evidence_and_sums_that_check(
    site: Settings, tmp_path: Path
) -> None:
    root = site.evidence_dir()
    with connect(site.database_dsn) as conn:
        case = build_case(
            conn,
            root,
            ANA,
            ALL,
            ["inc-a", "inc-x", "inc-a"],
            recipient="West Yorkshire Police, PC 1234",
            reason="theft reported on 28 Nov",
            client="10.0.0.9",
            now=AT,
        )
        conn.commit()
        out = tmp_path / "case"
        archive = unzip(case.data, out)
        assert sorted(archive.namelist()) == [
            "SHA256SUMS",
            "incidents/inc-a/clip.mp4",
            "incidents/inc-a/snapshot.jpg",
            "incidents/inc-x/clip.mp4",
            "incidents/inc-x/snapshot.jpg",
            "manifest.json",
            "report.html",
        ]
        # The files are the stored evidence (blurred), byte for byte.
        for incident_id, camera in (("inc-a", "cam-1"), ("inc-x", "cam-2")):
            stored = files.evidence_path(root, f"{camera}/{incident_id}.jpg", files.SNAPSHOT)
            assert stored is not None
            assert (out / f"incidents/{incident_id}/snapshot.jpg").read_bytes() == stored.read_bytes()
            assert (out / f"incidents/{incident_id}/clip.mp4").read_bytes() == stored.with_suffix(
                ".mp4"
            ).read_bytes()
        # Every sum is the file's, recomputed here and by sha256sum itself.
        manifest = json.loads((out / "manifest.json").read_text())
        listed = {f["path"]: f["sha256"] for f in manifest["files"]}
        assert set(listed) == set(archive.namelist()) - {"manifest.json", "SHA256SUMS"}
        for path, digest in listed.items():
            assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest
        sums = dict(reversed(line.split("  ", 1)) for line in (out / "SHA256SUMS").read_text().splitlines())
        assert set(sums) == set(archive.namelist()) - {"SHA256SUMS"}
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert (manifest["recipient"], manifest["exported_by"], manifest["incident_ids"]) == (
            "West Yorkshire Police, PC 1234",
            "ana",
            ["inc-a", "inc-x"],
        )

        # The register has the ZIP as it left, and the access log one export per incident.
        [row] = conn.execute("SELECT * FROM disclosures").fetchall()
        assert (row["kind"], row["disclosed_by"], row["recipient"], row["reason"]) == (
            "case",
            "ana",
            "West Yorkshire Police, PC 1234",
            "theft reported on 28 Nov",
        )
        assert (row["incident_ids"], row["store_ids"]) == (["inc-a", "inc-x"], ["store-001", "store-002"])
        assert row["sha256"] == hashlib.sha256(case.data).hexdigest() == case.sha256
        assert row["file_name"] == case.file_name == "case-20261202-093000-2.zip"
        log = access_log(conn, actions=["export"]).sort_values("incident_id")
        assert list(log["action"]) == ["export", "export"]
        assert list(log["incident_id"]) == ["inc-a", "inc-x"]
        assert list(log["store_id"]) == ["store-001", "store-002"]
        assert set(log["client"]) == {"10.0.0.9"} and set(log["reason"]) == {"theft reported on 28 Nov"}
        assert log["detail"].iloc[0]["files"] == ["clip.mp4", "snapshot.jpg"]


def test_the_report_tells_the_story_on_the_stores_clocks(site: Settings, tmp_path: Path) -> None:
    with connect(site.database_dsn) as conn:
        case = build_case(
            conn,
            site.evidence_dir(),
            ANA,
            ALL,
            ["inc-a", "inc-x"],
            recipient="Insurer",
            reason="claim 77",
            now=AT,
        )
        report = zipfile.ZipFile(io.BytesIO(case.data)).read("report.html").decode()
    text = re.sub(r"\s+", " ", report)
    # Who, to whom, why, when.
    assert (
        "Ana Analyst" in text
        and "Insurer" in text
        and "claim 77" in text
        and "02 Dec 2026 09:30:00 UTC" in text
    )
    # Timelines in each store's time: Leeds is on UTC in November, Boston five hours behind.
    assert "28 Nov 2026 10:00:00 (Europe/London)</td><td>started (first seen)" in text
    assert "28 Nov 2026 10:00:40 (Europe/London)</td><td>ended" in text
    assert "28 Nov 2026 05:00:00 (America/New_York)</td><td>started (first seen)" in text
    assert wording.store_time(T0 + timedelta(seconds=2), "America/New_York") in text  # its last update
    # What, where, the verdict and reviewer (the note as text, never as markup), the hold.
    assert (
        "Loitering high value" in text
        and "Leeds" in text
        and "Boston" in text
        and "<code>cam-2</code>" in text
    )
    assert "<b>Confirmed</b> by bea" in text and "took two razors &lt;b&gt;" in text
    assert "legal hold by bea" in text and "police case 41/2026" in text
    assert "Not reviewed yet." in text
    # The signals and how they make the score.
    assert "<td>dwell high value</td><td>95</td><td><b>+0.41</b></td>" in text
    assert "<td>skipped checkout</td><td>1</td><td><b>+0.33</b></td>" in text
    assert "<b>0.74</b>" in text and "weight × strength" in text
    # Self-contained: the snapshots inline, nothing fetched from anywhere.
    assert text.count("src='data:image/jpeg;base64,") == 2
    assert (
        not re.search(r"""(src|href)=["'](https?:)?//""", text)
        and "<link" not in text
        and "@import" not in text
    )


def test_unblurred_files_go_only_when_asked_and_are_logged_as_a_reveal(site: Settings) -> None:
    with connect(site.database_dsn) as conn:
        case = build_case(
            conn,
            site.evidence_dir(),
            ANA,
            ALL,
            ["inc-a"],
            recipient="Insurer",
            reason="claim 77",
            include_unblurred=True,
        )
        conn.commit()
        names = sorted(zipfile.ZipFile(io.BytesIO(case.data)).namelist())
        assert (
            "incidents/inc-a/snapshot.unblurred.jpg" in names
            and "incidents/inc-a/clip.unblurred.mp4" in names
        )
        log = access_log(conn, actions=["export", "reveal"])
        assert sorted(log["action"]) == ["export", "reveal"]
        assert set(log["incident_id"]) == {"inc-a"} and set(log["reason"]) == {"claim 77"}


@pytest.mark.parametrize(
    ("user", "scope", "ids", "recipient", "reason", "refusal"),
    [
        (
            User("mo", "store_manager", ("store-001",)),
            Scope.of("store-001"),
            ["inc-a"],
            "P",
            "R",
            "analysts and admins",
        ),
        (ANA, Scope.of("store-001"), ["inc-a", "inc-x"], "P", "R", "no such incident in your stores: inc-x"),
        (ANA, ALL, ["inc-a", "inc-nope"], "P", "R", "no such incident in your stores: inc-nope"),
        (ANA, ALL, ["inc-a"], " ", "R", "to whom: required"),
        (ANA, ALL, ["inc-a"], "P", "", "why: required"),
        (ANA, ALL, [], "P", "R", "no incident chosen"),
    ],
)
def test_refused_case_files_leave_nothing_behind(
    site: Settings, user: User, scope: Scope, ids: list[str], recipient: str, reason: str, refusal: str
) -> None:
    with connect(site.database_dsn) as conn:
        with pytest.raises(CaseError, match=re.escape(refusal)):
            build_case(conn, site.evidence_dir(), user, scope, ids, recipient=recipient, reason=reason)
        conn.commit()
        assert conn.execute("SELECT count(*) AS n FROM disclosures").fetchone()["n"] == 0
        assert set(access_log(conn)["action"]) <= {"hold"}  # only the fixture's hold


def test_an_incident_without_evidence_is_still_reported(site: Settings) -> None:
    with connect(site.database_dsn) as conn:
        case = build_case(conn, site.evidence_dir(), ANA, ALL, ["inc-c"], recipient="P", reason="R")
        archive = zipfile.ZipFile(io.BytesIO(case.data))
        assert sorted(archive.namelist()) == ["SHA256SUMS", "manifest.json", "report.html"]
        assert "No snapshot is kept for this incident." in archive.read("report.html").decode()


@pytest.mark.parametrize(
    ("gone", "left"),
    [
        (["clips"], ["snapshot.jpg", "snapshot.unblurred.jpg"]),
        (["snapshots"], ["clip.mp4", "clip.unblurred.mp4"]),
        (["snapshots", "clips"], []),
    ],
)
def test_a_kind_marked_deleted_is_never_exported_even_if_its_files_are_back(
    site: Settings, gone: list[str], left: list[str]
) -> None:
    # The purge (or an erasure) marked it; a file of it written again since (a detector that
    # wrote late) is not evidence to hand over: the purge's next sweep deletes it.
    with connect(site.database_dsn) as conn:
        mark_evidence_gone(conn, "inc-x", gone)
        conn.commit()
        case = build_case(
            conn,
            site.evidence_dir(),
            ANA,
            ALL,
            ["inc-x"],
            recipient="Insurer",
            reason="claim 77",
            include_unblurred=True,
        )
        conn.commit()
        names = zipfile.ZipFile(io.BytesIO(case.data)).namelist()
        assert sorted(n.removeprefix("incidents/inc-x/") for n in names if n.startswith("incidents/")) == left
        [row] = access_log(conn, actions=["export"]).to_dict("records")
        assert row["detail"]["files"] == left
    report = zipfile.ZipFile(io.BytesIO(case.data)).read("report.html").decode()
    assert ("No snapshot is kept for this incident." in report) == ("snapshots" in gone)
    assert all((site.evidence_dir() / "cam-2" / f"inc-x{s}").exists() for s in (".jpg", ".mp4"))
