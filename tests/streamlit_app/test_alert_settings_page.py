"""Alert settings: admins add recipients (checked field by field, nothing saved when wrong),
mute a camera, and see and retry what did not go out; nobody else reaches the page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from psycopg.types.json import Jsonb
from streamlit.testing.v1 import AppTest

from alerts.rules import Recipient
from shrinkwatch.settings import Settings
from tests.streamlit_app.conftest import texts
from warehouse.alert_recipients import load_recipients, save_recipient
from warehouse.db import connect

Open = Callable[..., AppTest]


def field(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in [*at.text_input, *at.multiselect] if w.label == label)


def test_only_admins_reach_it(open_page: Open, two_stores: Settings) -> None:
    # Not even registered as a page for anyone else (its address leads nowhere).
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_page(two_stores, "setup/alerts.py", user="mo", role="store_manager", stores=("store-001",))


def test_an_admin_adds_a_recipient_only_when_it_is_right(open_page: Open, two_stores: Settings) -> None:
    at = open_page(two_stores, "setup/alerts.py", user="root", role="admin")
    assert at.title[0].value == "Alert settings"
    field(at, "Id").input("leeds-manager")
    field(at, "Name").input("Leeds manager")
    field(at, "Channels").set_value(["email", "sms"])
    field(at, "Phone (E.164)").input("07700 900123")
    next(b for b in at.button if b.label == "Save recipient").click().run()
    said = texts(at)
    assert "Nothing was saved" in said
    assert "email: an address is needed" in said and "phone: an E.164 number" in said
    with connect(two_stores.database_dsn) as conn:
        assert load_recipients(conn) == []

    field(at, "Email").input("manager@leeds.example")
    field(at, "Phone (E.164)").input("+447700900123")
    next(b for b in at.button if b.label == "Save recipient").click().run()
    with connect(two_stores.database_dsn) as conn:
        [saved] = load_recipients(conn)
    assert (saved.id, saved.channels, saved.stores, saved.phone) == (
        "leeds-manager",
        ("email", "sms"),
        ("store-001",),
        "+447700900123",
    )


def test_mute_and_retry(open_page: Open, two_stores: Settings) -> None:
    with connect(two_stores.database_dsn) as conn:
        save_recipient(
            conn,
            Recipient(
                id="ana", name="Ana", email="ana@example.com", channels=("email",), stores=("store-001",)
            ),
        )
        conn.execute(
            """INSERT INTO alert_outbox (subject, recipient_id, channel, reason, payload, status, attempts,
                   last_error)
               VALUES ('i1', 'ana', 'email', 'new', %s, 'failed', 8, 'SMTP 550: mailbox unavailable')""",
            (Jsonb({}),),
        )
        conn.commit()
    at = open_page(two_stores, "setup/alerts.py", user="root", role="admin")
    failed = at.dataframe[-1].value
    assert list(failed["last_error"]) == ["SMTP 550: mailbox unavailable"]
    next(b for b in at.button if b.label == "Mute").click().run()
    with connect(two_stores.database_dsn) as conn:
        mutes = conn.execute("SELECT kind, target, muted_by FROM alert_mutes").fetchall()
    assert mutes == [{"kind": "camera", "target": "cam-1", "muted_by": "root"}]


def test_a_disabled_recipient_is_listed_and_enabled_again(open_page: Open, two_stores: Settings) -> None:
    with connect(two_stores.database_dsn) as conn:
        for rid, enabled in (("leeds-manager", False), ("boston-manager", True)):
            save_recipient(
                conn,
                Recipient(
                    id=rid,
                    name=rid.replace("-", " ").capitalize(),
                    email=f"{rid}@example.com",
                    channels=("email",),
                    stores=("store-001",),
                    enabled=enabled,
                ),
            )
    at = open_page(two_stores, "setup/alerts.py", user="root", role="admin")
    listed = at.dataframe[0].value
    assert dict(zip(listed["id"], listed["status"], strict=True)) == {
        "boston-manager": "enabled",
        "leeds-manager": "disabled",
    }
    chooser = next(s for s in at.selectbox if s.label == "Add or edit")
    assert [chooser.format_func(o) for o in chooser.options] == [
        "(new recipient)",
        "boston-manager",
        "leeds-manager (disabled)",
    ]

    # Adding an id that exists, disabled or not, says so and changes nothing.
    for rid, said in (
        (
            "leeds-manager",
            "id: leeds-manager exists already, disabled: choose it under Add or edit to enable it again",
        ),
        ("boston-manager", "id: boston-manager exists already: choose it under Add or edit to change it"),
    ):
        field(at, "Id").input(rid)
        field(at, "Name").input("Someone else")
        field(at, "Email").input("someone@example.com")
        next(b for b in at.button if b.label == "Save recipient").click().run()
        assert "Nothing was saved" in texts(at) and said in texts(at)
    with connect(two_stores.database_dsn) as conn:
        rows = conn.execute("SELECT id, name, email, enabled FROM alert_recipients ORDER BY id").fetchall()
    assert [(r["id"], r["name"], r["enabled"]) for r in rows] == [
        ("boston-manager", "Boston manager", True),
        ("leeds-manager", "Leeds manager", False),
    ]

    # The disabled one is edited and enabled again through its own form.
    next(s for s in at.selectbox if s.label == "Add or edit").set_value("leeds-manager").run()
    assert field(at, "Name").value == "Leeds manager"
    next(c for c in at.checkbox if c.label == "Enabled").check()
    next(b for b in at.button if b.label == "Save recipient").click().run()
    with connect(two_stores.database_dsn) as conn:
        assert [r.id for r in load_recipients(conn)] == ["boston-manager", "leeds-manager"]
