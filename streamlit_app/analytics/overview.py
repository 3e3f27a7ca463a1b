"""Analytics and ROI: what happened, when, how right the signals are, and what it saves.

Everything here reads the rollups (warehouse.rollups, refreshed every few minutes), through
the query layer with the signed-in scope. The stores and days chosen decide everything
below them: the choice and what it shows are one fragment, rerun without the rest of the page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from flows.behaviour.risk import Weights
from shrinkwatch.wording import incident_label, signal_label
from streamlit_app import auth, opening, text
from warehouse.analytics import detection_quality, incident_trend, risk_patterns
from warehouse.economics import roi_by_month, set_economics
from warehouse.scope import QueryError
from warehouse.weights import weights_in_force

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def chosen_range(page: opening.Opening) -> tuple[tuple[str, ...], date, date]:
    """The stores (none: all of them) and the days to show; the page waits for a whole range."""
    names = page.store_names
    top = st.columns([3, 2])
    chosen = top[0].multiselect(
        "Stores",
        list(page.stores["id"]),
        format_func=lambda s: f"{names[s]} ({s})",
        placeholder="All your stores",
    )
    today = datetime.now(UTC).date()
    picked = top[1].date_input(
        "Days", (today - timedelta(days=29), today), max_value=today + timedelta(days=1)
    )
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Pick the last day of the range too.")
        st.stop()
    first_day, last_day = picked
    return tuple(chosen), first_day, last_day


def kpis(trend: pd.DataFrame, roi: pd.DataFrame, in_view: pd.DataFrame) -> int:
    """Incidents, verdicts and, per currency, what the system saved; returns the incidents."""
    incidents = int(trend["incidents"].sum()) if not trend.empty else 0
    confirmed = int(trend["confirmed"].sum()) if not trend.empty else 0
    rejected = int(trend["rejected"].sum()) if not trend.empty else 0
    kpi = st.columns(4)
    kpi[0].metric("Incidents", f"{incidents:,}", help="Incidents that started in the range")
    kpi[1].metric(
        "Confirmation rate",
        f"{confirmed / (confirmed + rejected):.0%}" if confirmed + rejected else "—",
        help=f"{confirmed} confirmed of {confirmed + rejected} reviewed",
    )
    kpi[2].metric("Confirmed", f"{confirmed:,}")
    kpi[3].metric("Stores", len(in_view))
    if roi.empty:
        st.caption(
            "No ROI for these months yet: set the stores' economics (in the site file, or below for admins)."
        )
    for currency_code, money in (
        roi.groupby("currency")[["prevented_loss", "monthly_cost", "net_benefit"]].sum().iterrows()
    ):
        currency = text.markdown(currency_code)
        row = st.columns(4)
        row[0].metric(
            f"Prevented loss ({currency})",
            f"{money['prevented_loss']:,.0f}",
            help="Months overlapping the range",
        )
        row[1].metric(
            f"Net benefit ({currency})", f"{money['net_benefit']:,.0f}", help="Prevented loss − cost"
        )
        row[2].metric(
            f"ROI ({currency})",
            f"{money['net_benefit'] / money['monthly_cost']:.0%}" if money["monthly_cost"] else "—",
            help="Net benefit ÷ cost",
        )
        row[3].metric(
            f"Payback ({currency})",
            f"{money['monthly_cost'] / money['prevented_loss']:.2f} months"
            if money["prevented_loss"]
            else "—",
            help="Cost ÷ prevented loss: under 1 pays for itself within the month",
        )
    return incidents


def when(trend: pd.DataFrame, pattern: pd.DataFrame) -> None:
    """Incidents per day by type, and by weekday and hour."""
    left, right = st.columns(2)
    with left:
        st.subheader("Incidents per day")
        if not trend.empty:
            chart = go.Figure(
                [
                    go.Bar(x=rows["local_day"], y=rows["incidents"], name=text.chart(incident_label(kind)))
                    for kind, rows in trend.groupby("incident_type")
                ]
            )
            chart.update_layout(barmode="stack", height=340, margin={"l": 0, "r": 0, "t": 10, "b": 0})
            st.plotly_chart(chart)
    with right:
        st.subheader("When incidents happen")
        grid = [[0] * 24 for _ in range(7)]
        for row in pattern.itertuples():
            grid[int(row.weekday)][int(row.local_hour)] = int(row.incidents)
        heat = go.Figure(
            go.Heatmap(
                z=grid,
                x=[f"{h:02d}" for h in range(24)],
                y=WEEKDAYS,
                colorscale="Reds",
                hovertemplate="%{y} %{x}:00 · %{z} incidents<extra></extra>",
            )
        )
        heat.update_layout(
            height=340, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis_title="store-local hour"
        )
        heat.update_yaxes(autorange="reversed")
        st.plotly_chart(heat)


def how_right(page: opening.Opening, quality: pd.DataFrame, selected: tuple[str, ...]) -> None:
    """How often analysts confirm what each signal flags, beside its weight now."""
    st.subheader("Detection quality")
    st.caption(
        "How often analysts confirm what each signal flags (all time), beside the weight it has in the "
        "risk score now: signals that are often rejected lose weight at the next calibration."
    )
    signals = quality[quality["signal"] != "*"].copy()
    if signals.empty:
        st.info("No verdicts yet: confirm or reject incidents on the Review page and they count here.")
        return
    weights = weights_in_force(page.conn, page.scope)
    if selected:
        weights = weights[weights["store_id"].isin(selected)]
    defaults = Weights()
    calibrated = weights.groupby("signal")["weight"].mean().to_dict() if not weights.empty else {}
    signals["weight in force"] = [calibrated.get(s, defaults.of(s)) for s in signals["signal"]]
    signals["signal"] = [signal_label(name) for name in signals["signal"]]
    signals["confirmation_rate"] = signals["confirmation_rate"] * 100
    view = signals.rename(
        columns={"confirmation_rate": "confirmation rate", "review_hours_p50": "median hours to review"}
    )[
        [
            "signal",
            "incidents",
            "reviewed",
            "confirmed",
            "rejected",
            "confirmation rate",
            "median hours to review",
            "weight in force",
        ]
    ]
    st.dataframe(
        view,
        hide_index=True,
        width="stretch",
        column_config={
            "confirmation rate": st.column_config.ProgressColumn(
                "confirmed %", min_value=0.0, max_value=100.0, format="%.0f"
            ),
            "weight in force": st.column_config.NumberColumn(format="%.2f"),
            "median hours to review": st.column_config.NumberColumn(format="%.1f"),
        },
    )


def what_it_saves(page: opening.Opening, roi: pd.DataFrame) -> None:
    """Prevented loss against cost, month by month and store by store."""
    st.subheader("Return on investment by month")
    st.caption(
        "Confirmed incidents × average loss per incident × recovery rate = prevented loss; minus the "
        "monthly cost = net benefit. The assumptions are each store's economics."
    )
    if roi.empty:
        st.info("No ROI yet for these months: set the stores' economics (below, or in the site file).")
        return
    monthly = roi.groupby(["month", "currency"], as_index=False)[["prevented_loss", "monthly_cost"]].sum()
    label = [
        text.chart(f"{m:%b %Y} · {c}") for m, c in zip(monthly["month"], monthly["currency"], strict=True)
    ]
    bars = go.Figure(
        [
            go.Bar(x=label, y=monthly["prevented_loss"], name="prevented loss", marker_color="#2e7d32"),
            go.Bar(x=label, y=monthly["monthly_cost"], name="cost", marker_color="#9e9e9e"),
        ]
    )
    bars.update_layout(barmode="group", height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(bars)
    table = roi.assign(
        store=[page.store_names.get(s, s) for s in roi["store_id"]],
        month=[f"{m:%b %Y}" for m in roi["month"]],
    )
    st.dataframe(
        table[
            [
                "store",
                "month",
                "currency",
                "confirmed",
                "prevented_loss",
                "monthly_cost",
                "net_benefit",
                "roi_pct",
                "payback_months",
            ]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "prevented_loss": st.column_config.NumberColumn("prevented loss", format="%.0f"),
            "monthly_cost": st.column_config.NumberColumn("cost", format="%.0f"),
            "net_benefit": st.column_config.NumberColumn("net benefit", format="%.0f"),
            "roi_pct": st.column_config.NumberColumn("ROI %", format="%.0f%%"),
            "payback_months": st.column_config.NumberColumn("payback (months)", format="%.2f"),
        },
    )


def assumptions(page: opening.Opening, in_view: pd.DataFrame) -> None:
    """Each store's ROI assumptions, for admins to edit (validated like the site file)."""
    with st.expander("ROI assumptions (admins)", icon=":material/payments:"):
        rows = []
        for store in in_view.itertuples():
            economics = store.economics or {}
            rows.append(
                {
                    "store": store.id,
                    "currency": economics.get("currency", "GBP"),
                    "avg_loss_per_incident": economics.get("avg_loss_per_incident"),
                    "recovery_rate": economics.get("recovery_rate"),
                    "monthly_cost": economics.get("monthly_cost"),
                }
            )
        edited = st.data_editor(
            pd.DataFrame(rows),
            hide_index=True,
            width="stretch",
            disabled=["store"],
            key="economics_editor",
            column_config={
                "currency": st.column_config.TextColumn(max_chars=3, validate=r"^[A-Z]{3}$"),
                "avg_loss_per_incident": st.column_config.NumberColumn(
                    "average loss per incident", min_value=0.0
                ),
                "recovery_rate": st.column_config.NumberColumn("recovery rate", min_value=0.0, max_value=1.0),
                "monthly_cost": st.column_config.NumberColumn("monthly cost", min_value=0.0),
            },
        )
        if st.button("Save assumptions", type="primary"):
            from pydantic import ValidationError

            from shrinkwatch.site_file import Economics

            changes, problems = {}, []
            for row in edited.to_dict("records"):
                values = {k: (None if pd.isna(v) else v) for k, v in row.items() if k != "store"}
                try:
                    changes[row["store"]] = Economics.model_validate(values).model_dump(exclude_none=True)
                except ValidationError as exc:
                    problems += [
                        f"{row['store']} {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                    ]
            if problems:
                st.error("Nothing was saved: " + " · ".join(map(text.markdown, problems)))
            else:
                for store_id, economics in changes.items():
                    set_economics(page.conn, page.scope, store_id, economics)
                st.success("Saved. ROI is re-priced at the next rollup refresh (within a few minutes).")


@auth.fragment
def analytics(page: opening.Opening) -> None:
    """The stores and days chosen, and everything the rollups say about them."""
    selected, first_day, last_day = chosen_range(page)
    in_view = page.stores[page.stores["id"].isin(selected)] if selected else page.stores
    try:
        trend = incident_trend(page.conn, page.scope, first_day, last_day, selected)
        pattern = risk_patterns(page.conn, page.scope, first_day, last_day, selected)
        quality = detection_quality(page.conn, page.scope, selected)
        roi = roi_by_month(page.conn, page.scope, first_day.replace(day=1), last_day, selected)
    except QueryError as exc:
        st.error(text.markdown(exc))
        st.stop()
    if kpis(trend, roi, in_view) == 0:
        st.info("No incidents in this range yet. Try a longer range, or wait for the next rollup refresh.")
    when(trend, pattern)
    how_right(page, quality, selected)
    what_it_saves(page, roi)
    if page.is_admin:
        assumptions(page, in_view)


def overview() -> None:
    page = opening.start(
        "Analytics",
        "Incidents, verdicts and return on investment in your stores, from the rollups (refreshed "
        "every few minutes). Days are each store's own calendar days.",
    )
    analytics(page)


overview()
