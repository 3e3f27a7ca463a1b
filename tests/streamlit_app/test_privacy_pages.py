"""The Case files and Access requests pages under AppTest, signed in as real accounts, on real
evidence files (tests.privacy.test_subject): a case file is built from the incidents the
address names and registered; an access request is recorded, listed (overdue in red) and
answered by picking the requester; an erasure blurs for good; nobody else reaches the pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from privacy import files
from shrinkwatch.settings import Settings
from tests.factories import T0
from tests.privacy.test_subject import evidence_site, request_for, write_evidence
from tests.streamlit_app.conftest import texts
from warehouse.db import connect
from warehouse.evidence_log import access_log

Open = Callable[..., AppTest]


@pytest.fixture
def site(settings: Settings) -> Settings:
    with connect(settings.database_dsn) as conn:
        evidence_site(conn)
    write_evidence(settings.evidence_dir(), "cam-1", "inc-a", T0)
    return settings


def button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def test_store_managers_reach_neither_page(open_page: Open, site: Settings) -> None:
    for path in ("compliance/cases.py", "compliance/requests.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            open_page(site, path, user="mo", role="store_manager", stores=("store-001",))


def test_an_analyst_builds_a_case_file_from_the_review_link(open_page: Open, site: Settings) -> None:
    at = open_page(site, "compliance/cases.py", query={"incidents": "inc-a,inc-x"})
    assert at.title[0].value == "Case files"
    assert at.multiselect[0].value == ["inc-a", "inc-x"]
    assert "Nothing disclosed yet." in texts(at)

    button(at, "Build case file").click().run()  # no recipient yet: nothing built
    assert "to whom: required" in texts(at)
    next(t for t in at.text_input if t.label == "To whom").input("West Yorkshire Police")
    at.text_area[0].input("theft on 28 Nov")
    button(at, "Build case file").click().run()
    assert not at.exception, at.exception
    said = texts(at)
    assert "Built and registered: case-" in said
    links = [h.proto.body for h in at.get("html") if "Download the case file" in h.proto.body]
    assert len(links) == 1 and 'download="case-' in links[0]
    with connect(site.database_dsn) as conn:
        [row] = conn.execute("SELECT disclosed_by, recipient, incident_ids FROM disclosures").fetchall()
        assert row == {
            "disclosed_by": "ana",
            "recipient": "West Yorkshire Police",
            "incident_ids": ["inc-a", "inc-x"],
        }
        assert sorted(access_log(conn)["incident_id"]) == ["inc-a", "inc-x"]
    register = at.dataframe[0].value
    assert list(register["recipient"]) == ["West Yorkshire Police"]
    assert list(register["incident_ids"]) == ["inc-a inc-x"]


def test_an_unknown_incident_added_by_id_is_refused(open_page: Open, site: Settings) -> None:
    # (Analysts see every store: another store's incident is refused in these same words,
    # tests/privacy/test_cases.py.)
    at = open_page(site, "compliance/cases.py", query={"incidents": "inc-a"})
    next(t for t in at.text_input if t.label == "Add incidents by id").input("inc-nope, inc-a")
    button(at, "Add").click().run()
    assert at.multiselect[0].value == ["inc-a", "inc-nope"]
    next(t for t in at.text_input if t.label == "To whom").input("Insurer")
    at.text_area[0].input("claim")
    button(at, "Build case file").click().run()
    assert "no such incident in your stores: inc-nope" in texts(at)
    with connect(site.database_dsn) as conn:
        assert conn.execute("SELECT count(*) AS n FROM disclosures").fetchone()["n"] == 0


def test_an_admin_records_lists_and_answers_an_access_request(open_page: Open, site: Settings) -> None:
    with connect(site.database_dsn) as conn:
        late = request_for(conn, date(2020, 1, 31), requester="Late Larry")  # long overdue
    at = open_page(site, "compliance/requests.py", user="root", role="admin")
    assert at.title[0].value == "Access requests"
    said = texts(at)
    assert "Overdue by" in said and f"request {late} from Late Larry, due on 29 Feb 2020" in said
    assert any(":red[" in m.value for m in at.markdown)
    listed = at.dataframe[0].value
    assert list(listed["requester"]) == ["Late Larry"] and listed["days"].iloc[0].startswith("overdue by")

    # Record one through the form.
    next(t for t in at.text_input if t.label.startswith("Requester")).input("Jo Bloggs")
    next(d for d in at.date_input if d.key == "new_day").set_value(T0.date())
    next(t for t in at.time_input if t.key == "new_from").set_value(T0.time().replace(hour=9, minute=55))
    next(t for t in at.time_input if t.key == "new_to").set_value(T0.time().replace(hour=10, minute=10))
    button(at, "Record the request").click().run()
    with connect(site.database_dsn) as conn:
        row = conn.execute(
            """SELECT id, requester, camera_id, window_start, window_end FROM access_requests
               WHERE requester = 'Jo Bloggs'"""
        ).fetchone()
    assert row["camera_id"] == "cam-1"
    assert (row["window_start"], row["window_end"]) == (T0 - timedelta(minutes=5), T0 + timedelta(minutes=10))

    # Answer it: the key frame is shown, the requester picked, the export registered.
    next(s for s in at.selectbox if s.key == "answer_request").set_value(row["id"]).run()
    assert [h.proto.body.count("data:image/jpeg;base64,") for h in at.get("html")] == [1]
    next(s for s in at.selectbox if s.label == "The person in inc-a").set_value(7).run()
    button(at, "Export for the requester").click().run()
    assert not at.exception, at.exception
    assert "Answered, registered and logged: access-request-" in texts(at)
    with connect(site.database_dsn) as conn:
        answered = conn.execute(
            "SELECT answered_by FROM access_requests WHERE id = %s", (row["id"],)
        ).fetchone()
        assert answered["answered_by"] == "root"
        log = access_log(conn)
    assert sorted(log["action"]) == ["access_request", "view"]


def test_an_admin_erases_a_person_for_good(open_page: Open, site: Settings) -> None:
    at = open_page(site, "compliance/requests.py", user="root", role="admin")
    next(d for d in at.date_input if d.key == "erase_day").set_value(T0.date())
    next(t for t in at.time_input if t.key == "erase_from").set_value(T0.time().replace(hour=9, minute=55))
    next(t for t in at.time_input if t.key == "erase_to").set_value(T0.time().replace(hour=10, minute=10))
    at.run()
    assert "1 incident(s) of this camera in the window, 1 with footage kept." in texts(at)
    next(s for s in at.selectbox if s.key == "erase_inc-a").set_value(8).run()
    assert button(at, "Erase").disabled  # not before "I understand"
    next(t for t in at.text_input if t.key == "erase_reason").input("objection of 1 Dec")
    next(c for c in at.checkbox if c.key == "erase_sure").check().run()
    button(at, "Erase").click().run()
    assert not at.exception, at.exception
    assert "Erasure done and logged (1 incident(s))." in texts(at)
    with connect(site.database_dsn) as conn:
        [row] = access_log(conn, actions=["erase"]).to_dict("records")
    assert row["detail"]["track_ids"] == [8] and row["reason"] == "objection of 1 Dec"
    assert len(row["detail"]["files"]) == 5
    assert files.read_tracks(site.evidence_dir() / "cam-1" / "inc-a.tracks.json").track_id == 7
