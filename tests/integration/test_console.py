"""The reviewers' console over HTTP: the API's role rules on every page, sessions, CSRF, escaping.

A real embedded store (SQLite) and the real app; the browser's side is in
test_console_browser.py.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from ledger.api.app import create_app
from ledger.api.auth import read_access_log, revoke_token
from ledger.config import Settings
from ledger.domain.officer import Officer
from ledger.integrity.checkpoint import SigningKey
from ledger.store.db import Database
from tests.conftest import migrated
from tests.integration.console_world import HOSTILE, NAME, build, csrf_of, sign_in

ROLES = ("auditor", "hr_mof", "hr_moh", "cbc", "officer", "admin", "ingest", "registrar")
AS_OF = "2025-04-02T23:59:59.999999%2B05:30"  # what the console means by the date 2025-04-02

# Each console page or fragment, and the API request that shows the same data.
PAIRS: list[tuple[str, str, dict[str, str]]] = [
    ("/console/officers/O1", "/officers/O1/record", {}),
    ("/console/officers/O2", "/officers/O2/record", {}),
    ("/console/officers/NOBODY", "/officers/NOBODY/record", {}),
    ("/console/officers/bad%20id", "/officers/bad%20id/record", {}),
    ("/console/officers/O1?as_of=2025-04-02", f"/officers/O1/record?as_of={AS_OF}", {}),
    ("/console/officers/O1?as_of=garbage", "/officers/O1/record?as_of=garbage", {}),
    ("/console/officers/O1?known_at=2099-01-01T00:00:00Z", "/officers/O1/record?known_at=2099-01-01T00:00:00Z", {}),
    ("/console/officers/O1?known_at=2000-01-01T00:00:00Z", "/officers/O1/record?known_at=2000-01-01T00:00:00Z", {}),
    ("/console/officers/O1?known_at=yesterday", "/officers/O1/record?known_at=yesterday", {}),
    ("/console/officers/O1?known_at=%00", "/officers/O1/record?known_at=%00", {}),
    ("/console/officers/O1?known_at=%ED%A0%80", "/officers/O1/record?known_at=%ED%A0%80", {}),
    (f"/console/officers/O1?known_at={'9' * 5000}", f"/officers/O1/record?known_at={'9' * 5000}", {}),
    ("/console/ministries/MOF", "/ministries/MOF", {}),
    ("/console/ministries/MOH", "/ministries/MOH", {}),
    ("/console/ministries/NOPE", "/ministries/NOPE", {}),
    ("/console/ministries/bad%20id", "/ministries/bad%20id", {}),
    ("/console/ministries/MOF/gaps.csv", "/ministries/MOF/gaps", {"Accept": "text/csv"}),
    ("/console/integrity/status", "/status", {}),
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Settings]]:
    settings = migrated(Settings(store=f"sqlite:///{tmp_path / 'ledger.store.db'}",
                                 signing_key=str(tmp_path / "signing-key.pem")))
    tokens = build(settings)
    # token_ttl=0: a revocation is seen at once (the API's default is 2 seconds).
    with TestClient(create_app(settings, project=False, token_ttl=0.0)) as client:
        yield client, tokens, settings


def _verified(client: TestClient) -> str:
    """The integrity page once a verification started now has finished (runs are in the background)."""
    page = client.get("/console/integrity")
    assert page.status_code == 200, page.text
    client.post("/console/integrity/verify", data={"csrf": csrf_of(page.text)})  # refused quietly if one runs
    for _ in range(600):
        text = client.get("/console/integrity").text
        if 'id="verify-running"' not in text and "No verification has finished" not in text:
            return str(text)
        time.sleep(0.05)
    raise AssertionError("the verification did not finish")


def _as(client: TestClient, token: str) -> TestClient:
    client.cookies.clear()
    sign_in(client, token)
    return client


def _api(client: TestClient, token: str, path: str, headers: dict[str, str]) -> httpx.Response:
    answer: httpx.Response = client.get(path, headers={"Authorization": f"Bearer {token}", **headers})
    return answer


def _console_log(settings: Settings, officer_id: str) -> list[dict[str, Any]]:
    return [e for e in read_access_log(Database(settings), officer_id) if e["endpoint"].startswith("console")]


def test_every_page_answers_every_role_exactly_as_the_api_does(world: tuple[TestClient, dict[str, str], Settings]) -> None:
    client, tokens, settings = world
    for role in ROLES:
        _as(client, tokens[role])
        for page, api, headers in PAIRS:
            expected = _api(client, tokens[role], api, headers)
            shown = client.get(page, follow_redirects=False)
            assert shown.status_code == expected.status_code, (role, page, shown.status_code, expected.text)
            if expected.status_code == 422:  # the API's message, word for word
                assert str(escape(expected.json()["detail"])) in shown.text, (role, page)
            if expected.status_code != 200:
                assert NAME not in shown.text and "asha.verma" not in shown.text, (role, page)
                assert "Ravi Kumar" not in shown.text, (role, page)
            elif page.endswith(".csv"):
                assert shown.text == expected.text
            elif "/officers/" in page:
                assert expected.json()["name"] in shown.text and expected.json()["email"] in shown.text
            elif "/ministries/" in page:
                assert f'<strong id="headcount">{expected.json()["headcount"]}</strong>' in shown.text
        # The integrity page is the auditor's; the erasure pages the admin's, as POST /officers/{id}/erase.
        assert client.get("/console/integrity").status_code == (200 if role == "auditor" else 403), role
        erase = client.post("/officers/NOBODY/erase", json={"reason": "other"},
                            headers={"Authorization": f"Bearer {tokens[role]}"})
        assert client.get("/console/erase").status_code == (200 if erase.status_code == 404 else 403), role
        # The correction pages are for the roles whose tokens may send corrections through POST /commands.
        sent = client.post("/commands", json=[{"type": "retract", "officer_id": "NOBODY", "versions": [2],
                                               "reason": "other"}], headers={"Authorization": f"Bearer {tokens[role]}"})
        may = sent.status_code == 200 and "may not send" not in (sent.json()[0]["error"] or "")
        for form in ("/console/retract", "/console/correct"):
            assert client.get(form).status_code == (200 if may else 403), (role, form)
    # Refused pages left no access-log entry; each page shown left one.
    readers = {(e["token_name"], e["officer_id"]) for e in read_access_log(Database(settings))
               if e["endpoint"] == "console:officer"}
    assert readers == {("audit-1", "O1"), ("audit-1", "O2"), ("hr-finance", "O1"), ("hr-health", "O2"),
                       ("asha", "O1")}


def test_another_ministrys_officer_is_refused_exactly_like_an_unknown_one(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, settings = world
    _as(client, tokens["hr_moh"])
    theirs = client.get("/console/officers/O1")
    unknown = client.get("/console/officers/NOBODY")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.text.replace("O1", "NOBODY") == unknown.text
    assert NAME not in theirs.text and "K-ETH" not in theirs.text
    assert _console_log(settings, "O1") == []
    # The console's history and as-of views are the same page: refused alike.
    assert client.get("/console/officers/O1?as_of=2025-04-02&compare=2025-04-20").status_code == 404


def test_without_a_session_every_page_sends_the_reviewer_to_sign_in(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, _, _ = world
    for page in ["/console", "/console/officers/O1", "/console/ministries/MOF", "/console/integrity",
                 "/console/erase", "/console/ministries/MOF/gaps.csv"]:
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303, page
        assert answer.headers["location"].startswith("/console/sign-in?next="), page
    assert client.get("/console/integrity/status").status_code == 401
    client.cookies.set("ledger_console", "lrl_0123456789abcdef_" + "x" * 43, path="/console")
    assert client.get("/console/officers/O1", follow_redirects=False).status_code == 303


def test_a_wrong_token_is_refused_at_sign_in(world: tuple[TestClient, dict[str, str], Settings]) -> None:
    client, _, _ = world
    form = client.get("/console/sign-in")
    answer = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": "lrl_nope"},
                         follow_redirects=False)
    assert answer.status_code == 401 and "not valid" in answer.text
    assert "ledger_console=" not in answer.headers.get("set-cookie", "")


def test_a_revoked_token_ends_the_session(world: tuple[TestClient, dict[str, str], Settings]) -> None:
    client, tokens, settings = world
    _as(client, tokens["auditor"])
    assert client.get("/console/officers/O1").status_code == 200
    revoke_token(Database(settings), "audit-1")
    answer = client.get("/console/officers/O1", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")
    assert 'ledger_console=""' in answer.headers["set-cookie"]  # the stale cookie is dropped


def test_the_session_cookie_is_httponly_strict_and_secure_over_tls(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, settings = world
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        with TestClient(client.app, base_url=base) as browser:
            form = browser.get("/console/sign-in")
            answer = browser.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": tokens["auditor"]},
                                  follow_redirects=False)
            assert answer.status_code == 303
            cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("ledger_console="))
            flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
            assert {"httponly", "samesite", "path"} <= flags
            assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
            assert ("secure" in flags) is secure, cookie
            page = browser.get("/console")
            assert page.status_code == 200 and "audit-1" in page.text
            assert "no-store" in page.headers["cache-control"]
            assert "script-src 'self'" in page.headers["content-security-policy"]
            signed_out = browser.post("/console/sign-out", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
            assert signed_out.status_code == 303
            assert browser.get("/console", follow_redirects=False).status_code == 303


def test_a_session_lives_on_the_server_and_its_cookie_is_no_api_token(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, settings = world
    _as(client, tokens["auditor"])
    cookie = client.cookies.get("ledger_console", path="/console")
    assert cookie and tokens["auditor"] not in cookie
    assert _api(client, cookie, "/officers/O1/record", {}).status_code == 401  # worthless as a bearer token
    page = client.get("/console")
    assert client.post("/console/sign-out", data={"csrf": csrf_of(page.text)}).status_code == 200
    # A copy of the cookie made before signing out opens nothing afterwards.
    with TestClient(client.app) as thief:
        thief.cookies.set("ledger_console", cookie, path="/console")
        replay = thief.get("/console/officers/O1", follow_redirects=False)
        assert replay.status_code == 303 and "/console/sign-in" in replay.headers["location"]
    # The expiry is the server's, whatever the browser keeps.
    _as(client, tokens["auditor"])
    assert client.get("/console/officers/O1", follow_redirects=False).status_code == 200
    db = sqlite3.connect(settings.sqlite_path)
    db.execute("UPDATE console_sessions SET expires_at = '2000-01-01T00:00:00.000000+00:00' WHERE ended_at IS NULL")
    db.commit()
    db.close()
    assert client.get("/console/officers/O1", follow_redirects=False).status_code == 303


def test_sign_in_never_returns_outside_the_console_by_dots(world: tuple[TestClient, dict[str, str], Settings]) -> None:
    client, tokens, _ = world
    for target in ("/console/..//evil.example", "/console/%2e%2e/evil", "/console//evil.example"):
        client.cookies.clear()
        form = client.get("/console/sign-in")
        answer = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": tokens["auditor"],
                                                       "next": target}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/console", target


def test_state_changing_forms_refuse_a_missing_or_wrong_csrf_token(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, settings = world
    # Sign-in without the form's token (e.g. posted from another site) opens no session.
    refused = client.post("/console/sign-in", data={"token": tokens["admin"]}, follow_redirects=False)
    assert refused.status_code == 403 and "ledger_console=" not in refused.headers.get("set-cookie", "")
    _as(client, tokens["admin"])
    good = csrf_of(client.get("/console/erase").text)
    for wrong in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": good[:-1]}):
        form = {"officer_id": "O1", "reason": "data_principal_request", "confirm": "yes", **wrong}
        assert client.post("/console/erase/confirm", data=form).status_code == 403
        assert client.post("/console/erase", data=form).status_code == 403
        assert client.post("/console/sign-out", data=wrong, follow_redirects=False).status_code == 403
        retraction = {"officer_id": "O1", "versions": "5, 6", "reason": "duplicate", "confirm": "yes", **wrong}
        correction = {"officer_id": "O1", "name": "Someone Else", "confirm": "yes", **wrong}
        for path, form in (("/console/retract", retraction), ("/console/correct", correction)):
            assert client.post(f"{path}/confirm", data=form).status_code == 403
            assert client.post(path, data=form).status_code == 403
    assert Database(settings) and client.get("/console").status_code == 200  # still signed in
    _as(client, tokens["auditor"])
    record = client.get("/console/officers/O1").text
    assert NAME in record and "Someone Else" not in record  # nothing was erased, retracted or corrected
    assert 'id="no-corrections"' in record


def test_reading_an_officer_leaves_an_access_log_entry_that_only_the_auditor_sees(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, settings = world
    _as(client, tokens["hr_mof"])
    page = client.get("/console/officers/O1").text
    assert 'id="readers"' not in page
    assert [(e["token_name"], e["role"]) for e in _console_log(settings, "O1")] == [("hr-finance", "ministry_hr")]
    _as(client, tokens["auditor"])
    page = client.get("/console/officers/O1").text
    readers = page[page.index('id="readers"'):]
    assert "hr-finance" in readers and "audit-1" in readers
    assert len(_console_log(settings, "O1")) == 2


def test_hostile_names_are_shown_as_text(world: tuple[TestClient, dict[str, str], Settings]) -> None:
    client, tokens, _ = world
    _as(client, tokens["auditor"])
    page = client.get("/console/officers/O3").text
    assert "<script>alert" not in page and "<b>Bold</b>" not in page
    escaped = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &lt;b&gt;Bold&lt;/b&gt;"
    assert page.count(escaped) >= 3  # heading, record, history
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/console/static/console.js" defer>']
    assert HOSTILE not in page


def test_as_of_shows_the_older_record_and_what_changed_between_two_dates(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, _ = world
    _as(client, tokens["officer"])
    now = client.get("/console/officers/O1").text
    assert '<dd id="completed-count">1</dd>' in now and "K-BUD" in now
    then = client.get("/console/officers/O1?as_of=2025-04-02").text
    assert '<dd id="completed-count">0</dd>' in then and "<td>K-BUD</td>" not in then
    assert "Record as of" in then
    before = client.get("/console/officers/O1?as_of=2025-03-01").text
    assert 'id="not-registered"' in before
    changes = client.get("/console/officers/O1?as_of=2025-04-20&compare=2025-04-02").text
    table = changes[changes.index('id="changes"'):changes.index("</table>", changes.index('id="changes"'))]
    assert "<tr><td>enrolments[K-ETH].status</td><td>enrolled</td><td>completed</td></tr>" in table
    assert "<tr><td>completed_count</td><td>0</td><td>1</td></tr>" in table
    assert client.get("/console/officers/O1?as_of=2025-02-30").status_code == 422


def test_the_timeline_lists_events_by_business_time_with_recorded_time(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, _ = world
    _as(client, tokens["auditor"])
    page = client.get("/console/officers/O1").text
    timeline = page[page.index('id="timeline"'):]
    kinds = re.findall(r'<span class="etype">(\w+)</span>', timeline)
    assert kinds == ["OfficerRegistered", "CourseEnrolled", "ProgressRecorded", "CourseCompleted",
                     "CourseEnrolled", "ProgressRecorded"]
    assert timeline.count("recorded <time") == 6
    assert '<svg role="img"' in page and "C1 short by 4" in page  # the competency chart and its gaps


def test_erasure_confirms_the_consequences_then_erases_and_reports_the_scrub(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, settings = world
    _as(client, tokens["admin"])
    form = client.get("/console/erase")
    assert '<select id="reason" name="reason" required' in form.text
    reason, ticket = "data_principal_request", "GR-2025-42"
    confirm = client.post("/console/erase/confirm", data={"csrf": csrf_of(form.text), "officer_id": "O1",
                                                          "reason": reason, "ticket": ticket})
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.text
    assert f'<code id="reason-code">{reason}</code>' in confirm.text and f'<code id="ticket-id">{ticket}</code>' in confirm.text
    assert NAME not in confirm.text  # the admin does not read officers
    for bad in ({"reason": ""}, {"reason": "DPDP request <#42>"}):
        assert client.post("/console/erase/confirm", data={"csrf": csrf_of(form.text), "officer_id": "O1",
                                                           **bad}).status_code == 422
    done = client.post("/console/erase", data={"csrf": csrf_of(confirm.text), "officer_id": "O1",
                                               "reason": reason, "ticket": ticket, "confirm": "yes"})
    assert done.status_code == 200, done.text
    assert '<dd id="scrubbed">yes</dd>' in done.text
    again = client.post("/console/erase", data={"csrf": csrf_of(confirm.text), "officer_id": "NOBODY",
                                                "reason": reason, "confirm": "yes"})
    assert again.status_code == 404
    _as(client, tokens["auditor"])
    record = client.get("/console/officers/O1").text
    assert NAME not in record and "— (erased)" in record and "OfficerErased" in record
    assert f"reason: {reason}" in record and f"ticket: {ticket}" in record  # in the timeline
    assert "Intact" in _verified(client)  # erasure keeps verify passing


def test_the_ministry_page_charts_the_aggregates_and_shows_plans_and_gaps(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, _ = world
    _as(client, tokens["cbc"])
    page = client.get("/console/ministries/MOF").text
    api = _api(client, tokens["cbc"], "/ministries/MOF", {}).json()
    assert f'<strong id="headcount">{api["headcount"]}</strong>' in page
    assert page.count('<svg role="img"') == 3  # activity, hours, plan progress
    assert "2025-26: 1 enrolments" in page or "2025-26: 2 enrolments" in page
    plan = _api(client, tokens["cbc"], "/ministries/MOF/plans/2025-26", {}).json()
    target = plan["targets"][0]
    assert f"<td>{target['competency_id']}</td><td>{target['level']}</td><td>{target['officers']}</td>" in page
    assert 'href="/console/ministries/MOF/gaps.csv"' in page


_KEY_FOLDER_OPENED: list[str] = []
_WATCHED: list[str] = []  # the key file's path (its last checkpoint too), while a test watches it


def _watch_opens(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook: any opening or listing of a path that starts with the watched one, by any thread."""
    watched = _WATCHED and event in ("open", "os.listdir", "os.scandir") and args
    if watched and isinstance(args[0], (str, Path)) and str(args[0]).startswith(_WATCHED[0]):
        _KEY_FOLDER_OPENED.append(f"{event} {args[0]}")


def test_the_integrity_page_reports_verify_the_head_and_status_and_never_touches_the_signing_key(
    world: tuple[TestClient, dict[str, str], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    client, tokens, settings = world
    key = SigningKey.load_or_create(settings.signing_key_path)  # the key exists on this host
    settings.signing_key_path.with_name("signing-key.pem.last.json").write_text("{}")

    def refuse(*_: Any) -> Any:
        raise AssertionError("the web tier loaded a signing key")

    monkeypatch.setattr(SigningKey, "load", refuse)
    monkeypatch.setattr(SigningKey, "load_or_create", refuse)
    sys.addaudithook(_watch_opens)
    _WATCHED.append(str(settings.signing_key_path.parent / "signing-key"))
    try:
        _as(client, tokens["auditor"])
        page = _verified(client)
        assert "Intact" in page and "Not signed here: this server holds no signing key" in page
        assert key.key_id not in page
        assert 'data-refresh="/console/integrity/status"' in page and 'id="dead-letter-count">Dead letters: 0' in page
        # An intruder with database access rewrites a stored event: the page says so.
        db = sqlite3.connect(settings.sqlite_path)
        oid = Officer.create_id("O1").hex
        (state,) = db.execute("SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 3",
                              (oid,)).fetchone()
        forged = state.replace(b'"percent":100', b'"percent":90')
        assert forged != state
        db.execute("UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 3",
                   (forged, oid))
        db.commit()
        db.close()
        page = _verified(client)
        assert "Intact" not in page and 'id="breaks"' in page and "officer_id=O1" in page
        assert key.key_id not in page
    finally:
        _WATCHED.clear()
    assert _KEY_FOLDER_OPENED == []


def test_the_web_tier_names_no_checkpoint_signing_key() -> None:
    package = Path(__file__).resolve().parents[2] / "ledger"
    for path in [*package.glob("console/**/*.py"), *package.glob("api/**/*.py")]:
        source = path.read_text()
        for name in ("signing_key", "SigningKey", "integrity.signer", "sign("):
            assert name not in source, (path, name)


def test_integrity_pages_never_wait_for_a_verification_and_start_at_most_one(
    world: tuple[TestClient, dict[str, str], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.read.audit import AuditReader

    client, tokens, _ = world
    _as(client, tokens["auditor"])
    release, started = threading.Event(), []

    def slow_verify(self: Any) -> tuple[int, list[Any]]:
        started.append(1)
        release.wait(30)
        return 0, []

    monkeypatch.setattr(AuditReader, "verify", slow_verify)
    try:
        page = client.get("/console/integrity")
        for _ in range(20):  # pages and requests for more: answered at once, no second run
            client.post("/console/integrity/verify", data={"csrf": csrf_of(page.text)})
            assert 'id="verify-running"' in client.get("/console/integrity").text
        assert len(started) == 1
    finally:
        release.set()


def test_sign_in_returns_only_to_a_console_page(world: tuple[TestClient, dict[str, str], Settings]) -> None:
    client, tokens, _ = world
    for target, expected in (("/console/officers/O1?as_of=2025-04-02", "/console/officers/O1?as_of=2025-04-02"),
                             ("https://evil.example/", "/console"), ("//evil.example/console", "/console"),
                             ("/consoled", "/console")):
        client.cookies.clear()
        form = client.get("/console/sign-in", params={"next": target})
        assert f'name="next" value="{target.replace("&", "&amp;")}"' in form.text
        answer = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": tokens["auditor"],
                                                       "next": target}, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, expected), target


def test_a_signed_in_reviewer_may_sign_in_again_with_another_token(
    world: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, tokens, _ = world
    _as(client, tokens["hr_mof"])
    sign_in(client, tokens["auditor"])
    assert "audit-1" in client.get("/console").text
    form = client.get("/console/sign-in")
    wrong = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": "lrl_nope"})
    assert wrong.status_code == 401
    again = client.post("/console/sign-in", data={"csrf": csrf_of(wrong.text), "token": tokens["cbc"]},
                        follow_redirects=False)
    assert again.status_code == 303 and "commission" in client.get("/console").text


# Every console form that changes something, and the one role that may send it.
FORMS = [("/console/integrity/verify", "auditor"), ("/console/erase/confirm", "admin"), ("/console/erase", "admin")]


def test_every_form_is_refused_to_other_roles_before_its_body_is_read(
    world: tuple[TestClient, dict[str, str], Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ledger.console import session

    client, tokens, settings = world
    read: list[str] = []
    real = session.read_form

    async def spy(request: Any, sign_in: bool = False) -> dict[str, str]:
        read.append(request.url.path)
        return await real(request, sign_in)

    monkeypatch.setattr(session, "read_form", spy)
    for path, allowed in FORMS:
        for role in ROLES:
            if role == allowed:
                continue
            home = _as(client, tokens[role]).get("/console").text
            answer = client.post(path, data={"csrf": csrf_of(home), "officer_id": "O1", "reason": "other",
                                             "confirm": "yes"})
            assert answer.status_code == 403, (path, role, answer.status_code)
            huge = client.post(path, content=b"a=" + b"x" * (20 * 1024 * 1024),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert huge.status_code == 403, (path, role, huge.status_code)
    forms = {path for path, _ in FORMS}
    assert [p for p in read if p in forms] == []  # no refused form was read (signing in reads its own)
    _as(client, tokens["auditor"])
    page = client.get("/console/integrity")
    assert client.post("/console/integrity/verify", data={"csrf": csrf_of(page.text)},
                       follow_redirects=False).status_code == 303
    assert [p for p in read if p in forms] == ["/console/integrity/verify"]  # the spy sees a form that is read


def test_pages_polling_the_status_share_one_report(world: tuple[TestClient, dict[str, str], Settings]) -> None:
    client, tokens, _ = world
    _as(client, tokens["auditor"])
    services = client.app.state.services  # type: ignore[attr-defined]
    before = services.status.computed
    started = time.monotonic()
    polls = 0
    while time.monotonic() - started < 1.0:
        assert client.get("/console/integrity/status").status_code == 200
        polls += 1
    # Two-second reports: one or two computed for every poll of that second (was one per poll).
    assert polls >= 5 and services.status.computed - before <= 2, (polls, services.status.computed - before)
