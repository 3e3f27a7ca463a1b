"""Risk weights: the signal weights in force per store, how verdicts moved them, and history.

The store chosen and its weights are one fragment: another store reruns only them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from flows.behaviour.risk import Weights
from streamlit_app import auth, opening, text
from streamlit_app.data import risk_weights, weights_history


@auth.fragment
def weights(page: opening.Opening) -> None:
    """A store's weights in force beside the defaults, what moved them, and their versions."""
    store_id = st.selectbox("Store", list(page.stores["id"]))
    in_force = risk_weights().get(store_id)
    defaults = Weights()
    if in_force is None:
        st.info("No verdicts calibrated for this store yet: the default weights are in force (version 0).")
        names = sorted(defaults.values)
        table = pd.DataFrame({"signal": names, "weight": [defaults.of(n) for n in names]})
        table["default"] = table["weight"]
        table["confirmed"] = 0
        table["rejected"] = 0
    else:
        cols = st.columns(3)
        cols[0].metric("Version in force", in_force.version)
        cols[1].metric("Verdicts used", in_force.reviews)
        cols[2].metric("Computed", f"{in_force.computed_at:%Y-%m-%d %H:%M}" if in_force.computed_at else "-")
        names = sorted(in_force.weights)
        table = pd.DataFrame(
            {
                "signal": names,
                "weight": [in_force.weights[n] for n in names],
                "default": [defaults.of(n) for n in names],
                "confirmed": [in_force.evidence.get(n, {}).get("confirmed", 0) for n in names],
                "rejected": [in_force.evidence.get(n, {}).get("rejected", 0) for n in names],
            }
        )
        st.caption(
            f"Method {text.code(in_force.method)}, prior strength {in_force.prior_strength:g} verdicts."
        )
    table["change"] = table["weight"] - table["default"]
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "weight": st.column_config.ProgressColumn(
                "weight in force", min_value=0.0, max_value=1.0, format="%.2f"
            ),
            "default": st.column_config.NumberColumn(format="%.2f"),
            "change": st.column_config.NumberColumn(format="%+.2f"),
        },
    )
    history = weights_history(store_id)
    if len(history) > 1:
        st.subheader("Versions")
        st.dataframe(history, hide_index=True, width="stretch")


def weights_page() -> None:
    page = opening.start(
        "Risk weights",
        "Each incident's risk score is the sum of its signals' weight × strength. The weights are "
        "learnt per store from your confirm/reject verdicts (`shrinkwatch flows calibrate`); a "
        "signal seen in confirmed incidents gains weight, one seen in rejected incidents loses it.",
    )
    weights(page)


weights_page()
