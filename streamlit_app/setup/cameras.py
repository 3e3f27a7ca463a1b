"""Cameras and zones: what each camera sees and its zones; admins add and edit cameras and
draw zones on the camera's frame. A privacy zone (kind `privacy`) shows as the dark area it is
in every frame: the detector blacks it out before analysis (from its next start).

Every change goes through the site file's own validation (`shrinkwatch.site_file`, the code
`sites apply` uses: the same errors, with their key paths) and is applied in one transaction
(`warehouse.site_tables.apply_site_config`): a change with an error changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import yaml

from shrinkwatch.site_file import SiteConfigError, Zone, parse_site_config
from streamlit_app import auth, data, opening, text
from streamlit_app.charts import camera_view
from warehouse.camera_health import camera_status
from warehouse.site_tables import apply_site_config, load_cameras, load_zones

Corner = tuple[float, float]
KINDS = ["high_value", "entrance", "exit", "checkout", "restricted", "general", "privacy"]
PRIVACY_HELP = (
    "privacy: blacked out in every frame before it is analysed, stored or shown live; "
    "no one standing in it is tracked. Takes effect when `shrinkwatch detect` restarts."
)
GRID = 40  # clickable points across the view when drawing a zone


def apply(document: dict[str, Any], *, new_cameras: bool = False) -> bool:
    """Validate a site document like `sites apply` does, then apply it atomically (with
    `new_cameras`, a camera whose id exists is refused instead of replaced)."""
    try:
        config = parse_site_config(yaml.safe_dump(document, sort_keys=False), "this change")
        apply_site_config(data.connection(), config, new_cameras=new_cameras)
    except SiteConfigError as exc:
        st.error("  \n".join(text.markdown(line.strip()) for line in str(exc).splitlines()))
        return False
    data.cameras.clear()
    return True


def camera_document(camera_id: str, **changes: Any) -> dict[str, Any]:
    """The camera as a site-file document, with changes."""
    camera = load_cameras(data.connection(), [camera_id])[0]
    as_dict = camera.model_dump(mode="json", exclude_none=True)
    as_dict.update(changes)
    return {"cameras": [as_dict]}


def camera_list(page: opening.Opening, cameras: pd.DataFrame) -> None:
    """Every camera of the scope's stores, with its health."""
    health = camera_status(page.conn, page.scope).set_index("camera_id")
    overview = cameras.assign(
        store=[page.store_names.get(s, s) for s in cameras["store_id"]],
        health=[
            health.at[c, "status"] if c in health.index and health.at[c, "status"] else "no report"
            for c in cameras["id"]
        ],
        fps=[health.at[c, "fps_analysed"] if c in health.index else None for c in cameras["id"]],
    )
    st.dataframe(
        overview[["store", "id", "name", "location", "health", "fps"]],
        hide_index=True,
        width="stretch",
        key="camera_list",
        column_config={"fps": st.column_config.NumberColumn("analysed fps", format="%.1f")},
    )


def add_camera(page: opening.Opening) -> None:
    """Admins: a new camera (an id that exists, in any store, is refused)."""
    store_names = page.store_names
    with st.expander("Add a camera", icon=":material/add_a_photo:"), st.form("add_camera"):
        cols = st.columns(3)
        new_store = cols[0].selectbox("Store", list(page.stores["id"]), format_func=lambda s: store_names[s])
        new_id = cols[1].text_input("Camera id", placeholder="cam-entrance-2")
        new_name = cols[2].text_input("Name", placeholder="Entrance")
        new_url = st.text_input(
            "Stream URL",
            placeholder="rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.7/stream1",
            help="rtsp://, http(s):// (MJPEG), a file path or a device index; "
            "${VAR} is read from the environment",
        )
        cols = st.columns(3)
        new_fps = cols[0].number_input("Frames per second to analyse", 0.5, 30.0, 5.0, 0.5)
        new_location = cols[1].text_input("Location", placeholder="Front doors")
        new_gating = cols[2].checkbox("Motion gating", value=True)
        if st.form_submit_button("Add camera", type="primary"):
            camera = {
                "id": new_id.strip(),
                "store_id": new_store,
                "name": new_name.strip(),
                "stream_url": new_url.strip(),
                "fps": new_fps,
                "motion_gating": new_gating,
                "zones": [],
            } | ({"location": new_location.strip()} if new_location.strip() else {})
            if apply({"cameras": [camera]}, new_cameras=True):
                st.success(
                    f"Camera {text.markdown(camera['id'])} added. "
                    "Restart `shrinkwatch detect` to start reading it."
                )


def edit_camera(page: opening.Opening, camera_id: str) -> None:
    """Admins: the chosen camera's name, location, rate, stream and motion gating."""
    current = load_cameras(page.conn, [camera_id])
    if not current:
        return
    chosen_camera = current[0]
    with st.expander("Edit this camera", icon=":material/edit:"), st.form(f"edit_{camera_id}"):
        cols = st.columns(3)
        name = cols[0].text_input("Name", chosen_camera.name)
        location = cols[1].text_input("Location", chosen_camera.location or "")
        fps = cols[2].number_input("Frames per second to analyse", 0.5, 30.0, float(chosen_camera.fps), 0.5)
        url = st.text_input(
            "Stream URL", chosen_camera.stream_url, help="Stored as written: ${VAR} stays a placeholder"
        )
        gating = st.checkbox("Motion gating", value=chosen_camera.motion_gating)
        if st.form_submit_button("Save camera", type="primary"):
            changes = {
                "name": name.strip(),
                "stream_url": url.strip(),
                "fps": fps,
                "motion_gating": gating,
            }
            changes["location"] = location.strip() or None
            document = camera_document(camera_id, **changes)
            document["cameras"][0] = {k: v for k, v in document["cameras"][0].items() if v is not None}
            if apply(document):
                st.success("Camera saved. Restart its `shrinkwatch detect` to read the new settings.")


def view(
    page: opening.Opening, camera_id: str, frame: Path | None, zones: list[Zone], draft: list[Corner]
) -> None:
    """The camera's view with its zones; for admins, a grid to click a new zone's corners on."""
    figure = camera_view(frame, zones, height=460)
    if page.is_admin:
        # A grid of faint points to click: each click adds a corner to the zone being drawn.
        ticks = [i / GRID for i in range(GRID + 1)]
        figure.add_trace(
            go.Scatter(
                x=[x for x in ticks for _ in ticks],
                y=[-y for _ in ticks for y in ticks],
                mode="markers",
                marker={"size": 7, "color": "rgba(0,0,0,0.04)"},
                name="click to add a corner",
                hovertemplate="x %{x:.3f}, y %{customdata:.3f}<extra></extra>",
                customdata=[y for _ in ticks for y in ticks],
                showlegend=False,
            )
        )
        if draft:
            closed = [*draft, draft[0]] if len(draft) > 2 else draft
            figure.add_trace(
                go.Scatter(
                    x=[p[0] for p in closed],
                    y=[-p[1] for p in closed],
                    mode="lines+markers",
                    name="new zone",
                    line={"color": "#ff4b4b", "dash": "dot", "width": 3},
                    marker={"size": 9, "color": "#ff4b4b"},
                )
            )
        event: Any = st.plotly_chart(
            figure,
            on_select="rerun",
            selection_mode="points",
            key=f"view_{camera_id}_{len(draft)}",
            config={"displayModeBar": False},
        )
        points = event.selection.points if event is not None else []
        if points:
            picked = (round(float(points[0]["x"]), 3), round(-float(points[0]["y"]), 3))
            if 0 <= picked[0] <= 1 and 0 <= picked[1] <= 1 and (not draft or draft[-1] != picked):
                draft.append(picked)
                st.rerun()
    else:
        st.plotly_chart(figure, config={"displayModeBar": False})
    st.caption(
        (
            "The newest analysed frame."
            if frame is not None
            else "No frame yet: the camera is not being analysed here."
        )
        + " Coordinates are fractions of the view: x to the right, y downwards."
    )


def zone_table(page: opening.Opening, camera_id: str, zones: list[Zone]) -> None:
    """The camera's zones; admins edit them in place (validated like `sites apply`)."""
    st.subheader("Zones")
    table = pd.DataFrame(
        [
            {
                "id": z.id,
                "name": z.name,
                "kind": z.kind,
                "polygon": " ".join(f"{x:g},{y:g}" for x, y in z.polygon),
            }
            for z in zones
        ],
        columns=["id", "name", "kind", "polygon"],
    )
    if not page.is_admin:
        st.dataframe(table, hide_index=True, width="stretch")
        return
    edited = st.data_editor(
        table,
        hide_index=True,
        width="stretch",
        num_rows="dynamic",
        key=f"zones_{camera_id}",
        column_config={
            "kind": st.column_config.SelectboxColumn(options=KINDS, required=True, help=PRIVACY_HELP),
            "polygon": st.column_config.TextColumn(help="Corners as x,y pairs separated by spaces (0..1)"),
        },
    )
    if st.button("Save zones", type="primary", help="Validated like `sites apply`; all or nothing"):
        zones_doc = []
        for row in edited.to_dict("records"):
            corners: list[list[Any]] = []
            for pair in str(row.get("polygon") or "").split():
                x, _, y = pair.partition(",")
                try:
                    corners.append([float(x), float(y)])
                except ValueError:
                    corners.append([x, y])  # let the validation name it
            zones_doc.append(
                {
                    "id": row.get("id"),
                    "name": row.get("name"),
                    "kind": row.get("kind"),
                    "polygon": corners,
                }
            )
        if apply(camera_document(camera_id, zones=zones_doc)):
            st.toast("Zones saved. The flows pick them up at their next catalog refresh.")
            st.rerun()


def draw_zone(camera_id: str, zones: list[Zone], draft: list[Corner]) -> None:
    """Admins: name the zone whose corners were clicked on the view, and add it."""
    st.subheader("Draw a zone")
    if not draft:
        st.caption("Click the view to place the zone's first corner.")
    else:
        st.caption("Corners: " + " ".join(f"{x:g},{y:g}" for x, y in draft))
    form = st.columns(2)
    zone_id = form[0].text_input("Zone id", placeholder="z-razors", key=f"zone_id_{camera_id}")
    zone_name = form[1].text_input("Zone name", placeholder="Razor blades", key=f"zone_name_{camera_id}")
    zone_kind = st.selectbox("Kind", KINDS, key=f"zone_kind_{camera_id}", help=PRIVACY_HELP)
    buttons = st.columns(3)
    if buttons[0].button("Undo corner", disabled=not draft):
        draft.pop()
        st.rerun()
    if buttons[1].button("Clear", disabled=not draft):
        draft.clear()
        st.rerun()
    if buttons[2].button("Add zone", type="primary", disabled=len(draft) < 3):
        existing = [z.model_dump(mode="json") for z in zones if z.id != zone_id]
        new_zone = {
            "id": zone_id.strip(),
            "name": zone_name.strip() or zone_id.strip(),
            "kind": zone_kind,
            "polygon": [list(p) for p in draft],
        }
        if apply(camera_document(camera_id, zones=[*existing, new_zone])):
            draft.clear()
            st.toast(f"Zone {text.markdown(new_zone['id'])} added.")
            st.rerun()


def cameras_page() -> None:
    admin = auth.page().user.is_admin
    page = opening.start(
        "Cameras and zones",
        "Each camera's view and its zones. People's feet decide which zone they are in. "
        + (
            "Admins can add cameras and draw zones here."
            if not admin
            else "Draw a zone by clicking its corners on the view."
        ),
    )
    cameras = data.cameras(page.scope)
    camera_list(page, cameras)
    if admin:
        add_camera(page)
    if cameras.empty:
        st.info("No cameras yet." + (" Add one above." if admin else ""))
        st.stop()
    labels = {
        c.id: f"{page.store_names.get(c.store_id, c.store_id)} · {c.name} ({c.id})"
        for c in cameras.itertuples()
    }
    camera_id = st.selectbox("Camera", list(cameras["id"]), format_func=lambda c: labels[c])
    if admin:
        edit_camera(page, camera_id)
    zones = load_zones(page.conn, [camera_id]).get(camera_id, [])
    frame = data.live_frames({camera_id}, viewer=page.signed.user.username).get(camera_id)
    draft: list[Corner] = st.session_state.setdefault(f"draft_{camera_id}", [])
    left, right = st.columns([3, 2])
    with left:
        view(page, camera_id, frame, zones, draft)
    with right:
        zone_table(page, camera_id, zones)
        if admin:
            draw_zone(camera_id, zones, draft)


cameras_page()
