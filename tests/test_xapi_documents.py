"""The xAPI document resources, from the specification (xAPI 1.0.3 Communication 2.2-2.7 and 3.1;
IEEE 9274.1.1-2023 4.1.4 Concurrency and 4.1.6.2-4.1.6.6): state, activity profile and agent
profile documents (ETags, If-Match / If-None-Match, 409 for a PUT without either, JSON merge,
``since``, delete all, parameter errors), the Agents and Activities Resources, who reads what,
an officer's state document erased with the officer, and hostile bodies.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from ledger.api.app import create_app
from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import data_key, lines, reference, register

V2, V1 = "2.0.0", "1.0.3"
ACTIVITY = "http://example.org/courses/budgeting"
LEARNER = {"objectType": "Agent", "name": "Meera Pillai", "mbox": "mailto:meera@example.org"}
STATE, ACTIVITY_PROFILE, AGENT_PROFILE = "/xapi/activities/state", "/xapi/activities/profile", "/xapi/agents/profile"


class Lrs:
    """A ledger's ``/xapi`` with an ``lrs`` token (and a second one, and an auditor's)."""

    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings = settings
        self.client = client
        db = Database(settings)
        try:
            self.tokens = {"lrs": ("lms", create_token(db, "lms", "lrs")),
                           "other": ("other-lms", create_token(db, "other-lms", "lrs")),
                           "auditor": ("audit", create_token(db, "audit", "auditor")),
                           "ingest": ("feed", create_token(db, "feed", "ingest"))}
        finally:
            db.close()

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None,
             headers: dict[str, str] | None = None, who: str = "lrs", version: str = V2) -> Response:
        name, token = self.tokens[who]
        query = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in (params or {}).items()}
        sent = {"X-Experience-API-Version": version, "Authorization": f"Bearer {token}", **(headers or {})}
        content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        if body is not None and not isinstance(body, bytes):
            sent.setdefault("Content-Type", "application/json")
        answer: Response = self.client.request(method, path, params=query, content=content, headers=sent)
        return answer


@pytest.fixture
def lrs(settings: Settings) -> Iterator[Lrs]:
    with TestClient(create_app(settings, project=False)) as client:
        yield Lrs(settings, client)


@pytest.fixture
def lite(sqlite_settings: Settings) -> Iterator[Lrs]:
    with TestClient(create_app(sqlite_settings, project=False)) as client:
        yield Lrs(sqlite_settings, client)


def state(state_id: str = "bookmark", **extra: Any) -> dict[str, Any]:
    return {"activityId": ACTIVITY, "agent": LEARNER, "stateId": state_id, **extra}


def sha1_tag(content: bytes) -> str:
    return '"' + hashlib.sha1(content).hexdigest() + '"'


# ---- storing and reading a document ------------------------------------------------------

def test_a_binary_document_comes_back_with_its_content_type_etag_and_last_modified(lrs: Lrs) -> None:
    content = bytes(range(256)) * 4  # not UTF-8
    put = lrs.call("PUT", STATE, state("blob"), content, {"Content-Type": "application/octet-stream"})
    assert put.status_code == 204, put.text
    got = lrs.call("GET", STATE, state("blob"))
    assert got.status_code == 200
    assert got.content == content
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["etag"] == sha1_tag(content)
    modified = datetime.strptime(got.headers["last-modified"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
    assert abs(modified - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert got.headers["x-experience-api-version"] == V2
    head = lrs.call("HEAD", STATE, state("blob"))
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == sha1_tag(content)


def test_a_missing_document_is_404(lrs: Lrs) -> None:
    assert lrs.call("GET", STATE, state("never")).status_code == 404
    assert lrs.call("GET", ACTIVITY_PROFILE, {"activityId": ACTIVITY, "profileId": "never"}).status_code == 404


# ---- concurrency (1.0.3 Communication 3.1; IEEE 9274.1.1 4.1.4) ---------------------------

@pytest.mark.parametrize("path,params", [
    (STATE, state("s1")),
    (ACTIVITY_PROFILE, {"activityId": ACTIVITY, "profileId": "p1"}),
    (AGENT_PROFILE, {"agent": LEARNER, "profileId": "p1"}),
])
def test_if_match_and_if_none_match_on_put_post_and_delete(lrs: Lrs, path: str, params: dict[str, Any]) -> None:
    assert lrs.call("PUT", path, params, {"v": 1}, {"If-None-Match": "*"}).status_code == 204
    first = lrs.call("GET", path, params)
    tag = first.headers["etag"]
    assert tag == sha1_tag(first.content)
    assert lrs.call("PUT", path, params, {"v": 2}, {"If-None-Match": "*"}).status_code == 412
    for method in ("PUT", "POST"):
        refused = lrs.call(method, path, params, {"v": 2}, {"If-Match": '"1234"'})
        assert refused.status_code == 412, refused.text
        assert lrs.call("GET", path, params).json() == {"v": 1}
    assert lrs.call("DELETE", path, params, headers={"If-Match": '"1234"'}).status_code == 412
    assert lrs.call("GET", path, params).json() == {"v": 1}
    assert lrs.call("PUT", path, params, {"v": 2}, {"If-Match": tag}).status_code == 204
    second = lrs.call("GET", path, params)
    assert second.json() == {"v": 2} and second.headers["etag"] != tag
    assert lrs.call("POST", path, params, {"w": 3}, {"If-Match": second.headers["etag"]}).status_code == 204
    third = lrs.call("GET", path, params)
    assert third.json() == {"v": 2, "w": 3}
    assert lrs.call("DELETE", path, params, headers={"If-Match": second.headers["etag"]}).status_code == 412
    assert lrs.call("DELETE", path, params, headers={"If-Match": third.headers["etag"]}).status_code == 204
    assert lrs.call("GET", path, params).status_code == 404
    assert lrs.call("PUT", path, params, {"v": 4}, {"If-Match": "*"}).status_code == 412  # nothing to match


@pytest.mark.parametrize("path,params", [
    (ACTIVITY_PROFILE, {"activityId": ACTIVITY, "profileId": "p2"}),
    (AGENT_PROFILE, {"agent": LEARNER, "profileId": "p2"}),
])
@pytest.mark.parametrize("version", [V1, V2])
def test_a_profile_put_without_either_header(lite: Lrs, path: str, params: dict[str, Any], version: str) -> None:
    new = lite.call("PUT", path, params, {"v": 1}, version=version)
    assert new.status_code == 400 and "If-None-Match" in new.json()["error"]
    assert lite.call("POST", path, params, {"v": 1}, version=version).status_code == 204
    conflict = lite.call("PUT", path, params, {"v": 2}, version=version)
    assert conflict.status_code == 409
    assert "If-Match" in conflict.json()["error"]
    assert lite.call("GET", path, params, version=version).json() == {"v": 1}


def test_a_state_put_without_headers_replaces_under_1_0_3_and_conflicts_under_2_0(lite: Lrs) -> None:
    assert lite.call("PUT", STATE, state("s2"), {"v": 1}, version=V1).status_code == 204
    assert lite.call("PUT", STATE, state("s2"), {"v": 2}, version=V1).status_code == 204
    assert lite.call("GET", STATE, state("s2")).json() == {"v": 2}
    assert lite.call("PUT", STATE, state("s2"), {"v": 3}, version=V2).status_code == 409
    assert lite.call("GET", STATE, state("s2")).json() == {"v": 2}
    assert lite.call("PUT", STATE, state("s3"), {"v": 1}, version=V2).status_code == 204  # new: no header needed


# ---- POST: merge (1.0.3 Communication 2.2; IEEE 9274.1.1 4.1.6.2) ----------------------------

def test_post_merges_json_objects_one_level_deep(lrs: Lrs) -> None:
    first = {"car": {"make": "Ford", "model": "Escape"}, "driver": "Dale", "keep": True}
    assert lrs.call("POST", STATE, state("m"), first).status_code == 204  # absent: stored as a PUT
    assert lrs.call("GET", STATE, state("m")).json() == first
    assert lrs.call("POST", STATE, state("m"), {"car": {"make": "Dodge"}, "driver": "Jeff"}).status_code == 204
    assert lrs.call("GET", STATE, state("m")).json() == {"car": {"make": "Dodge"}, "driver": "Jeff", "keep": True}


@pytest.mark.parametrize("body,content_type", [
    (b"abcdefg", "not/json"),
    (b'{"a": 1}{', "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"text"', "application/json"),
])
def test_post_that_cannot_merge_is_400_and_changes_nothing(lite: Lrs, body: bytes, content_type: str) -> None:
    assert lite.call("POST", STATE, state("m2"), {"a": 0}).status_code == 204
    refused = lite.call("POST", STATE, state("m2"), body, {"Content-Type": content_type})
    assert refused.status_code == 400, refused.text
    assert lite.call("GET", STATE, state("m2")).json() == {"a": 0}


def test_posting_json_onto_a_document_that_is_not_json_is_400(lite: Lrs) -> None:
    assert lite.call("PUT", STATE, state("bin"), b"/ asdf /", {"Content-Type": "application/octet-stream"}).status_code == 204
    assert lite.call("POST", STATE, state("bin"), {"a": 1}).status_code == 400
    got = lite.call("GET", STATE, state("bin"))
    assert got.content == b"/ asdf /" and got.headers["content-type"] == "application/octet-stream"


# ---- lists, since, registration, delete all ---------------------------------------------

def test_ids_since_and_registrations_and_delete_all(lrs: Lrs) -> None:
    registration = str(uuid.uuid4())
    scope = {"activityId": ACTIVITY, "agent": LEARNER}
    assert lrs.call("PUT", STATE, state("old"), {"n": 0}).status_code == 204
    time.sleep(0.01)
    since = datetime.now(timezone.utc).isoformat()
    time.sleep(0.01)
    assert lrs.call("PUT", STATE, state("new"), {"n": 1}).status_code == 204
    assert lrs.call("PUT", STATE, state("in-reg", registration=registration), {"n": 2}).status_code == 204
    # Many documents: "Activity + Agent [+ registration if specified]" (1.0.3 Communication 2.3).
    assert lrs.call("GET", STATE, scope).json() == ["in-reg", "new", "old"]
    assert lrs.call("GET", STATE, {**scope, "since": since}).json() == ["in-reg", "new"]
    assert lrs.call("GET", STATE, {**scope, "registration": registration}).json() == ["in-reg"]
    assert lrs.call("GET", STATE, state("in-reg")).status_code == 404  # one document: the registration is in its key
    assert lrs.call("GET", STATE, {**scope, "since": "yesterday"}).status_code == 400
    assert lrs.call("DELETE", STATE, {**scope, "registration": registration}).status_code == 204
    assert lrs.call("GET", STATE, scope).json() == ["new", "old"]
    assert lrs.call("PUT", STATE, state("in-reg", registration=registration), {"n": 2}).status_code == 204
    assert lrs.call("DELETE", STATE, scope).status_code == 204
    assert lrs.call("GET", STATE, scope).json() == []
    assert lrs.call("GET", STATE, {**scope, "registration": registration}).json() == []
    other = {"activityId": ACTIVITY, "agent": {"mbox": "mailto:someone.else@example.org"}}
    assert lrs.call("PUT", STATE, {**other, "stateId": "x"}, {"n": 3}).status_code == 204
    assert lrs.call("GET", STATE, other).json() == ["x"]


def test_profile_ids_since(lrs: Lrs) -> None:
    params = {"agent": LEARNER}
    for profile in ("a", "b"):
        assert lrs.call("POST", AGENT_PROFILE, {**params, "profileId": profile}, {"p": profile}).status_code == 204
    assert lrs.call("GET", AGENT_PROFILE, params).json() == ["a", "b"]
    later = (datetime.now(timezone.utc) + timedelta(seconds=5)).isoformat()
    assert lrs.call("GET", AGENT_PROFILE, {**params, "since": later}).json() == []
    assert lrs.call("POST", ACTIVITY_PROFILE, {"activityId": ACTIVITY, "profileId": "c"}, {"p": 1}).status_code == 204
    assert lrs.call("GET", ACTIVITY_PROFILE, {"activityId": ACTIVITY}).json() == ["c"]


# ---- parameters ---------------------------------------------------------------------------

BAD = [
    ("PUT", STATE, {"agent": LEARNER, "stateId": "s"}, "activityId"),
    ("GET", STATE, {"agent": LEARNER}, "activityId"),
    ("DELETE", STATE, {"activityId": ACTIVITY}, "agent"),
    ("POST", STATE, {"activityId": ACTIVITY, "agent": LEARNER}, "stateId"),
    ("PUT", STATE, state(""), "stateId"),
    ("GET", STATE, {**state(), "since": "2024-01-01T00:00:00"}, "since"),  # 2.0.0: a time zone is required
    ("PUT", STATE, {**state(), "agent": '{"mbox": "mailto:a@example.org"'}, "agent"),
    ("GET", STATE, {**state(), "agent": {"name": "no identifier"}}, "agent"),
    ("GET", STATE, {**state(), "agent": {"objectType": "Group", "member": [LEARNER]}}, "agent"),
    ("GET", STATE, {**state(), "activityId": "not an iri"}, "activityId"),
    ("PUT", STATE, {**state(), "registration": "true"}, "registration"),
    ("GET", STATE, {**state(), "colour": "blue"}, "colour"),
    ("PUT", STATE, {**state(), "since": "2024-01-01T00:00:00Z"}, "since"),
    ("PUT", ACTIVITY_PROFILE, {"activityId": ACTIVITY}, "profileId"),
    ("GET", ACTIVITY_PROFILE, {"profileId": "p"}, "activityId"),
    ("DELETE", AGENT_PROFILE, {"profileId": "p"}, "agent"),
    ("GET", AGENT_PROFILE, {"agent": LEARNER, "activityId": ACTIVITY}, "activityId"),
    ("GET", "/xapi/agents", {}, "agent"),
    ("GET", "/xapi/agents", {"agent": {"objectType": "Agent"}}, "agent"),
    ("GET", "/xapi/activities", {}, "activityId"),
    ("GET", "/xapi/activities", {"activityId": "true"}, "activityId"),
]


@pytest.mark.parametrize("method,path,params,named", BAD)
def test_bad_parameters_are_400_naming_the_parameter(lite: Lrs, method: str, path: str, params: dict[str, Any],
                                                     named: str) -> None:
    answer = lite.call(method, path, params, {"a": 1} if method in ("PUT", "POST") else None,
                       {"If-None-Match": "*"} if method == "PUT" else None)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]
    assert lite.call("GET", STATE, {"activityId": ACTIVITY, "agent": LEARNER}).json() == []


def test_the_version_header_is_required(lite: Lrs) -> None:
    answer = lite.client.get(STATE, params={"activityId": ACTIVITY, "agent": json.dumps(LEARNER)},
                             headers={"Authorization": f"Bearer {lite.tokens['lrs'][1]}"})
    assert answer.status_code == 400 and "X-Experience-API-Version" in answer.json()["error"]


# ---- who reads and writes -----------------------------------------------------------------

def test_each_lrs_token_has_its_own_documents_and_auditors_read_them_all(lrs: Lrs) -> None:
    assert lrs.call("PUT", STATE, state("mine"), {"by": "lms"}).status_code == 204
    assert lrs.call("GET", STATE, state("mine"), who="other").status_code == 404
    assert lrs.call("GET", STATE, {"activityId": ACTIVITY, "agent": LEARNER}, who="other").json() == []
    assert lrs.call("PUT", STATE, state("mine"), {"by": "other"}, who="other").status_code == 204
    assert lrs.call("GET", STATE, state("mine")).json() == {"by": "lms"}
    audited = lrs.call("GET", STATE, state("mine"), who="auditor")
    assert audited.status_code == 200 and audited.json() == {"by": "other"}  # the one written last
    assert lrs.call("GET", STATE, {"activityId": ACTIVITY, "agent": LEARNER}, who="auditor").json() == ["mine"]
    assert lrs.call("PUT", STATE, state("a"), {"x": 1}, who="auditor").status_code == 403
    assert lrs.call("DELETE", STATE, state("mine"), who="auditor").status_code == 403
    assert lrs.call("GET", STATE, state("mine"), who="ingest").status_code == 403
    anonymous = lrs.client.get(STATE, params={"activityId": ACTIVITY, "agent": json.dumps(LEARNER), "stateId": "mine"},
                               headers={"X-Experience-API-Version": V2})
    assert anonymous.status_code == 401
    assert lrs.call("GET", STATE, state("mine")).json() == {"by": "lms"}


# ---- agents and activities ---------------------------------------------------------------

def _statement(activity: dict[str, Any], actor: dict[str, Any] = LEARNER) -> dict[str, Any]:
    return {"actor": actor, "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"}, "object": activity}


def test_the_agents_resource_returns_a_person(lrs: Lrs) -> None:
    stored = lrs.call("POST", "/xapi/statements", body=[_statement({"id": ACTIVITY})])
    assert stored.status_code == 200, stored.text
    person = lrs.call("GET", "/xapi/agents", {"agent": {"mbox": LEARNER["mbox"]}})
    assert person.status_code == 200
    assert person.json() == {"objectType": "Person", "name": [LEARNER["name"]], "mbox": [LEARNER["mbox"]]}
    unknown = lrs.call("GET", "/xapi/agents", {"agent": {"mbox": "mailto:nobody@example.org"}})
    assert unknown.json() == {"objectType": "Person", "mbox": ["mailto:nobody@example.org"]}
    assert lrs.call("GET", "/xapi/agents", {"agent": {"mbox": LEARNER["mbox"]}}, who="other").json() == \
        {"objectType": "Person", "mbox": [LEARNER["mbox"]]}  # the names come from its own statements only


def test_the_activities_resource_merges_the_definitions_statements_gave(lrs: Lrs) -> None:
    first = {"objectType": "Activity", "id": ACTIVITY, "definition": {
        "name": {"en-US": "Budgeting"}, "description": {"en-US": "Budgets"},
        "type": "http://adlnet.gov/expapi/activities/course"}}
    second = {"objectType": "Activity", "id": ACTIVITY, "definition": {"name": {"hi-IN": "बजट"}}}
    assert lrs.call("POST", "/xapi/statements", body=[_statement(first), _statement(second)]).status_code == 200
    found = lrs.call("GET", "/xapi/activities", {"activityId": ACTIVITY})
    assert found.status_code == 200
    assert found.json() == {"objectType": "Activity", "id": ACTIVITY, "definition": {
        "name": {"en-US": "Budgeting", "hi-IN": "बजट"}, "description": {"en-US": "Budgets"},
        "type": "http://adlnet.gov/expapi/activities/course"}}
    bare = lrs.call("GET", "/xapi/activities", {"activityId": "http://example.org/never-seen"})
    assert bare.json() == {"objectType": "Activity", "id": "http://example.org/never-seen"}


# ---- personal data and erasure --------------------------------------------------------------

def _raw_bytes(settings: Settings) -> bytes:
    """Every byte the store keeps: the SQLite files, or PostgreSQL's document and key rows."""
    if settings.is_postgres:
        with psycopg.connect(settings.store) as conn:
            rows = conn.execute("SELECT content, kind, doc_id, agent, content_type FROM xapi_documents").fetchall()
        return b"".join(bytes(r[0]) + "|".join(map(str, r[1:])).encode() for r in rows)
    folder = Path(settings.sqlite_path).parent
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


def test_an_officers_state_document_is_sealed_and_unreadable_after_erasure(lrs: Lrs) -> None:
    ledger = Ledger(lrs.settings)
    outcomes = list(ledger.ingest(lines([*reference(), register("O1")])))
    assert {o.status for o in outcomes} == {"accepted"}
    officer = {"objectType": "Agent", "account": {"homePage": lrs.settings.officer_homepage, "name": "O1"}}
    marker = "bookmark-of-asha-" + uuid.uuid4().hex
    params = {"activityId": ACTIVITY, "agent": officer, "stateId": "resume"}
    assert lrs.call("PUT", STATE, params, {"page": marker}).status_code == 204
    assert lrs.call("PUT", AGENT_PROFILE, {"agent": officer, "profileId": "prefs"}, {"note": marker},
                    {"If-None-Match": "*"}).status_code == 204
    assert lrs.call("GET", STATE, params).json() == {"page": marker}
    assert marker.encode() not in _raw_bytes(lrs.settings)  # never plaintext at rest
    ledger.erase("O1", reason="request")  # False only when the scrub of old key bytes must wait
    assert data_key(ledger, "O1") is None
    assert lrs.call("GET", STATE, params).status_code == 404
    assert lrs.call("GET", STATE, {"activityId": ACTIVITY, "agent": officer}).json() == []
    assert lrs.call("GET", AGENT_PROFILE, {"agent": officer, "profileId": "prefs"}).status_code == 404
    assert marker.encode() not in _raw_bytes(lrs.settings)


def test_a_learners_documents_are_not_plaintext_and_name_no_identifier(lite: Lrs) -> None:
    marker = "private-note-" + uuid.uuid4().hex
    assert lite.call("PUT", STATE, state("n"), {"note": marker}).status_code == 204
    raw = _raw_bytes(lite.settings)
    assert marker.encode() not in raw
    assert b"meera@example.org" not in raw
    assert lite.call("GET", STATE, state("n")).json() == {"note": marker}


# ---- hostile bodies -----------------------------------------------------------------------

def test_a_20_mb_document_is_refused_and_nothing_is_stored(lite: Lrs) -> None:
    answer = lite.call("PUT", STATE, state("big"), b"x" * (20 * 1024 * 1024), {"Content-Type": "text/plain"})
    assert answer.status_code == 413
    assert lite.call("GET", STATE, state("big")).status_code == 404


@pytest.mark.parametrize("body", [
    b'{"a": "\xff\xfe"}',  # not UTF-8
    b"[" * 100_000 + b"]" * 100_000,  # nesting 100,000 deep
    b'{"a": ' + b"9" * 5000 + b"}",  # a 5,000-digit number
    b'{"a": "\\ud800"}',  # a lone surrogate
])
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_hostile_json_is_400_and_neighbours_are_untouched(lite: Lrs, body: bytes, method: str) -> None:
    assert lite.call("PUT", STATE, state("neighbour"), {"ok": True}).status_code == 204
    answer = lite.call(method, STATE, state("hostile"), body, {"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text[:200]
    assert len(answer.content) < 2000
    assert lite.call("GET", STATE, state("hostile")).status_code == 404
    assert lite.call("GET", STATE, state("neighbour")).json() == {"ok": True}


def test_a_hostile_agent_parameter_is_400(lite: Lrs) -> None:
    deep = "[" * 10_000 + "]" * 10_000  # as deep as a URL the client sends can hold (64 KiB)
    for agent in (deep, '{"mbox": "mailto:\\ud800@example.org"}', "\x00"):
        answer = lite.call("GET", STATE, {"activityId": ACTIVITY, "agent": agent, "stateId": "s"})
        assert answer.status_code == 400, answer.text[:200]


def test_an_agent_nested_100_000_deep_in_the_alternate_syntax_is_400(lite: Lrs) -> None:
    """1.0.3's alternate request syntax carries the parameters in a form body, of any length."""
    from urllib.parse import urlencode

    form = urlencode({"activityId": ACTIVITY, "agent": "[" * 100_000 + "]" * 100_000, "stateId": "s",
                      "X-Experience-API-Version": V1, "Authorization": f"Bearer {lite.tokens['lrs'][1]}"})
    answer = lite.client.post(STATE, params={"method": "GET"}, content=form.encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 400, answer.text[:200]
    assert "agent" in answer.json()["error"]


def test_concurrent_first_puts_with_if_none_match_store_exactly_one(settings: Settings) -> None:
    """Eight writers race to create one document with ``If-None-Match: *``: one wins, seven get 412,
    and the stored document is the winner's (PostgreSQL: row locks and the key's uniqueness)."""
    import threading

    from ledger.xapi.documents import Conditions, DocumentStore, Refused, Scope

    ledger = Ledger(settings)
    local = threading.local()
    opened: list[Database] = []

    def db() -> Database:
        if getattr(local, "db", None) is None:
            local.db = Database(settings)
            opened.append(local.db)
        found: Database = local.db
        return found

    store = DocumentStore(ledger, settings.officer_homepage, db)
    scope = Scope("state", ACTIVITY, {"mbox": "mailto:racer@example.org"}, "")
    barrier = threading.Barrier(8)
    results: dict[int, int] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.write(scope, "race", "lms", "PUT", json.dumps({"i": i}).encode(), "application/json", {"i": i},
                        Conditions(if_none_match="*"))
            results[i] = 204
        except Refused as exc:
            results[i] = exc.status

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, status in results.items() if status == 204]
    assert len(winners) == 1 and sorted(results.values()) == [204] + [412] * 7
    found = store.get(scope, "race", "lms")
    for handle in opened:
        handle.close()
    assert found is not None and json.loads(found.content) == {"i": winners[0]}


@pytest.mark.parametrize("params,named", [
    (state("nul\x00here"), "stateId"),
    (state("s" * 5000), "stateId"),
    ({**state(), "activityId": ACTIVITY + "/" + "a" * 5000}, "activityId"),
    ({"activityId": ACTIVITY, "profileId": "p" * 1025}, "profileId"),
])
def test_a_hostile_document_key_is_400_on_both_stores(lrs: Lrs, params: dict[str, Any], named: str) -> None:
    path = ACTIVITY_PROFILE if "profileId" in params else STATE
    answer = lrs.call("PUT", path, params, {"a": 1}, {"If-None-Match": "*"})
    assert answer.status_code == 400, answer.text[:200]
    assert named in answer.json()["error"]
    assert lrs.call("PUT", STATE, state("fine"), {"a": 1}).status_code == 204
