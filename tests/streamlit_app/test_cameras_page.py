"""Cameras and zones: admins add cameras and draw zones, validated like `sites apply` and
applied all or nothing; everyone else only looks (AppTest, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from shrinkwatch.settings import Settings
from tests.streamlit_app.conftest import texts
from warehouse.db import connect
from warehouse.site_tables import load_zones

Open = Callable[..., AppTest]


def zones_of(settings: Settings, camera_id: str) -> dict[str, list[tuple[float, float]]]:
    with connect(settings.database_dsn) as conn:
        return {z.id: [tuple(p) for p in z.polygon] for z in load_zones(conn, [camera_id]).get(camera_id, [])}


def test_store_managers_see_their_cameras_and_change_nothing(open_page: Open, two_stores: Settings) -> None:
    at = open_page(two_stores, "setup/cameras.py", user="mo", role="store_manager", stores=("store-002",))
    assert list(at.dataframe[0].value["id"]) == ["cam-2"]
    assert not [b for b in at.button if b.label in ("Add zone", "Save zones")]
    assert not at.get("form")


def test_an_admin_adds_a_camera_only_when_it_is_valid(open_page: Open, two_stores: Settings) -> None:
    at = open_page(two_stores, "setup/cameras.py", user="root", role="admin")
    form_inputs = {t.label: t for t in reversed(at.text_input)}  # the add form's: the first of each label
    form_inputs["Camera id"].input("Cam 3!")
    form_inputs["Name"].input("Back door")
    form_inputs["Stream URL"].input("rtsp://10.0.0.9/stream1")
    next(b for b in at.button if b.label == "Add camera").click().run()
    assert "cameras[0].id" in texts(at) and "nothing was applied" in texts(at)
    with connect(two_stores.database_dsn) as conn:
        assert conn.execute("SELECT count(*) AS n FROM cameras").fetchone() == {"n": 2}
    next(t for t in at.text_input if t.label == "Camera id").input("cam-3")
    next(b for b in at.button if b.label == "Add camera").click().run()
    assert "Camera cam-3 added" in texts(at)
    with connect(two_stores.database_dsn) as conn:
        row = conn.execute("SELECT store_id, name, stream_url FROM cameras WHERE id = 'cam-3'").fetchone()
    assert row == {"store_id": "store-001", "name": "Back door", "stream_url": "rtsp://10.0.0.9/stream1"}


def test_an_admin_draws_a_zone_and_a_line_is_refused(open_page: Open, two_stores: Settings) -> None:
    at = open_page(two_stores, "setup/cameras.py", user="root", role="admin")
    assert at.selectbox[-2].value == "cam-1" or at.selectbox[0].value  # the first camera is chosen
    # Corners as clicks on the view would leave them: first three on one line.
    at.session_state["draft_cam-1"] = [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]
    at.run()
    {t.label: t for t in at.text_input}["Zone id"].input("z-door")
    at.run()
    next(b for b in at.button if b.label == "Add zone").click().run()
    assert "the polygon has no area" in texts(at)
    assert set(zones_of(two_stores, "cam-1")) == {"z-razors"}

    at.session_state["draft_cam-1"] = [(0.6, 0.1), (0.9, 0.1), (0.9, 0.4)]
    at.run()
    next(b for b in at.button if b.label == "Add zone").click().run()
    assert zones_of(two_stores, "cam-1")["z-door"] == [(0.6, 0.1), (0.9, 0.1), (0.9, 0.4)]
    assert set(zones_of(two_stores, "cam-1")) == {"z-razors", "z-door"}


def test_an_admin_edits_a_camera_and_a_bad_value_changes_nothing(
    open_page: Open, two_stores: Settings
) -> None:
    at = open_page(two_stores, "setup/cameras.py", user="root", role="admin")
    url = next(t for t in at.text_input if t.label == "Stream URL" and t.value == "/dev/null")
    url.input("rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.5/stream1")
    next(b for b in at.button if b.label == "Save camera").click().run()
    assert "Camera saved" in texts(at)
    with connect(two_stores.database_dsn) as conn:
        row = conn.execute("SELECT stream_url FROM cameras WHERE id = 'cam-1'").fetchone()
    assert row == {"stream_url": "rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.5/stream1"}
    assert zones_of(two_stores, "cam-1") == {"z-razors": [(0.0, 0.5), (0.4, 0.5), (0.4, 1.0), (0.0, 1.0)]}

    name = next(t for t in at.text_input if t.label == "Name" and t.value == "Aisle")
    name.input("")
    next(b for b in at.button if b.label == "Save camera").click().run()
    assert "cameras[0].name" in texts(at) and "nothing was applied" in texts(at)
    with connect(two_stores.database_dsn) as conn:
        assert conn.execute("SELECT name FROM cameras WHERE id = 'cam-1'").fetchone() == {"name": "Aisle"}


def cameras_and_zones(settings: Settings) -> list[dict[str, object]]:
    with connect(settings.database_dsn) as conn:
        return conn.execute(
            """SELECT c.id, c.store_id, c.name, c.stream_url, c.updated_at,
                      array(SELECT z.id FROM zones z WHERE z.camera_id = c.id ORDER BY z.id) AS zones
               FROM cameras c ORDER BY c.id"""
        ).fetchall()


def test_adding_a_camera_never_replaces_one(open_page: Open, two_stores: Settings) -> None:
    before = cameras_and_zones(two_stores)
    at = open_page(two_stores, "setup/cameras.py", user="root", role="admin")
    # cam-2 is Boston's ("Door"); the form adds to Leeds. Then cam-1, with its zone, in Leeds.
    for taken in ("cam-2", "cam-1"):
        form_inputs = {t.label: t for t in reversed(at.text_input)}
        form_inputs["Camera id"].input(taken)
        form_inputs["Name"].input("Back door")
        form_inputs["Stream URL"].input("rtsp://10.0.0.9/stream1")
        next(b for b in at.button if b.label == "Add camera").click().run()
        [error] = [e.value for e in at.error]
        said = texts(at)
        assert f"cameras[0].id: '{taken}' is taken: choose another id" in said
        assert "nothing was applied" in said and "added" not in said
        for other in ("store-002", "Boston", "Door", "Aisle", "/dev/null", "z-razors"):
            assert other not in error  # nothing about the camera that holds the id
        assert cameras_and_zones(two_stores) == before

    # A free id is added; an existing camera is still changed through its own form.
    next(t for t in at.text_input if t.label == "Camera id").input("cam-3")
    next(b for b in at.button if b.label == "Add camera").click().run()
    assert "Camera cam-3 added" in texts(at)
    name = next(t for t in at.text_input if t.label == "Name" and t.value == "Aisle")
    name.input("Aisle 2")
    next(b for b in at.button if b.label == "Save camera").click().run()
    assert "Camera saved" in texts(at)
    after = {c["id"]: (c["store_id"], c["name"], c["zones"]) for c in cameras_and_zones(two_stores)}
    assert after == {
        "cam-1": ("store-001", "Aisle 2", ["z-razors"]),
        "cam-2": ("store-002", "Door", []),
        "cam-3": ("store-001", "Back door", []),
    }


def test_a_store_manager_has_no_way_to_add_a_camera(open_page: Open, two_stores: Settings) -> None:
    before = cameras_and_zones(two_stores)
    at = open_page(two_stores, "setup/cameras.py", user="mo", role="store_manager", stores=("store-001",))
    assert list(at.dataframe[0].value["id"]) == ["cam-1"]
    assert not [b for b in at.button if b.label in ("Add camera", "Save camera", "Save zones", "Add zone")]
    assert not [t for t in at.text_input if t.label == "Camera id"]
    assert cameras_and_zones(two_stores) == before


def test_the_live_frame_drawn_on_the_page_is_a_logged_view(open_page: Open, two_stores: Settings) -> None:
    import cv2
    import numpy as np

    live = two_stores.live_dir()
    live.mkdir(parents=True, exist_ok=True)
    ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    assert ok
    for camera_id in ("cam-1", "cam-2"):
        (live / f"{camera_id}.jpg").write_bytes(jpeg.tobytes())
    at = open_page(two_stores, "setup/cameras.py", user="mo", role="store_manager", stores=("store-002",))
    at.run()  # drawn again: still one watching
    with connect(two_stores.database_dsn) as conn:
        rows = conn.execute(
            "SELECT username, action, store_id, camera_id, incident_id, detail FROM evidence_access"
        ).fetchall()
    # Only the camera of the manager's store, once; never the other store's frame.
    assert rows == [
        {
            "username": "mo",
            "action": "view",
            "store_id": "store-002",
            "camera_id": "cam-2",
            "incident_id": None,
            "detail": {"file": "live"},
        }
    ]


def test_a_privacy_zone_is_black_in_the_frame_the_page_holds(open_page: Open, two_stores: Settings) -> None:
    """A zone drawn after the camera reader started is not black in its live frame yet: the
    page blacks it out in the image it sends, not only under an overlay."""
    import base64
    import json

    import cv2
    import numpy as np

    from shrinkwatch.site_file import parse_site_config
    from tests.streamlit_app.conftest import TWO_STORES
    from warehouse.site_tables import apply_site_config

    private = TWO_STORES.replace(
        "polygon: [[0.0, 0.5], [0.4, 0.5], [0.4, 1.0], [0.0, 1.0]]}",
        "polygon: [[0.0, 0.5], [0.4, 0.5], [0.4, 1.0], [0.0, 1.0]]}\n"
        "      - {id: z-flat, name: Flat upstairs, kind: privacy,\n"
        "         polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 0.5], [0.5, 0.5]]}",
    )
    with connect(two_stores.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(private))
    live = two_stores.live_dir()
    live.mkdir(parents=True, exist_ok=True)
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 200, np.uint8))
    assert ok
    (live / "cam-1.jpg").write_bytes(jpeg.tobytes())
    at = open_page(two_stores, "setup/cameras.py", user="root", role="admin")
    source = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["images"][0]["source"]
    assert source.startswith("data:image/jpeg;base64,")
    image = cv2.imdecode(np.frombuffer(base64.b64decode(source.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3)
    assert image[4:56, 84:156].max() < 16  # the privacy zone (inside its edge): black
    assert image[64:116, 4:76].min() > 180  # the rest as it was
