"""The console and the bitemporal history: the "known at" control, the Corrections panel, the
timeline's marks, and the retract and correct forms (DOMAIN.md "Late facts, corrections and
retractions"; docs/console.md).

A real embedded store (SQLite) and the real app, as in test_console.py; the browser's side
is in test_console_browser.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.config import Settings
from ledger.console import session
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.conftest import migrated
from tests.helpers import at
from tests.integration.console_world import NAME, apply, build, csrf_of, sign_in

World = tuple[TestClient, dict[str, str], Settings]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = migrated(Settings(store=f"sqlite:///{tmp_path / 'ledger.store.db'}"))
    tokens = build(settings)
    with TestClient(create_app(settings, project=False, token_ttl=0.0)) as client:
        yield client, tokens, settings


def _as(client: TestClient, token: str) -> TestClient:
    client.cookies.clear()
    sign_in(client, token)
    return client


def _latest_recorded(settings: Settings, officer_id: str = "O1") -> str:
    ledger = Ledger(settings)
    try:
        return str(ledger.officer_events(officer_id)[-1]["recorded_at"])
    finally:
        ledger.close()


def _record(page: str) -> str:
    """The record section of an officer page (the heading shows the current name whatever the controls say)."""
    start = page.index('id="record-h"')
    return page[start:page.index("</section>", start)]


def _count(page: str) -> str:
    found = re.search(r'<dd id="completed-count">(\d+)</dd>', page)
    assert found is not None, page[:300]
    return found[1]


def correct_name(name: str = "Asha Varma") -> dict[str, Any]:
    return {"type": "correct_officer_details", "officer_id": "O1", "name": name, "occurred_at": at(0)}


def retract(versions: list[int], officer: str = "O1", **extra: Any) -> dict[str, Any]:
    return {"type": "retract", "officer_id": officer, "versions": versions, "reason": "recorded_in_error", **extra}


def test_known_at_shows_what_the_ledger_said_before_and_after_a_correction_and_a_retraction(world: World) -> None:
    client, tokens, settings = world
    before = _latest_recorded(settings)
    assert apply(settings, correct_name()) == ["accepted"]
    corrected = _latest_recorded(settings)
    assert apply(settings, retract([4])) == ["accepted"]  # O1's completion of K-ETH
    _as(client, tokens["auditor"])
    page = client.get("/console/officers/O1", params={"known_at": before}).text
    assert "as known at" in page and NAME in _record(page) and "Asha Varma" not in _record(page)
    assert _count(page) == "1"
    page = client.get("/console/officers/O1", params={"known_at": corrected}).text
    assert "Asha Varma" in _record(page) and NAME not in _record(page) and _count(page) == "1"
    assert "K-BUD" in _record(page)
    now = client.get("/console/officers/O1").text
    assert "Current record" in now and _count(now) == "0"
    # Both together: what the ledger said then about 5 April (the completion was on 4 April).
    assert _count(client.get("/console/officers/O1", params={"known_at": before, "as_of": "2025-04-05"}).text) == "1"
    assert _count(client.get("/console/officers/O1", params={"as_of": "2025-04-05"}).text) == "0"
    # The API says the same thing for the same instants.
    api = client.get("/officers/O1/record", params={"known_at": corrected},
                     headers={"Authorization": f"Bearer {tokens['auditor']}"}).json()
    assert api["name"] == "Asha Varma" and api["completed_count"] == 1


def test_known_at_with_compare_diffs_two_dates_as_known_then(world: World) -> None:
    client, tokens, settings = world
    before = _latest_recorded(settings)
    assert apply(settings, retract([4])) == ["accepted"]
    _as(client, tokens["officer"])
    params = {"as_of": "2025-04-20", "compare": "2025-04-02"}
    then = client.get("/console/officers/O1", params={**params, "known_at": before}).text
    assert "<tr><td>completed_count</td><td>0</td><td>1</td></tr>" in then
    now = client.get("/console/officers/O1", params=params).text
    assert "<td>completed_count</td>" not in now and "<td>enrolments[K-BUD].status</td>" in now


def test_the_known_at_control_accepts_a_date_and_time_in_ist_and_shows_it_back(world: World) -> None:
    client, tokens, _ = world
    _as(client, tokens["hr_mof"])
    page = client.get("/console/officers/O1", params={"known_at": "2099-01-02T03:04:05.678"}).text
    assert 'datetime="2099-01-02T03:04:05.678000+05:30"' in page
    assert 'id="known_at" name="known_at" type="datetime-local" step="0.001" value="2099-01-02T03:04:05.678"' in page
    page = client.get("/console/officers/O1", params={"known_at": "2099-01-01T00:00:00Z"}).text
    assert 'value="2099-01-01T05:30:00"' in page  # the same instant, on the IST clock
    for bad in ("2099-02-30T10:00", "2099-01-01T25:00", "10:00", "2099-01-01 10:00"):
        refused = client.get("/console/officers/O1", params={"known_at": bad})
        assert refused.status_code == 422 and "known_at" in refused.text, bad
    missing = client.get("/console/officers/O1", params={"known_at": "2025-03-01"})
    assert missing.status_code == 404 and "was not registered as known at 2025-03-01" in missing.text
    assert NAME not in missing.text


def _post(client: TestClient, token: str, *commands: dict[str, Any]) -> list[str]:
    """Commands through POST /commands (the group committer, with the token as sender)."""
    answer = client.post("/commands", json=list(commands), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return [r["status"] for r in answer.json()]


def _corrected(client: TestClient, tokens: dict[str, str], settings: Settings) -> None:
    """O1: the name corrected from the registration (admin), K-BUD's enrolment and progress retracted
    (registrar), a transfer reported late (ingest)."""
    assert _post(client, tokens["admin"], correct_name()) == ["accepted"]
    assert _post(client, tokens["registrar"], retract([5, 6], reason="duplicate", ticket="GRV-1")) == ["accepted"]
    assert _post(client, tokens["ingest"], {"type": "transfer_officer", "officer_id": "O1", "org_id": "CBIC",
                                            "post_id": "P-DIR", "occurred_at": at(5)}) == ["accepted"]
    apply(settings)  # project


def _section(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start:page.index("</ol>", start)]


def test_the_corrections_panel_shows_each_role_what_it_may_read(world: World) -> None:
    client, tokens, settings = world
    _corrected(client, tokens, settings)
    for role in ("auditor", "officer", "hr_mof"):
        page = _as(client, tokens[role]).get("/console/officers/O1").text
        retraction = _section(page, "retractions")
        assert "<strong>Version 8</strong> retracted versions 5, 6" in retraction, role
        assert '<code class="reason">duplicate</code>' in retraction and '<code class="ticket">GRV-1</code>' in retraction
        assert "CourseEnrolled</span> version 5" in retraction and "ProgressRecorded</span> version 6" in retraction
        assert retraction.count("recorded <time") == 1 and retraction.count("occurred <time") == 3
        details = _section(page, "detail-corrections")
        assert 'corrected name to <span class="value">Asha Varma</span>' in details and "email" not in details
        late = _section(page, "late-facts")
        assert "OfficerTransferred" in late and "org_id: CBIC" in late and "recorded <time" in late
        timeline = _section(page, "timeline")
        assert timeline.count("retracted by version 8") == 2 and timeline.count('<span class="flag flag-late">late') == 2
        if role == "auditor":  # who made each correction: the token's role and name
            assert "Made by token <code>registry-1</code> (role registrar)" in retraction
            assert "Made by token <code>dpo</code> (role admin)" in details
        else:
            assert "Made by" not in page and "registry-1" not in page and "dpo" not in page, role
    assert _as(client, tokens["hr_moh"]).get("/console/officers/O1").status_code == 404


def test_a_panel_link_opens_the_record_as_known_just_before_that_correction(world: World) -> None:
    client, tokens, settings = world
    _corrected(client, tokens, settings)
    page = _as(client, tokens["auditor"]).get("/console/officers/O1").text
    link = re.search(r'href="(/console/officers/O1\?known_at=[^"]+)">Record as known before version 8<', page)
    assert link is not None
    before = client.get(link[1].replace("&amp;", "&")).text
    assert "Asha Varma" in _record(before) and "K-BUD" in _record(before)  # after version 7, before version 8
    assert "CBIC" not in _record(before)
    marked = _section(before, "late-facts")
    assert 'recorded after the "as known at" instant' in marked  # the transfer was recorded later still


def test_after_erasure_the_panel_names_the_corrected_field_but_no_value_remains(world: World) -> None:
    client, tokens, settings = world
    _corrected(client, tokens, settings)
    erased = client.post("/officers/O1/erase", json={"reason": "data_principal_request"},
                         headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert erased.status_code == 200, erased.text
    apply(settings)
    page = _as(client, tokens["auditor"]).get("/console/officers/O1").text
    assert 'corrected name to <span class="value">— (erased)</span>' in _section(page, "detail-corrections")
    assert "Asha Varma" not in page and NAME not in page


def _hidden(page: str) -> dict[str, str]:
    """The hidden fields of a confirmation page's form, as a browser would send them back."""
    return {name: html.unescape(value) for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}


def _events(settings: Settings, officer_id: str = "O1") -> int:
    ledger = Ledger(settings)
    try:
        return len(ledger.officer_events(officer_id))
    finally:
        ledger.close()


def _position(settings: Settings) -> int:
    """How far the store's log goes: unchanged when nothing was written."""
    ledger = Ledger(settings)
    try:
        return int(ledger.recorder.max_notification_id() or 0)
    finally:
        ledger.close()


def _actors(settings: Settings) -> list[tuple[Any, ...]]:
    with Database(settings).reading() as c:
        c.execute("SELECT officer_id, version, role, token_name FROM correction_actors ORDER BY officer_id, version")
        return [tuple(row) for row in c.fetchall()]


def _confirm(client: TestClient, kind: str, **values: str) -> httpx.Response:
    form = client.get(f"/console/{kind}")
    assert form.status_code == 200, form.text
    answer: httpx.Response = client.post(f"/console/{kind}/confirm", data={"csrf": csrf_of(form.text), **values})
    return answer


def test_a_registrar_retracts_after_a_confirmation_and_auditors_see_who(world: World) -> None:
    client, tokens, settings = world
    _as(client, tokens["registrar"])
    assert 'href="/console/retract"' in client.get("/console").text
    confirm = _confirm(client, "retract", officer_id="O1", versions="5, 6", reason="duplicate", ticket="GRV-7")
    assert confirm.status_code == 200, confirm.text
    assert '<code id="versions-list">5, 6</code>' in confirm.text and '<code id="reason-code">duplicate</code>' in confirm.text
    assert '<code id="ticket-id">GRV-7</code>' in confirm.text and "recorded beside the retraction" in confirm.text
    assert NAME not in confirm.text and "K-BUD" not in confirm.text  # a registrar reads no officer
    assert _events(settings) == 6  # nothing before the confirmation
    sent = _hidden(confirm.text)
    assert sent["confirm"] == "yes" and sent["command_id"].startswith("console-")
    unconfirmed = client.post("/console/retract", data={**sent, "confirm": ""})
    assert unconfirmed.status_code == 422 and _events(settings) == 6
    done = client.post("/console/retract", data=sent)
    assert done.status_code == 200 and "Retraction recorded" in done.text, done.text
    assert _events(settings) == 7 and _actors(settings) == [("O1", 7, "registrar", "registry-1")]
    again = client.post("/console/retract", data=sent)  # the same confirmation sent twice
    assert again.status_code == 200 and "Already recorded" in again.text and _events(settings) == 7
    apply(settings)
    page = _as(client, tokens["auditor"]).get("/console/officers/O1").text
    assert "Made by token <code>registry-1</code> (role registrar)" in _section(page, "retractions")
    assert "<td>K-BUD</td>" not in _record(page)


def test_an_admin_corrects_a_name_from_the_registration_or_from_an_instant(world: World) -> None:
    client, tokens, settings = world
    _as(client, tokens["admin"])
    confirm = _confirm(client, "correct", officer_id="O1", name="Asha Varma", email="", occurred_at="")
    assert confirm.status_code == 200, confirm.text
    assert '<strong id="new-name">Asha Varma</strong>' in confirm.text and 'id="new-email"' not in confirm.text
    assert "In force from the registration" in confirm.text and NAME not in confirm.text
    done = client.post("/console/correct", data=_hidden(confirm.text))
    assert done.status_code == 200 and "Correction recorded" in done.text and "the registration" in done.text
    assert NAME not in done.text and "2025-04-01" not in done.text  # nor the registration's instant
    later = _confirm(client, "correct", officer_id="O1", email="asha.v@example.gov.in", occurred_at="2025-04-05T10:00")
    assert '<time datetime="2025-04-05T10:00:00+05:30">' in later.text
    assert client.post("/console/correct", data=_hidden(later.text)).status_code == 200
    assert _actors(settings) == [("O1", 7, "admin", "dpo"), ("O1", 8, "admin", "dpo")]
    apply(settings)
    _as(client, tokens["auditor"])
    early = _record(client.get("/console/officers/O1", params={"as_of": "2025-04-01"}).text)
    assert "Asha Varma" in early and "asha.verma@example.gov.in" in early  # the name from the start
    late = _record(client.get("/console/officers/O1", params={"as_of": "2025-04-06"}).text)
    assert "Asha Varma" in late and "asha.v@example.gov.in" in late


def test_a_rejected_retraction_shows_the_ledgers_message_and_writes_nothing(world: World) -> None:
    client, tokens, settings = world
    _as(client, tokens["registrar"])
    confirm = _confirm(client, "retract", officer_id="O4", versions="2", reason="wrong_officer", ticket="")
    assert confirm.status_code == 200, confirm.text
    before = _position(settings)
    refused = client.post("/console/retract", data=_hidden(confirm.text))
    assert refused.status_code == 422
    message = ("versions: without version 2 (OfficerTransferred CBIC), version 3 (OfficerTransferred DOR) repeats "
               "the officer&#39;s current organisation and post; retract them together")
    assert 'role="alert" id="form-error">The ledger rejected this retraction and recorded nothing: ' + message in refused.text
    assert 'value="O4"' in refused.text and 'id="versions" name="versions"' in refused.text  # the form, filled in again
    assert _position(settings) == before and _actors(settings) == []
    together = _confirm(client, "retract", officer_id="O4", versions="2 3", reason="wrong_officer", ticket="")
    assert client.post("/console/retract", data=_hidden(together.text)).status_code == 200
    assert _actors(settings) == [("O4", 4, "registrar", "registry-1")]


@pytest.mark.parametrize(("token", "role"), [("ingest", "ingest"), ("auditor", "auditor"), ("officer", "officer"),
                                             ("hr_mof", "ministry_hr"), ("cbc", "cbc")])
def test_other_roles_are_refused_the_correction_pages_before_their_form_is_read(
    world: World, token: str, role: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, tokens, settings = world
    home = _as(client, tokens[token]).get("/console").text
    assert 'href="/console/retract"' not in home and 'href="/console/correct"' not in home
    read: list[str] = []
    real = session.read_form

    async def spy(request: Any, sign_in: bool = False) -> dict[str, str]:
        read.append(request.url.path)
        return await real(request, sign_in)

    monkeypatch.setattr(session, "read_form", spy)
    form = {"csrf": csrf_of(home), "officer_id": "O1", "versions": "5, 6", "reason": "other", "name": "X",
            "confirm": "yes"}
    refusal = f"role {role} may not correct officers&#39; records"
    for kind in ("retract", "correct"):
        assert refusal in client.get(f"/console/{kind}").text
        for path in (f"/console/{kind}/confirm", f"/console/{kind}"):
            answer = client.post(path, data=form)
            assert answer.status_code == 403 and refusal in answer.text, (path, answer.text)
            huge = client.post(path, content=b"a=" + b"x" * (20 * 1024 * 1024),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert huge.status_code == 403 and refusal in huge.text, path
    assert read == [] and _events(settings) == 6 and _actors(settings) == []


def _alert(page: str) -> str:
    found = re.search(r'role="alert" id="form-error">([^<]*)</p>', page)
    assert found is not None, page[:500]
    return found[1]


RETRACTION = {"officer_id": "O1", "versions": "5, 6", "reason": "duplicate", "ticket": ""}
CORRECTION = {"officer_id": "O1", "name": "Asha Varma", "email": "", "occurred_at": ""}
HOSTILE: list[tuple[str, dict[str, str], str]] = [
    ("retract", {"officer_id": "O1\x00"}, "officer_id: "),
    ("retract", {"officer_id": "9" * 5000}, "officer_id: "),
    ("retract", {"versions": "5\x00"}, "versions: list version numbers"),
    ("retract", {"versions": "\u0663"}, "versions: list version numbers"),  # an Arabic-Indic three
    ("retract", {"versions": "-5"}, "versions: list version numbers"),
    ("retract", {"versions": ""}, "versions: give the versions"),
    ("retract", {"versions": "9" * 5000}, "versions: a version number has at most 19 digits"),
    ("retract", {"versions": "9" * 19}, "versions[0]: must be an integer 1.."),
    ("retract", {"versions": "0"}, "versions[0]: must be an integer 1.."),
    ("retract", {"versions": ", ".join(str(v) for v in range(2, 103))}, "versions: must be a list of 1..100"),
    ("retract", {"versions": "5, 5"}, "versions: a version is listed twice"),
    ("retract", {"reason": "\x00"}, "reason: must be one of"),
    ("retract", {"reason": "duplicate because Asha said so"}, "reason: must be one of"),
    ("retract", {"ticket": "GRV 1"}, "ticket: "),
    ("retract", {"ticket": "9" * 5000}, "ticket: "),
    ("correct", {"name": "Asha\x00"}, "name: contains a control character (U+0000)"),
    ("correct", {"name": "x" * 5000}, "name: "),
    ("correct", {"name": "", "email": ""}, "name: give the corrected name and/or email"),
    ("correct", {"email": "not an email"}, "email: must be an email address"),
    ("correct", {"occurred_at": "9" * 5000}, "occurred_at: "),
    ("correct", {"occurred_at": "2025-02-30T10:00"}, "occurred_at: &#39;2025-02-30T10:00&#39; is not a date and time"),
    ("correct", {"officer_id": ""}, "officer_id: "),
]


@pytest.mark.parametrize(("kind", "change", "message"), HOSTILE)
def test_hostile_form_values_are_refused_naming_the_field_and_write_nothing(
    world: World, kind: str, change: dict[str, str], message: str,
) -> None:
    client, tokens, settings = world
    _as(client, tokens["admin"])
    values = {**(RETRACTION if kind == "retract" else CORRECTION), **change}
    confirm = _confirm(client, kind, **values)
    assert confirm.status_code == 422 and _alert(confirm.text).startswith(message), confirm.text
    assert f'action="/console/{kind}/confirm"' in confirm.text  # the form again, to put right
    csrf = csrf_of(confirm.text)
    final = client.post(f"/console/{kind}", data={"csrf": csrf, **values, "command_id": "console-x", "confirm": "yes"})
    assert final.status_code == 422 and _alert(final.text).startswith(message)
    assert _events(settings) == 6 and _actors(settings) == []


def test_hostile_bodies_and_command_ids_are_refused_and_write_nothing(world: World) -> None:
    client, tokens, settings = world
    _as(client, tokens["admin"])
    csrf = csrf_of(client.get("/console/correct").text)
    form = "application/x-www-form-urlencoded"
    for path in ("/console/correct/confirm", "/console/correct"):
        for body, status in ((f"csrf={csrf}&officer_id=O1&name=%ED%A0%80&confirm=yes".encode(), 400),  # a lone surrogate
                             (f"csrf={csrf}&officer_id=O1&name=\xff&confirm=yes".encode("latin-1"), 400),  # not UTF-8
                             ("&".join(f"f{i}=1" for i in range(30)).encode(), 400),  # more fields than any form has
                             (b"name=" + b"x" * (20 * 1024 * 1024), 413)):
            answer = client.post(path, content=body, headers={"Content-Type": form})
            assert answer.status_code == status, (path, status, answer.text[:300])
        no_csrf = client.post(path, data={**CORRECTION, "confirm": "yes"})
        assert no_csrf.status_code == 403 and "csrf" in no_csrf.text
    for command_id, message in (("\x00", "command_id: contains a control character"),
                                ("x" * 5000, "command_id: must be a string of 1..128 characters")):
        sent = {"csrf": csrf, **CORRECTION, "command_id": command_id, "confirm": "yes"}
        answer = client.post("/console/correct", data=sent)
        assert answer.status_code == 422 and message in answer.text, answer.text
    assert _events(settings) == 6 and _actors(settings) == []


@pytest.mark.parametrize(("token", "name"), [("admin", "dpo"), ("registrar", "registry-1")])
def test_admin_and_registrar_tokens_both_retract_and_correct(world: World, token: str, name: str) -> None:
    client, tokens, settings = world
    _as(client, tokens[token])
    retraction = _confirm(client, "retract", officer_id="O1", versions="4", reason="withdrawn_by_provider", ticket="")
    assert client.post("/console/retract", data=_hidden(retraction.text)).status_code == 200
    correction = _confirm(client, "correct", officer_id="O1", name="", email="asha@example.gov.in", occurred_at="")
    assert client.post("/console/correct", data=_hidden(correction.text)).status_code == 200
    role = token  # these tokens are named after their roles
    assert _actors(settings) == [("O1", 7, role, name), ("O1", 8, role, name)]
    apply(settings)
    page = _as(client, tokens["auditor"]).get("/console/officers/O1").text
    assert _count(page) == "0" and "asha@example.gov.in" in _record(page)
    assert _section(page, "detail-corrections").count(f"Made by token <code>{name}</code> (role {role})") == 1
