"""Attacks on what the dashboard serves, over real HTTP and websockets against the real
server and PostgreSQL: evidence images and clips, live frames, CSV exports, Streamlit's
media store and the page websocket. A store manager of store A gets nothing of store B by
any address, and nothing at all is served once the session has ended, however it ended. A
privacy zone drawn while the server runs is black in the live frame it serves."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as websocket

from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from streamlit_app.served import valid_id
from tests.streamlit_app.conftest import TWO_STORES, sign_in
from tests.streamlit_app.test_incidents_page import recent, write
from tests.streamlit_app.test_signin_server import post_signout, running_dashboard, stream_opens
from warehouse.accounts import disable_user, set_password, update_user
from warehouse.db import connect
from warehouse.site_tables import apply_site_config

SECOND = timedelta(seconds=1)
LEEDS = {"incident": "inc-001", "camera": "cam-1"}  # store-001
BOSTON = {"incident": "inc-002", "camera": "cam-2"}  # store-002


def picture(path: Path, shade: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((48, 64, 3), shade, np.uint8))
    return path.read_bytes()


@pytest.fixture
def store_data(two_stores: Settings) -> dict[str, bytes]:
    """An incident with a snapshot and a clip in each store, and each camera's live frame."""
    files: dict[str, bytes] = {}
    for store, shade, where in (("store-001", 60, LEEDS), ("store-002", 200, BOSTON)):
        reference = f"{where['camera']}/{where['incident']}.jpg"
        files[f"{where['incident']}.jpg"] = picture(two_stores.evidence_dir() / reference, shade)
        clip = (two_stores.evidence_dir() / reference).with_suffix(".mp4")
        files[f"{where['incident']}.mp4"] = bytes(range(256)) * 40 + shade.to_bytes(1, "big")
        clip.write_bytes(files[f"{where['incident']}.mp4"])
        files[f"{where['camera']}.live"] = picture(two_stores.live_dir() / f"{where['camera']}.jpg", shade)
        number = 1 if store == "store-001" else 2
        write(
            two_stores,
            recent(number, store_id=store, camera_id=where["camera"], snapshot=reference, risk_level="high"),
        )
    return files


@pytest.fixture
def server(two_stores: Settings, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(two_stores, tmp_path) as url:
        yield url


def fetch(url: str, token: str | None, **headers: str) -> requests.Response:
    cookies = {"shrinkwatch_session": token} if token else {}
    return requests.get(url, cookies=cookies, headers=headers, allow_redirects=False, timeout=60)


def addresses(where: dict[str, str]) -> dict[str, str]:
    """Every kind of store data the server hands out, for one incident and camera."""
    return {
        "snapshot": f"/evidence/{where['incident']}/snapshot.jpg",
        "clip": f"/evidence/{where['incident']}/clip.mp4",
        "live frame": f"/camera/{where['camera']}/live.jpg",
        "export": f"/export/incidents.csv?stores={'store-001' if where is LEEDS else 'store-002'}",
    }


def exported_ids(response: requests.Response) -> list[str]:
    return [row["incident_id"] for row in csv.DictReader(io.StringIO(response.text))]


def test_a_store_manager_gets_nothing_of_another_store(
    server: str, two_stores: Settings, store_data: dict[str, bytes]
) -> None:
    mo = sign_in(two_stores, "mo", "store_manager", ("store-001",))

    own = {kind: fetch(server + path, mo) for kind, path in addresses(LEEDS).items()}
    assert {kind: r.status_code for kind, r in own.items()} == dict.fromkeys(own, 200)
    assert own["snapshot"].content == store_data["inc-001.jpg"]
    assert own["clip"].content == store_data["inc-001.mp4"]
    assert own["live frame"].headers["content-type"] == "image/jpeg"
    assert exported_ids(own["export"]) == ["inc-001"]
    assert own["export"].headers["content-disposition"].startswith("attachment;")
    assert all(r.headers["cache-control"] == "private, no-store" for r in own.values())
    part = fetch(server + addresses(LEEDS)["clip"], mo, Range="bytes=0-99")  # the video player's way
    assert part.status_code == 206 and part.content == store_data["inc-001.mp4"][:100]

    theirs = {kind: fetch(server + path, mo) for kind, path in addresses(BOSTON).items()}
    assert {k: r.status_code for k, r in theirs.items()} == {
        "snapshot": 404,
        "clip": 404,
        "live frame": 404,
        "export": 200,  # an export of another store's incidents: empty, not refused
    }
    assert exported_ids(theirs["export"]) == []
    assert exported_ids(fetch(f"{server}/export/incidents.csv", mo)) == ["inc-001"]
    # Something outside the stores reads exactly like something that does not exist.
    missing = fetch(f"{server}/evidence/inc-999/snapshot.jpg", mo)
    assert (missing.status_code, missing.text) == (theirs["snapshot"].status_code, theirs["snapshot"].text)
    assert store_data["inc-002.jpg"] not in b"".join(r.content for r in theirs.values())

    for hostile in (
        "/evidence/..%2F..%2Fetc%2Fpasswd/snapshot.jpg",
        "/evidence/inc-001/..%2F..%2Fsettings.yaml",
        "/evidence/inc-001/clip.avi",
        "/camera/..%2Fcam-2/live.jpg",
        "/evidence/inc-001%0A/snapshot.jpg",  # an id with a newline after it
        "/camera/cam-1%0A/live.jpg",
        "/media/0123456789abcdef.jpg",  # Streamlit's media store is closed to everyone
        "/_stcore/metrics",  # and its metrics, its own sign-in routes and its agent API
        "/auth/login",
        "/_stcore/agent/openapi.json",
    ):
        assert fetch(server + hostile, mo).status_code in (400, 404), (
            hostile
        )  # (400: Streamlit's own path check)
    for bad in ("levels=catastrophic", "first_day=yesterday", "min_score=lots", "store=store-002"):
        answer = fetch(f"{server}/export/incidents.csv?{bad}", mo)
        assert answer.status_code == 400 and answer.text.startswith("bad export: "), bad

    ana = sign_in(two_stores, "ana")  # an analyst sees every store
    assert all(fetch(server + p, ana).status_code == 200 for p in addresses(BOSTON).values())
    assert exported_ids(fetch(f"{server}/export/incidents.csv", ana)) == ["inc-001", "inc-002"]


def open_stream(url: str, token: str) -> ClientConnection:
    return websocket(
        url.replace("http://", "ws://") + "/_stcore/stream",
        additional_headers={"Cookie": f"shrinkwatch_session={token}"},
        open_timeout=30,
    )


def closed_by_server(stream: ClientConnection, wait_s: float = 60) -> int | None:
    """Wait for the server to close the stream; its close code (None if it stayed open)."""
    try:
        while True:
            stream.recv(timeout=wait_s)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def sign_out(url: str, token: str) -> None:
    assert post_signout(url, token, origin=url).status_code == 303


def expire(settings: Settings, user: str) -> None:
    with connect(settings.database_dsn) as conn:
        conn.execute(
            "UPDATE user_sessions SET expires_at = now() - %s WHERE username = %s",
            (timedelta(seconds=1), user),
        )


def on_database(settings: Settings, change: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with connect(settings.database_dsn) as conn:
        change(conn, *args, **kwargs)


ENDINGS: dict[str, Callable[[str, Settings, str, str], Any]] = {
    "signed out": lambda url, _s, _user, token: sign_out(url, token),
    "password changed": lambda _url, s, user, _t: on_database(s, set_password, user, "a-new-password-9"),
    "stores cut": lambda _url, s, user, _t: on_database(s, update_user, user, stores=["store-002"]),
    "account disabled": lambda _url, s, user, _t: on_database(s, disable_user, user),
    "session expired": lambda _url, s, user, _t: expire(s, user),
}


def test_nothing_is_served_after_a_session_ends_however_it_ends(
    server: str, two_stores: Settings, store_data: dict[str, bytes]
) -> None:
    for n, (ending, end) in enumerate(ENDINGS.items()):
        user = f"manager{n}"
        token = sign_in(two_stores, user, "store_manager", ("store-001",))
        links = addresses(LEEDS)  # prepared while signed in, fetched after
        assert all(fetch(server + p, token).status_code == 200 for p in links.values()), ending
        with open_stream(server, token) as stream, open_stream(server, token) as other_tab:
            end(server, two_stores, user, token)
            # Every open websocket of the session is closed by the server, "session ended".
            assert closed_by_server(stream) == 4401, ending
            assert closed_by_server(other_tab) == 4401, ending
        after = {kind: fetch(server + p, token).status_code for kind, p in links.items()}
        assert after == dict.fromkeys(links, 401), ending
        assert fetch(f"{server}/review", token, Accept="text/html").status_code == 303, ending
        assert not stream_opens(server, token), ending


def test_a_live_session_keeps_its_websocket(server: str, two_stores: Settings) -> None:
    """The watcher closes only ended sessions: another account signing out changes nothing."""
    ana, bea = sign_in(two_stores, "ana"), sign_in(two_stores, "bea")
    with open_stream(server, ana) as stream:
        sign_out(server, bea)
        assert closed_by_server(stream, wait_s=5) is None
    assert fetch(f"{server}/evidence/inc-404/snapshot.jpg", ana).status_code == 404  # still signed in


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("inc-001", True),
        ("cam-1", True),
        ("a" * 128, True),
        ("9f1c.2_b-C", True),
        ("inc-001\n", False),  # `$` of re.match lets a trailing newline through
        ("\ninc-001", False),
        ("inc 001", False),
        ("../cam-2", False),
        ("", False),
        ("a" * 129, False),
    ],
)
def test_an_id_in_an_address_is_the_whole_of_it(text: str, valid: bool) -> None:
    assert valid_id(text) is valid


def test_a_privacy_zone_drawn_while_the_server_runs_is_black_in_the_live_frame(
    server: str, two_stores: Settings, store_data: dict[str, bytes]
) -> None:
    frame = two_stores.live_dir() / "cam-2.jpg"
    cv2.imwrite(str(frame), np.full((240, 320, 3), 120, np.uint8))
    ana = sign_in(two_stores, "ana")

    def served_frame() -> np.ndarray:
        answer = fetch(f"{server}/camera/cam-2/live.jpg", ana)
        assert answer.status_code == 200
        image = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image is not None and image.shape == (240, 320)
        return image

    # The zone's inside, below its name, and a part of the frame outside every zone.
    inside, outside = np.s_[80:110, 180:300], np.s_[20:90, 20:120]
    before = served_frame()
    assert abs(before[inside].mean() - 120) < 5 and abs(before[outside].mean() - 120) < 5
    # Drawn on the Cameras page (applied as the page does), the detector not restarted.
    site = TWO_STORES.replace(
        "  - {id: cam-2, store_id: store-002, name: Door, stream_url: /dev/null}",
        """  - id: cam-2
    store_id: store-002
    name: Door
    stream_url: /dev/null
    zones:
      - {id: z-windows, name: Windows, kind: privacy,
         polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 0.5], [0.5, 0.5]]}""",
    )
    assert site != TWO_STORES
    with connect(two_stores.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(site))
    after = served_frame()
    assert after[inside].max() < 16  # black (JPEG leaves a little)
    assert abs(after[outside].mean() - 120) < 5  # the rest as it was
