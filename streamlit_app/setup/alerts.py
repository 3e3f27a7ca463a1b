"""Alert settings (admins): who hears of what, mutes, and the alerts that did not go out."""

from __future__ import annotations

import os
from datetime import time

import pandas as pd
import streamlit as st

from alerts.rules import CHANNELS, LEVELS, Recipient, problems
from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.recipients import SECRET_FIELDS, literal_secrets
from shrinkwatch.wording import incident_label
from streamlit_app import auth, data, text
from warehouse.alert_outbox import recent_problems, retry
from warehouse.alert_recipients import active_mutes, load_recipients, mute, save_recipient

signed = auth.page()
st.title("Alert settings")
if not signed.user.is_admin:
    st.warning("Only admins manage alerts.")
    st.stop()
st.caption(
    "Who is told of which incidents, by email, text, webhook or chat (Slack, Teams, ... through "
    "Apprise), and when. `shrinkwatch alerts run` sends them, once each; failures are retried and "
    "listed below. Recipients can also live in the site file (`alerts.recipients`, docs/ALERTS.md)."
)
conn = data.connection()
stores = data.stores(signed.scope)
store_names = dict(zip(stores["id"], stores["name"], strict=True))
cameras = data.cameras(signed.scope)
recipients = {r.id: r for r in load_recipients(conn, disabled_too=True)}

st.subheader("Recipients")
if recipients:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r.id,
                    "status": "enabled" if r.enabled else "disabled",
                    "name": r.name,
                    "channels": ", ".join(r.channels),
                    "stores": ", ".join(store_names.get(s, s) for s in r.stores),
                    "from level": r.min_level,
                    "types": ", ".join(map(incident_label, r.incident_types)) or "all",
                    "quiet": f"{r.quiet_start:%H:%M}-{r.quiet_end:%H:%M}"
                    if r.quiet_start and r.quiet_end
                    else "",
                    "per hour": r.max_per_hour,
                    "digest": r.digest or "",
                }
                for r in recipients.values()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No recipients yet: add the first one below.")

chosen = st.selectbox(
    "Add or edit",
    ["(new recipient)", *sorted(recipients)],
    format_func=lambda r: f"{r} (disabled)" if r in recipients and not recipients[r].enabled else r,
    key="alert_recipient",
    help="A disabled recipient is told of nothing until it is enabled again here.",
)
current = recipients.get(chosen) or Recipient(
    id="", name="", channels=("email",), stores=tuple(stores["id"][:1])
)
with st.form(f"recipient_{chosen}"):
    cols = list(st.columns(3))
    rid = cols[0].text_input("Id", current.id, disabled=chosen in recipients, placeholder="store-001-manager")
    name = cols[1].text_input("Name", current.name)
    channels = cols[2].multiselect("Channels", list(CHANNELS), list(current.channels))
    cols = list(st.columns(3))
    email = cols[0].text_input("Email", current.email or "")
    phone = cols[1].text_input("Phone (E.164)", current.phone or "", placeholder="+447700900123")
    level = cols[2].selectbox("From risk level", list(LEVELS), index=LEVELS.index(current.min_level))
    # Secrets are ${VAR} references, read from the environment when a message is sent; a value
    # stored before that (literal_secrets) is never sent to the browser: it must be replaced.
    stored = {
        name: getattr(current, name) or "" for name in SECRET_FIELDS if name not in literal_secrets(current)
    }
    cols = list(st.columns(2))
    webhook = cols[0].text_input("Webhook URL", current.webhook_url or "")
    secret = cols[1].text_input(
        "Webhook secret, as `${VAR}`", stored.get("webhook_secret", ""), placeholder="${LEEDS_HOOK_SECRET}"
    )
    apprise_url = st.text_input(
        "Apprise URL: Slack, Teams, Discord, ... (one per recipient), as `${VAR}`",
        stored.get("apprise_url", ""),
        placeholder="${LEEDS_SLACK_URL}",
    )
    if literal_secrets(current):
        st.warning(
            f"{' and '.join(literal_secrets(current))}: stored as a value from an earlier version; "
            "give it as `${VAR}` here, with VAR set in the environment, so that no secret is stored."
        )
    chosen_stores = st.multiselect(
        "Stores",
        list(stores["id"]),
        [s for s in current.stores if s in store_names],
        format_func=lambda s: store_names.get(s, s),
    )
    types = st.multiselect(
        "Incident types (none: all)",
        list(INCIDENT_TYPES),
        list(current.incident_types),
        format_func=incident_label,
    )
    cols = list(st.columns(4))
    quiet = cols[0].checkbox("Quiet hours", value=current.quiet_start is not None)
    quiet_start = cols[1].time_input("from (store time)", current.quiet_start or time(22, 0))
    quiet_end = cols[2].time_input("to", current.quiet_end or time(7, 0))
    per_hour = cols[3].number_input("At most per hour", 1, 1000, current.max_per_hour)
    cols = list(st.columns(3))
    digest = cols[0].text_input("Digest", current.digest or "", placeholder="daily 07:00 or weekly mon 07:00")
    zone = cols[1].text_input("Digest time zone", current.timezone)
    enabled = cols[2].checkbox("Enabled", value=current.enabled)
    if st.form_submit_button("Save recipient", type="primary"):
        wanted = Recipient(
            id=(current.id if chosen in recipients else rid).strip(),
            name=name.strip(),
            channels=tuple(channels),
            stores=tuple(chosen_stores),
            email=email.strip() or None,
            phone=phone.strip() or None,
            webhook_url=webhook.strip() or None,
            webhook_secret=secret.strip() or None,
            apprise_url=apprise_url.strip() or None,
            min_level=level,
            incident_types=tuple(types),
            quiet_start=quiet_start if quiet else None,
            quiet_end=quiet_end if quiet else None,
            max_per_hour=int(per_hour),
            enabled=enabled,
            digest=digest.strip() or None,
            timezone=zone.strip() or "UTC",
        )
        wrong = problems(wanted, set(store_names), os.environ)
        if chosen not in recipients and wanted.id in recipients:
            held = recipients[wanted.id]
            what = "change it" if held.enabled else "enable it again"
            state = "" if held.enabled else ", disabled"
            wrong.append(f"id: {wanted.id} exists already{state}: choose it under Add or edit to {what}")
        if wrong:
            # As text: messages quote what was typed (two ${VAR} would read as math between the dollars).
            st.error("Nothing was saved:  \n" + "  \n".join(map(text.markdown, wrong)))
        else:
            save_recipient(conn, wanted)
            st.toast(f"Saved {text.markdown(wanted.name)}")
            st.rerun()
if chosen in recipients and st.button("Send a test message", icon=":material/send:"):
    from alerts.dispatcher import send_test

    for channel, error in send_test(data.settings(), conn, recipients[chosen]):
        (st.success if error is None else st.error)(text.markdown(f"{channel}: {error or 'sent'}"))

st.subheader("Mutes")
cols = list(st.columns([2, 3, 1, 1]))
kind = cols[0].radio("Mute", ["camera", "store"], horizontal=True)
options = list(cameras["id"]) if kind == "camera" else list(stores["id"])
target = cols[1].selectbox("Which", options, format_func=lambda t: store_names.get(t, t))
minutes = cols[2].number_input("Minutes", 5, 7 * 24 * 60, 60, step=15)
if cols[3].button("Mute", icon=":material/notifications_off:") and target:
    try:
        until = mute(conn, kind, target, float(minutes), signed.user.username)
    except ValueError as exc:  # removed by someone else since this page listed it
        st.error(text.markdown(f"Not muted: {exc}"))
    else:
        st.toast(f"No alerts about {text.markdown(store_names.get(target, target))} until {until:%H:%M} UTC")
        st.rerun()
muted = active_mutes(conn)
if muted:
    st.dataframe(pd.DataFrame(muted), hide_index=True, width="stretch")

st.subheader("Alerts that did not go out")
failed = recent_problems(conn)
if not failed:
    st.caption("None: every alert so far was delivered.")
else:
    table = pd.DataFrame(failed)
    picked = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key="failed_alerts",
    )
    rows = list(picked.selection.rows) if picked is not None else []
    if st.button(f"Retry {len(rows)} selected", disabled=not rows):
        again = retry(conn, [int(table.iloc[i]["id"]) for i in rows])
        st.toast(f"{again} alert(s) will be sent again")
        st.rerun()
