"""Every access to evidence is logged, and only what may be seen is served: over real HTTP
against the real server (`shrinkwatch app`) and PostgreSQL, and the Review page under
Streamlit's AppTest. Each test reads the evidence access log back and asserts on its rows:
who, what, which incident or camera, from where, and how many. A file of a kind retention
marked purged is not served, even when it is on disk again."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psycopg
import pytest
import requests
from streamlit.testing.v1 import AppTest

from privacy import files
from shrinkwatch.contracts import snapshot_name
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.streamlit_app.conftest import TWO_STORES, sign_in, texts
from tests.streamlit_app.test_incidents_page import recent, write
from tests.streamlit_app.test_served import ENDINGS
from tests.streamlit_app.test_signin_server import running_dashboard
from warehouse import evidence_log
from warehouse.db import connect
from warehouse.incidents import mark_evidence_gone
from warehouse.site_tables import apply_site_config

Open = Callable[..., AppTest]
LEEDS = {"incident": "inc-001", "camera": "cam-1", "store": "store-001"}
BOSTON = {"incident": "inc-002", "camera": "cam-2", "store": "store-002"}
CLIP = bytes(range(256)) * 40  # 10,240 bytes: fetched in three ranges below


def picture(path: Path, shade: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((48, 64, 3), shade, np.uint8))
    return path.read_bytes()


@pytest.fixture
def evidence(two_stores: Settings) -> dict[str, bytes]:
    """An incident in each store with its evidence as the recorder lays it out (privacy.files):
    the blurred snapshot and clip, the unblurred ones; and each camera's live frame."""
    made: dict[str, bytes] = {}
    for number, (where, shade) in enumerate(((LEEDS, 60), (BOSTON, 200)), start=1):
        reference = snapshot_name(where["camera"], where["incident"])

        def path(suffix: str, reference: str = reference) -> Path:
            found = files.evidence_path(two_stores.evidence_dir(), reference, suffix)
            assert found is not None
            return found

        made[f"{where['incident']}.jpg"] = picture(path(files.SNAPSHOT), shade)
        made[f"{where['incident']}.unblurred.jpg"] = picture(path(files.UNBLURRED_SNAPSHOT), shade + 30)
        for suffix, extra in ((files.CLIP, b"b"), (files.UNBLURRED_CLIP, b"u")):
            made[where["incident"] + suffix] = CLIP + extra + shade.to_bytes(1, "big")
            path(suffix).write_bytes(made[where["incident"] + suffix])
        made[f"{where['camera']}.live"] = picture(two_stores.live_dir() / f"{where['camera']}.jpg", shade)
        write(
            two_stores,
            recent(number, store_id=where["store"], camera_id=where["camera"], snapshot=reference),
        )
    return made


@pytest.fixture
def server(two_stores: Settings, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(two_stores, tmp_path) as url:
        yield url


def fetch(url: str, token: str | None, method: str = "GET", **headers: str) -> requests.Response:
    cookies = {"shrinkwatch_session": token} if token else {}
    return requests.request(method, url, cookies=cookies, headers=headers, allow_redirects=False, timeout=60)


def logged(settings: Settings, username: str | None = None) -> list[dict[str, Any]]:
    """The evidence access log's rows (of one user), oldest first, without their time."""
    with connect(settings.database_dsn) as conn:
        rows = evidence_log.access_log(conn, usernames=[username] if username else [])
    return [
        {k: None if v is None or v != v else v for k, v in row.items() if k != "at"}  # (NaN: a missing value)
        for row in reversed(rows.to_dict("records"))
    ]


def row(user: str, action: str, where: dict[str, str], file: str, **more: Any) -> dict[str, Any]:
    """The log row expected for `user`'s access to `where`'s incident (or its camera's live frame)."""
    live = file == "live"
    return {
        "username": user,
        "action": action,
        "store_id": where["store"],
        "camera_id": where["camera"],
        "incident_id": None if live else where["incident"],
        "client": "127.0.0.1",
        "reason": None,
        "detail": {"file": file, **more},
    }


def reveal_at(settings: Settings, user: str, incident_id: str, ago: timedelta) -> None:
    """A reveal logged `ago` (an old one: the log never changes a row, so it is written so)."""
    with connect(settings.database_dsn) as conn:
        conn.execute(
            """INSERT INTO evidence_access (at, username, action, store_id, camera_id, incident_id, reason)
               SELECT now() - %s, %s, 'reveal', store_id, camera_id, incident_id, 'an old case'
               FROM incidents WHERE incident_id = %s""",
            (ago, user, incident_id),
        )


def test_each_access_to_evidence_is_one_row_saying_who_what_and_from_where(
    server: str, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    ana = sign_in(two_stores, "ana")
    base = f"{server}/evidence/inc-001"

    snapshot = fetch(f"{base}/snapshot.jpg", ana, **{"X-Forwarded-For": "6.6.6.6"})  # no proxy of ours
    assert snapshot.status_code == 200 and snapshot.content == evidence["inc-001.jpg"]
    assert "content-disposition" not in snapshot.headers
    # The video player's way: the clip in ranges. One watching, one row.
    pieces = [
        fetch(f"{base}/clip.mp4", ana, Range=r) for r in ("bytes=0-4095", "bytes=4096-8191", "bytes=8192-")
    ]
    assert [p.status_code for p in pieces] == [206, 206, 206]
    assert b"".join(p.content for p in pieces) == evidence["inc-001.mp4"]
    assert fetch(f"{base}/clip.mp4", ana, "HEAD").status_code == 200  # sends no file: not logged
    download = fetch(f"{base}/snapshot.jpg?download=1", ana)
    assert download.status_code == 200 and download.content == evidence["inc-001.jpg"]
    assert download.headers["content-disposition"] == 'attachment; filename="inc-001-snapshot.jpg"'
    for _ in range(3):  # the Live page asks every second
        live = fetch(f"{server}/camera/cam-2/live.jpg?v=1", ana)
        assert live.status_code == 200 and live.headers["content-type"] == "image/jpeg"
    assert fetch(f"{server}/export/incidents.csv", ana).status_code == 200  # no images: not evidence

    assert logged(two_stores) == [
        row("ana", "view", LEEDS, "snapshot"),
        row("ana", "view", LEEDS, "clip"),
        row("ana", "download", LEEDS, "snapshot"),
        row("ana", "view", BOSTON, "live"),
    ]


def test_the_same_account_from_another_address_is_logged_again(
    two_stores: Settings, evidence: dict[str, bytes], tmp_path: Path
) -> None:
    """A cookie stolen and used elsewhere within ten minutes of its owner's view is a row."""
    proxied = two_stores.model_copy(update={"dashboard_trusted_proxies": ["127.0.0.1"]})
    ana = sign_in(two_stores, "ana")
    snapshot = "/evidence/inc-001/snapshot.jpg"
    with running_dashboard(proxied, tmp_path) as url:
        for client in ("10.0.0.5", "10.0.0.5", "203.0.113.9", "203.0.113.9", "10.0.0.5"):
            answer = fetch(url + snapshot, ana, **{"X-Forwarded-For": client})
            assert answer.status_code == 200 and answer.content == evidence["inc-001.jpg"]
    assert logged(two_stores) == [
        {**row("ana", "view", LEEDS, "snapshot"), "client": "10.0.0.5"},
        {**row("ana", "view", LEEDS, "snapshot"), "client": "203.0.113.9"},
    ]


def test_a_kind_marked_purged_is_not_served_even_when_a_file_is_back(
    server: str, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    ana = sign_in(two_stores, "ana")
    with connect(two_stores.database_dsn) as conn:
        evidence_log.reveal(conn, "inc-001", by="ana", reason="police ref 42", minutes=30)
        # Retention deleted the clips; a clip was written again after (the files are all there).
        assert mark_evidence_gone(conn, "inc-001", ["clips"])
    base = f"{server}/evidence/inc-001"
    clips = [f"{base}/clip.mp4", f"{base}/clip.mp4?revealed=1", f"{base}/clip.mp4?download=1"]
    assert [fetch(u, ana).status_code for u in clips] == [404, 404, 404]
    kept = fetch(f"{base}/snapshot.jpg", ana)  # the snapshot was not purged
    assert kept.status_code == 200 and kept.content == evidence["inc-001.jpg"]
    assert fetch(f"{server}/evidence/inc-002/clip.mp4", ana).status_code == 200  # nor another's clip
    with connect(two_stores.database_dsn) as conn:
        # The snapshot's mark alone refuses it, whatever its reference says.
        conn.execute("UPDATE incidents SET snapshot_purged_at = now() WHERE incident_id = 'inc-001'")
    snapshots = [f"{base}/snapshot.jpg", f"{base}/snapshot.jpg?revealed=1"]
    assert [fetch(u, ana).status_code for u in snapshots] == [404, 404]
    assert [(r["action"], r["incident_id"], r["detail"]) for r in logged(two_stores)] == [
        ("reveal", "inc-001", {"minutes": 30}),
        ("view", "inc-001", {"file": "snapshot"}),
        ("view", "inc-002", {"file": "clip"}),
    ]


def test_a_store_manager_of_another_store_gets_404_and_leaves_no_row(
    server: str, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    mo = sign_in(two_stores, "mo", "store_manager", ("store-001",))
    theirs = [
        "/evidence/inc-002/snapshot.jpg",
        "/evidence/inc-002/clip.mp4",
        "/evidence/inc-002/snapshot.jpg?download=1",
        "/evidence/inc-002/clip.mp4?revealed=1",
        "/camera/cam-2/live.jpg",
        "/evidence/inc-999/snapshot.jpg",  # none such: the same answer
    ]
    assert {p: fetch(server + p, mo).status_code for p in theirs} == dict.fromkeys(theirs, 404)
    assert logged(two_stores) == []
    # A store manager cannot reveal: even a reveal in the log (not one the page would write) serves nothing.
    reveal_at(two_stores, "mo", "inc-001", timedelta(0))
    assert fetch(f"{server}/evidence/inc-001/snapshot.jpg?revealed=1", mo).status_code == 404
    own = fetch(f"{server}/evidence/inc-001/snapshot.jpg", mo)
    assert own.status_code == 200 and own.content == evidence["inc-001.jpg"]
    assert [r["action"] for r in logged(two_stores, "mo")] == ["reveal", "view"]


def test_a_revoked_session_gets_401_and_leaves_no_row(
    server: str, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    addresses = [
        "/evidence/inc-001/snapshot.jpg",
        "/evidence/inc-001/clip.mp4?revealed=1",
        "/evidence/inc-001/clip.mp4?download=1",
        "/camera/cam-1/live.jpg",
    ]
    for ending in ("signed out", "password changed"):
        user = "ana-" + ending.split()[0]
        token = sign_in(two_stores, user)
        with connect(two_stores.database_dsn) as conn:
            evidence_log.reveal(conn, "inc-001", by=user, reason="police request", minutes=30)
        ENDINGS[ending](server, two_stores, user, token)
        assert {p: fetch(server + p, token).status_code for p in addresses} == dict.fromkeys(addresses, 401)
        assert [r["action"] for r in logged(two_stores, user)] == ["reveal"], ending


def test_the_unblurred_evidence_is_served_only_while_its_viewer_has_revealed_it(
    server: str, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    ana, bob = sign_in(two_stores, "ana"), sign_in(two_stores, "bob", "admin")
    unblurred = [f"{server}/evidence/inc-001/{n}?revealed=1" for n in ("snapshot.jpg", "clip.mp4")]
    assert [fetch(u, ana).status_code for u in unblurred] == [404, 404]  # never revealed
    reveal_at(two_stores, "ana", "inc-001", timedelta(minutes=31))  # revealed, lapsed (30 minutes)
    assert [fetch(u, ana).status_code for u in unblurred] == [404, 404]
    with connect(two_stores.database_dsn) as conn:
        until = evidence_log.reveal(
            conn, "inc-001", by="ana", reason="police ref 42", minutes=30, client="cli"
        )
    assert timedelta(minutes=29) < until - datetime.now(UTC) <= timedelta(minutes=30)

    snapshot, clip = (fetch(u, ana) for u in unblurred)
    assert snapshot.content == evidence["inc-001.unblurred.jpg"] != evidence["inc-001.jpg"]
    assert clip.content == evidence["inc-001.unblurred.mp4"]
    download = fetch(unblurred[1] + "&download=1", ana)
    assert download.headers["content-disposition"] == 'attachment; filename="inc-001-clip-unblurred.mp4"'
    blurred = fetch(f"{server}/evidence/inc-001/snapshot.jpg", ana)  # a different view: its own row
    assert blurred.content == evidence["inc-001.jpg"]
    # Ana's reveal is hers alone, and of that incident alone.
    assert [fetch(u, bob).status_code for u in unblurred] == [404, 404]
    assert fetch(f"{server}/evidence/inc-002/snapshot.jpg?revealed=1", ana).status_code == 404

    assert logged(two_stores) == [
        {**row("ana", "reveal", LEEDS, "-"), "client": None, "reason": "an old case", "detail": {}},
        {
            **row("ana", "reveal", LEEDS, "-"),
            "client": "cli",
            "reason": "police ref 42",
            "detail": {"minutes": 30},
        },
        row("ana", "view", LEEDS, "snapshot", revealed=True),
        row("ana", "view", LEEDS, "clip", revealed=True),
        row("ana", "download", LEEDS, "clip", revealed=True),
        row("ana", "view", LEEDS, "snapshot"),
    ]


def test_the_access_log_refuses_to_be_changed(two_stores: Settings) -> None:
    with connect(two_stores.database_dsn) as conn:
        evidence_log.record(conn, username="ana", action="view", camera_id="cam-1", detail={"file": "live"})
        conn.commit()
        for statement in (
            "UPDATE evidence_access SET username = 'someone else'",
            "DELETE FROM evidence_access",
            "TRUNCATE evidence_access",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
            conn.rollback()
    assert [r["username"] for r in logged(two_stores)] == ["ana"]


# -- the Review page ----------------------------------------------------------------------
def review(open_page: Open, settings: Settings, user: str = "ana", **kwargs: Any) -> AppTest:
    return open_page(settings, "review/incident.py", user=user, query={"id": "inc-001"}, **kwargs)


def drawn_snapshot(at: AppTest) -> bytes:
    """The image the Review page's snapshot chart draws."""
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    source = layout["images"][0]["source"]
    assert source.startswith("data:image/jpeg;base64,")
    return base64.b64decode(source.split(",", 1)[1])


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def test_the_review_page_logs_the_snapshot_it_draws_once(
    open_page: Open, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    at = review(open_page, two_stores)
    assert drawn_snapshot(at) == evidence["inc-001.jpg"]
    at.run()  # a rerun is the same viewing
    assert logged(two_stores) == [{**row("ana", "view", LEEDS, "snapshot"), "client": "dashboard"}]
    links = {b.proto.label: b.proto.url for b in at.get("link_button")}
    assert links["Download snapshot"].endswith("/evidence/inc-001/snapshot.jpg?download=1")
    assert links["Download clip"].endswith("/evidence/inc-001/clip.mp4?download=1")
    case = next(p.proto for p in at.get("page_link") if p.proto.label == "Add to a case file")
    assert case.page.endswith("cases") and "incidents=inc-001" in case.query_string


def test_reveal_faces_needs_a_reason_is_logged_and_shows_the_unblurred_evidence(
    open_page: Open, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    at = review(open_page, two_stores)
    button(at, "Reveal faces").click().run()
    assert "Give a reason" in texts(at)
    assert [r["action"] for r in logged(two_stores)] == ["view"]
    at.text_input(key="reveal_reason_inc-001").input("  police request ref 1234 ")
    button(at, "Reveal faces").click().run()  # (a form sends its fields with its button)

    assert not at.exception, at.exception
    assert "Faces revealed to you until" in texts(at)
    assert drawn_snapshot(at) == evidence["inc-001.unblurred.jpg"]
    assert at.get("video")[0].proto.url.endswith("/evidence/inc-001/clip.mp4?revealed=1")
    assert logged(two_stores) == [
        {**row("ana", "view", LEEDS, "snapshot"), "client": "dashboard"},
        {
            **row("ana", "reveal", LEEDS, "-"),
            "client": "dashboard",
            "reason": "police request ref 1234",
            "detail": {"minutes": 30},
        },
        {**row("ana", "view", LEEDS, "snapshot", revealed=True), "client": "dashboard"},
    ]
    assert not [b for b in at.button if b.label == "Reveal faces"]


def test_a_store_manager_cannot_reveal_and_a_store_without_blur_has_nothing_to_reveal(
    open_page: Open, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    at = review(open_page, two_stores, user="mo", role="store_manager", stores=("store-001",))
    assert [b.label for b in at.button if b.label in ("Reveal faces", "Place legal hold")] == []
    assert "analysts and admins can reveal them" in texts(at)

    for suffix in (files.UNBLURRED_SNAPSHOT, files.UNBLURRED_CLIP):  # what a store without blur keeps
        found = files.evidence_path(two_stores.evidence_dir(), snapshot_name("cam-1", "inc-001"), suffix)
        assert found is not None
        found.unlink()
    at = review(open_page, two_stores)
    assert "Nothing to reveal" in texts(at)
    assert [b.label for b in at.button if b.label == "Reveal faces"] == []


def test_a_legal_hold_is_placed_and_released_with_a_reason_and_logged(
    open_page: Open, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    at = review(open_page, two_stores)
    button(at, "Place legal hold").click().run()
    assert "Give a reason" in texts(at)
    at.text_input(key="hold_reason_inc-001").input("insurance claim 5678")
    button(at, "Place legal hold").click().run()
    assert not at.exception, at.exception
    assert "**On legal hold** since" in texts(at) and "placed by ana: insurance claim 5678." in texts(at)
    with connect(two_stores.database_dsn) as conn:
        hold = evidence_log.active_hold(conn, "inc-001")
    assert hold is not None and (hold["held_by"], hold["reason"]) == ("ana", "insurance claim 5678")

    at.text_input(key="hold_reason_inc-001").input("claim settled")
    button(at, "Release hold").click().run()
    assert "On legal hold" not in texts(at)
    with connect(two_stores.database_dsn) as conn:
        assert evidence_log.active_hold(conn, "inc-001") is None
    assert [(r["action"], r["reason"], r["client"]) for r in logged(two_stores) if r["action"] != "view"] == [
        ("hold", "insurance claim 5678", "dashboard"),
        ("release", "claim settled", "dashboard"),
    ]


def test_evidence_retention_deleted_is_said_to_be_purged_with_the_day_and_the_days_kept(
    open_page: Open, two_stores: Settings, evidence: dict[str, bytes]
) -> None:
    site = TWO_STORES.replace(
        "{id: store-001, name: Leeds, timezone: Europe/London}",
        "{id: store-001, name: Leeds, timezone: Europe/London, "
        "privacy: {retention_days: {snapshots: 14, clips: 7}}}",
    )
    with connect(two_stores.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))
        for path in files.existing(
            two_stores.evidence_dir(),
            "cam-1/inc-001.jpg",
            (*files.BY_KIND["snapshots"], *files.BY_KIND["clips"]),
        ):
            path.unlink()
        # What the purge leaves (privacy.purge through warehouse.incidents.mark_evidence_gone).
        conn.execute(
            """UPDATE incidents SET snapshot = NULL, snapshot_purged_at = '2026-12-02 23:30+00',
                                    clip_purged_at = '2026-11-25 12:00+00'
               WHERE incident_id = 'inc-001'"""
        )
    shown = texts(review(open_page, two_stores))
    assert "The snapshot was purged on 02 Dec 2026 by the store's retention (14 days)." in shown
    assert "The clip was purged on 25 Nov 2026 by the store's retention (7 days)." in shown
    assert "not saved yet" not in shown
    assert logged(two_stores) == []
