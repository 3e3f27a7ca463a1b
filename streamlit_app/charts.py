"""Plotly figures of a camera's view: a frame, its zones on top, optionally a heatmap.

The view is drawn in normalised image coordinates (x 0..1 to the right, y 0..1 downwards,
like the zone polygons in the site file), shown with the image's own aspect ratio. A privacy
zone is drawn as the dark area it is in every frame (blacked out, never analysed), filled
whatever else the view shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import plotly.graph_objects as go

from shrinkwatch.site_file import Zone
from shrinkwatch.wording import as_words
from streamlit_app import data, text

NEUTRAL_ASPECT = 9 / 16  # a view without a frame to show: the usual camera shape
PRIVACY_FILL = "rgba(20,20,20,0.85)"
PRIVACY_LINE = "#5c5c5c"


def camera_view(
    frame: Path | None,
    zones: Iterable[Zone],
    *,
    highlight: Iterable[str] = (),
    heat: list[list[float]] | None = None,
    heat_label: str = "seconds",
    height: int = 420,
) -> go.Figure:
    """The camera frame (or a plain background), the zones (those in `highlight` in red),
    and a heatmap of grid rows over it (cells with nothing stay see-through)."""
    figure = go.Figure()
    aspect = NEUTRAL_ASPECT
    zones = list(zones)
    if frame is not None:
        aspect = data.image_aspect(frame)
        figure.add_layout_image(
            source=data.image_data_url(frame, zones),
            xref="x",
            yref="y",
            x=0,
            y=0,
            sizex=1,
            sizey=1,
            sizing="stretch",
            layer="below",
            yanchor="top",
        )
    if heat is not None and heat and heat[0]:
        rows, columns = len(heat), len(heat[0])
        z = [[value if value > 0 else None for value in row] for row in heat]
        figure.add_trace(
            go.Heatmap(
                z=z,
                x=[(i + 0.5) / columns for i in range(columns)],
                y=[-(j + 0.5) / rows for j in range(rows)],
                colorscale="YlOrRd",
                opacity=0.6 if frame is not None else 0.9,
                colorbar={"title": {"text": heat_label, "side": "right"}, "thickness": 12},
                hovertemplate=f"%{{z:.0f}} {heat_label}<extra></extra>",
                zsmooth="best",
            )
        )
    wanted = set(highlight)
    for zone in zones:
        xs = [p[0] for p in zone.polygon] + [zone.polygon[0][0]]
        ys = [-p[1] for p in zone.polygon] + [-zone.polygon[0][1]]
        involved = zone.id in wanted
        private = zone.kind == "privacy"
        if private:
            line, fill = {"color": PRIVACY_LINE, "width": 2}, PRIVACY_FILL
        elif involved:
            line, fill = {"color": "#ff4b4b", "width": 3}, "rgba(255,75,75,0.18)"
        else:
            line, fill = {"color": "#1f77b4", "width": 2}, "rgba(31,119,180,0.08)"
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                fill="toself" if heat is None or private else "none",
                name=text.chart(f"{zone.name} ({as_words(zone.kind)})"),
                line=line,
                fillcolor=fill,
                hoverinfo="name",
            )
        )
    figure.update_xaxes(visible=False, range=[0, 1], constrain="domain")
    figure.update_yaxes(visible=False, range=[-1, 0], scaleanchor="x", scaleratio=aspect, constrain="domain")
    figure.update_layout(
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        height=height,
        legend={"orientation": "h", "y": -0.02},
        plot_bgcolor="#e9ecef" if frame is None else "rgba(0,0,0,0)",
    )
    return figure
