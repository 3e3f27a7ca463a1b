"""The Case files and Access requests pages under AppTest, signed in as real accounts, on real
evidence files (tests.privacy.test_subject): a case file is built from the incidents the
address names and registered; an access request is recorded, listed (overdue in red) and
answered by picking the requester, and answered again; an erasure blurs for good, and one
that fails part-way names the incident; a ZIP is offered only for what it was built from;
analysts see no access-request answer in the register; the writes (and the Review page's
legal hold) run on connections of their own; nobody else reaches the pages."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from privacy import files
from shrinkwatch.settings import Settings
from tests.factories import T0
from tests.privacy.test_subject import evidence_site, request_for, write_evidence
from tests.streamlit_app.conftest import shown, texts
from warehouse.db import connect
from warehouse.disclosures import mark_answered, record_disclosure
from warehouse.evidence_log import access_log, active_hold

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


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, bool]]:
    """The connections the pages' writes ran on: (what, connection, autocommit then). The pages
    import these by name on each run, so they get the wrappers."""
    import privacy.cases
    import privacy.subject
    from warehouse import evidence_log

    seen: list[tuple[str, Any, bool]] = []

    def spy(module: Any, name: str) -> None:
        real = getattr(module, name)

        def wrapper(conn: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append((name, conn, conn.autocommit))
            return real(conn, *args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    spy(privacy.cases, "build_case")
    spy(privacy.subject, "export_request")
    spy(privacy.subject, "erase")
    spy(evidence_log, "hold")
    return seen


def on_own_connections(seen: list[tuple[str, Any, bool]], names: list[str]) -> None:
    """Each write ran on an autocommit connection of its own, closed once it was done (the
    dashboard's shared connection stays open for every session)."""
    assert [name for name, _c, _a in seen] == names
    for name, conn, autocommit in seen:
        assert autocommit and conn.closed, name


def downloads(at: AppTest, label: str) -> list[bytes]:
    """The bytes of each in-page download link with this label (streamlit_app.inline)."""
    found = []
    for element in at.get("html"):
        if f">{label}</a>" in element.proto.body:
            encoded = re.search(r"atob\('([^']*)'\)", element.proto.body)
            assert encoded is not None
            found.append(base64.b64decode(encoded.group(1)))
    return found


def test_a_built_case_file_is_offered_only_for_what_it_was_built_from(
    open_page: Open, site: Settings, writes: list[tuple[str, Any, bool]]
) -> None:
    at = open_page(site, "compliance/cases.py", query={"incidents": "inc-a"})
    recipient = next(t for t in at.text_input if t.label == "To whom")
    recipient.input("West Yorkshire Police")
    at.text_area[0].input("theft on 28 Nov")
    button(at, "Build case file").click().run()
    [zipped] = downloads(at, "Download the case file")
    assert zipfile.ZipFile(io.BytesIO(zipped)).read("manifest.json")
    at.run()  # nothing changed: still offered
    assert len(downloads(at, "Download the case file")) == 1
    on_own_connections(writes, ["build_case"])

    # Another recipient: the ZIP made for the police is not offered for them, nor after.
    next(t for t in at.text_input if t.label == "To whom").input("Insurer").run()
    assert downloads(at, "Download the case file") == [] and "Built and registered" not in texts(at)
    next(t for t in at.text_input if t.label == "To whom").input("West Yorkshire Police").run()
    assert downloads(at, "Download the case file") == []
    # Nor for other incidents, or with the unblurred files asked for.
    button(at, "Build case file").click().run()
    assert len(downloads(at, "Download the case file")) == 1
    at.multiselect[0].select("inc-x").run()
    assert downloads(at, "Download the case file") == []
    at.multiselect[0].unselect("inc-x").run()
    button(at, "Build case file").click().run()
    at.checkbox[0].check().run()
    assert downloads(at, "Download the case file") == []


def test_an_answer_is_offered_only_under_the_request_it_answers(
    open_page: Open, site: Settings, writes: list[tuple[str, Any, bool]]
) -> None:
    with connect(site.database_dsn) as conn:
        first = request_for(conn, requester="Jo Bloggs")
        second = request_for(conn, requester="Sam Smith")
    at = open_page(site, "compliance/requests.py", user="root", role="admin")
    next(s for s in at.selectbox if s.key == "answer_request").set_value(first).run()
    next(s for s in at.selectbox if s.label == "The person in inc-a").set_value(7).run()
    button(at, "Export for the requester").click().run()
    assert not at.exception, at.exception
    [zipped] = downloads(at, "Download the answer")
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped)).read("manifest.json"))
    assert manifest["request_id"] == first and manifest["requester"] == "Jo Bloggs"
    on_own_connections(writes, ["export_request"])
    at.run()  # answered now, and still the one chosen: still offered
    assert next(s for s in at.selectbox if s.key == "answer_request").value == first
    assert len(downloads(at, "Download the answer")) == 1

    next(s for s in at.selectbox if s.key == "answer_request").set_value(second).run()
    assert downloads(at, "Download the answer") == [] and "Answered, registered" not in texts(at)
    # Gone for good: the first request, answered, is listed no more (unless answered ones are).
    at.run()
    assert next(s for s in at.selectbox if s.key == "answer_request").options == [f"request {second}"]
    assert downloads(at, "Download the answer") == []


def test_an_answered_request_is_exported_again_from_the_page(open_page: Open, site: Settings) -> None:
    with connect(site.database_dsn) as conn:
        request_id = request_for(conn)
        mark_answered(conn, request_id, by="bob")
        conn.commit()
    at = open_page(site, "compliance/requests.py", user="root", role="admin")
    assert not any(s.key == "answer_request" for s in at.selectbox)  # nothing open
    next(c for c in at.checkbox if c.label == "Show answered requests too").check().run()
    next(s for s in at.selectbox if s.key == "answer_request").set_value(request_id).run()
    assert f"Request {request_id} was answered on" in texts(at) and "by bob" in texts(at)
    next(s for s in at.selectbox if s.label == "The person in inc-a").set_value(7).run()
    button(at, "Export for the requester").click().run()
    assert not at.exception, at.exception
    assert len(downloads(at, "Download the answer")) == 1
    with connect(site.database_dsn) as conn:
        [row] = conn.execute("SELECT reason, recipient FROM disclosures").fetchall()
        answered = conn.execute("SELECT answered_by FROM access_requests").fetchone()["answered_by"]
    assert row["reason"] == f"subject access request {request_id} (answered again)" and answered == "bob"


def test_only_admins_see_access_request_answers_in_the_register(open_page: Open, site: Settings) -> None:
    with connect(site.database_dsn) as conn:
        for kind, recipient in (("case", "West Yorkshire Police"), ("access_request", "Jo Bloggs, jo@x.org")):
            record_disclosure(
                conn,
                kind=kind,
                disclosed_by="root",
                recipient=recipient,
                reason="r",
                incident_ids=["inc-a"],
                store_ids=["store-001"],
                file_name=f"{kind}.zip",
                sha256="0" * 64,
            )
        conn.commit()
    for user, role, recipients in (
        ("ana", "analyst", ["West Yorkshire Police"]),
        ("root", "admin", ["Jo Bloggs, jo@x.org", "West Yorkshire Police"]),
    ):
        at = open_page(site, "compliance/cases.py", user=user, role=role)
        assert list(at.dataframe[0].value["recipient"]) == recipients
        [register] = downloads(at, "Download the register (CSV)")
        listed = [r["recipient"] for r in csv.DictReader(io.StringIO(register.decode("utf-8")))]
        assert listed == recipients
        assert ("Jo Bloggs" in register.decode("utf-8")) == (role == "admin")


def test_an_erasure_that_fails_part_way_names_the_incident(
    open_page: Open, site: Settings, writes: list[tuple[str, Any, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import privacy.subject

    real = privacy.subject.blur_file
    broken = site.evidence_dir() / "cam-1" / "inc-a.mp4"

    def blur_file(path: Path, *args: Any) -> None:
        if path == broken:
            msg = "No space left on device"
            raise OSError(msg)
        real(path, *args)

    monkeypatch.setattr(privacy.subject, "blur_file", blur_file)
    at = open_page(site, "compliance/requests.py", user="root", role="admin")
    next(d for d in at.date_input if d.key == "erase_day").set_value(T0.date())
    next(t for t in at.time_input if t.key == "erase_from").set_value(T0.time().replace(hour=9, minute=55))
    next(t for t in at.time_input if t.key == "erase_to").set_value(T0.time().replace(hour=10, minute=10))
    next(c for c in at.checkbox if c.key == "erase_everyone").check()
    next(t for t in at.text_input if t.key == "erase_reason").input("objection of 1 Dec")
    next(c for c in at.checkbox if c.key == "erase_sure").check().run()
    button(at, "Erase").click().run()
    assert not at.exception, at.exception
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 1 and "inc-a" in errors[0] and "inc-a.mp4: No space left on device" in errors[0]
    assert "2 file(s) blurred before it" in errors[0]
    assert "Erasure failed part-way for 1 of 1 incident(s)" in texts(at)
    assert "Erasure done and logged" not in texts(at)
    on_own_connections(writes, ["erase"])
    with connect(site.database_dsn) as conn:
        details = [d for d in access_log(conn, actions=["erase"])["detail"]]
    assert [d.get("failed") for d in details] == ["inc-a.mp4: No space left on device", None]


def test_a_legal_hold_on_the_review_page_is_written_on_its_own_connection(
    open_page: Open, site: Settings, writes: list[tuple[str, Any, bool]]
) -> None:
    at = open_page(site, "review/incident.py", query={"id": "inc-a"})
    at.text_input(key="hold_reason_inc-a").input("insurance claim 5678")
    button(at, "Place legal hold").click().run()
    assert not at.exception, at.exception
    on_own_connections(writes, ["hold"])
    with connect(site.database_dsn) as conn:
        assert active_hold(conn, "inc-a") is not None
