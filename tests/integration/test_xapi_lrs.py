"""The xAPI Statement Resource, written from the specification (xAPI 1.0.3 Communication 1-3 and
Data 2, IEEE 9274.1.1-2023): headers, PUT/POST/GET/HEAD, conflicts, voiding, queries, paging."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.config import Settings
from tests.integration.xapi_world import V2, VERBS, basic, build, lrs_settings, post, statement


@pytest.fixture
def lrs(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    configured = lrs_settings(settings)
    tokens = build(configured)
    with TestClient(create_app(configured, project=False)) as client:
        yield client, {name: basic(name, token)["Authorization"] for name, token in tokens.items()}


def h(auth: dict[str, str], name: str, **extra: str) -> dict[str, str]:
    return {**V2, "Authorization": auth[name], **extra}


def test_about_needs_no_version_or_token_and_names_both_versions(lrs: Any) -> None:
    client, _ = lrs
    r = client.get("/xapi/about")
    assert r.status_code == 200
    assert set(r.json()["version"]) == {"2.0.0", "1.0.3"}
    assert r.headers["X-Experience-API-Version"] == "2.0.0"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_a_request_without_the_version_header_is_400_with_the_header_in_the_answer(lrs: Any, method: str) -> None:
    client, auth = lrs
    r = client.request(method, "/xapi/statements", headers={"Authorization": auth["lms-a"]})
    assert r.status_code == 400
    assert r.headers["X-Experience-API-Version"]
    bad = client.get("/xapi/statements", headers={"Authorization": auth["lms-a"], "X-Experience-API-Version": "3.0"})
    assert bad.status_code == 400


def test_post_then_get_by_id_returns_it_with_stored_authority_and_version(lrs: Any) -> None:
    client, auth = lrs
    stmt = statement()
    r = post(client, h(auth, "lms-a"), stmt)
    assert r.status_code == 200 and r.json() == [stmt["id"]]
    got = client.get(f"/xapi/statements?statementId={stmt['id']}", headers=h(auth, "lms-a"))
    assert got.status_code == 200
    body = got.json()
    assert body["actor"] == stmt["actor"] and body["verb"] == stmt["verb"]
    assert body["stored"].endswith("Z") and body["version"] == "2.0.0"
    assert body["authority"]["account"]["name"] == "lms-a"
    assert got.headers["X-Experience-API-Consistent-Through"] and got.headers["Last-Modified"]


def test_post_of_an_array_assigns_missing_ids_and_answers_them_in_order(lrs: Any) -> None:
    client, auth = lrs
    first, second = statement(), statement()
    del second["id"]
    r = post(client, h(auth, "lms-a"), [first, second])
    ids = r.json()
    assert r.status_code == 200 and ids[0] == first["id"] and uuid.UUID(ids[1])


def test_put_stores_with_the_given_id_and_conflicts_only_on_other_content(lrs: Any) -> None:
    client, auth = lrs
    stmt = statement()
    sid = stmt.pop("id")
    url = f"/xapi/statements?statementId={sid}"
    assert client.put(url, json=stmt, headers=h(auth, "lms-a")).status_code == 204
    assert client.put(url, json=stmt, headers=h(auth, "lms-a")).status_code == 204  # same content again
    assert post(client, h(auth, "lms-a"), {**stmt, "id": sid}).status_code == 200
    other = {**stmt, "verb": {"id": VERBS + "attended"}}
    assert client.put(url, json=other, headers=h(auth, "lms-a")).status_code == 409
    assert post(client, h(auth, "lms-a"), [statement(), {**other, "id": sid}]).status_code == 409
    assert client.put("/xapi/statements", json=stmt, headers=h(auth, "lms-a")).status_code == 400
    mismatch = {**stmt, "id": str(uuid.uuid4())}
    assert client.put(url, json=mismatch, headers=h(auth, "lms-a")).status_code == 400


def test_a_batch_with_one_invalid_statement_stores_none_of_them(lrs: Any) -> None:
    client, auth = lrs
    good = statement()
    r = post(client, h(auth, "lms-a"), [good, {"actor": {"mbox": "not-an-email"}, "verb": {}, "object": {}}])
    assert r.status_code == 400
    assert client.get(f"/xapi/statements?statementId={good['id']}", headers=h(auth, "lms-a")).status_code == 404


def test_voiding_hides_the_target_except_by_voided_statement_id_and_cannot_be_voided(lrs: Any) -> None:
    client, auth = lrs
    target = statement()
    post(client, h(auth, "lms-a"), target)
    voiding = statement("voided")
    voiding["object"] = {"objectType": "StatementRef", "id": target["id"]}
    assert post(client, h(auth, "lms-a"), voiding).status_code == 200
    assert client.get(f"/xapi/statements?statementId={target['id']}", headers=h(auth, "lms-a")).status_code == 404
    found = client.get(f"/xapi/statements?voidedStatementId={target['id']}", headers=h(auth, "lms-a"))
    assert found.status_code == 200 and found.json()["id"] == target["id"]
    listed = [s["id"] for s in client.get("/xapi/statements", headers=h(auth, "lms-a")).json()["statements"]]
    assert voiding["id"] in listed and target["id"] not in listed
    again = statement("voided")
    again["object"] = {"objectType": "StatementRef", "id": voiding["id"]}
    assert post(client, h(auth, "lms-a"), again).status_code == 400
    not_voided = client.get(f"/xapi/statements?voidedStatementId={voiding['id']}", headers=h(auth, "lms-a"))
    assert not_voided.status_code == 404


def test_filters_agent_verb_activity_registration_and_related(lrs: Any) -> None:
    client, auth = lrs
    registration = str(uuid.uuid4())
    a = statement("attended", "http://example.com/a/x", context={"registration": registration})
    b = statement("experienced", "http://example.com/a/y",
                  context={"contextActivities": {"parent": [{"id": "http://example.com/a/x"}]}})
    c = statement("experienced", "http://example.com/a/z")
    c["actor"] = {"mbox": "mailto:someone.else@example.org"}
    post(client, h(auth, "lms-a"), [a, b, c])

    def ids(query: str) -> set[str]:
        r = client.get(f"/xapi/statements?{query}", headers=h(auth, "lms-a"))
        assert r.status_code == 200, r.text
        return {s["id"] for s in r.json()["statements"]}

    assert ids("verb=" + quote(VERBS + "attended")) == {a["id"]}
    assert ids("activity=" + quote("http://example.com/a/x")) == {a["id"]}
    assert ids("activity=" + quote("http://example.com/a/x") + "&related_activities=true") == {a["id"], b["id"]}
    assert ids("registration=" + registration) == {a["id"]}
    agent = quote('{"mbox": "mailto:someone.else@example.org"}')
    assert ids("agent=" + agent) == {c["id"]}
    assert ids("agent=" + quote('{"mbox": "mailto:ravi.learner@example.org"}')) == {a["id"], b["id"]}


def test_since_until_limit_more_and_ascending(lrs: Any) -> None:
    client, auth = lrs
    stmts = [statement() for _ in range(5)]
    for s in stmts:
        post(client, h(auth, "lms-a"), s)
    page = client.get("/xapi/statements?limit=2", headers=h(auth, "lms-a")).json()
    seen = [s["id"] for s in page["statements"]]
    while page["more"]:
        page = client.get(page["more"], headers=h(auth, "lms-a")).json()
        seen += [s["id"] for s in page["statements"]]
    assert seen == [s["id"] for s in reversed(stmts)]
    ascending = client.get("/xapi/statements?ascending=true", headers=h(auth, "lms-a")).json()["statements"]
    assert [s["id"] for s in ascending] == [s["id"] for s in stmts]
    stored = [s["stored"] for s in ascending]
    assert stored == sorted(stored) and len(set(stored)) == 5
    since = client.get(f"/xapi/statements?since={quote(stored[1])}", headers=h(auth, "lms-a")).json()["statements"]
    assert {s["id"] for s in since} == {s["id"] for s in stmts[2:]}
    until = client.get(f"/xapi/statements?until={quote(stored[1])}", headers=h(auth, "lms-a")).json()["statements"]
    assert {s["id"] for s in until} == {s["id"] for s in stmts[:2]}


@pytest.mark.parametrize("query", [
    "statementId={id}&verb=http://x", "voidedStatementId={id}&limit=1", "statementId={id}&voidedStatementId={id}",
    "unknown=1", "limit=-1", "since=yesterday", "agent=notjson", "format=pretty", "ascending=yes",
    "registration=nope", "statementId=nope",
])
def test_parameter_errors_are_400_with_consistent_through(lrs: Any, query: str) -> None:
    client, auth = lrs
    r = client.get("/xapi/statements?" + query.format(id=uuid.uuid4()), headers=h(auth, "lms-a"))
    assert r.status_code == 400
    assert r.headers["X-Experience-API-Consistent-Through"]


def test_head_answers_like_get_without_a_body(lrs: Any) -> None:
    client, auth = lrs
    stmt = statement()
    post(client, h(auth, "lms-a"), stmt)
    r = client.head(f"/xapi/statements?statementId={stmt['id']}", headers=h(auth, "lms-a"))
    assert r.status_code == 200 and r.content == b"" and r.headers["X-Experience-API-Version"]


def test_formats_ids_and_canonical(lrs: Any) -> None:
    client, auth = lrs
    stmt = statement()
    stmt["verb"]["display"] = {"en-US": "experienced", "fr-FR": "expérimenté"}
    post(client, h(auth, "lms-a"), stmt)
    ids = client.get(f"/xapi/statements?statementId={stmt['id']}&format=ids", headers=h(auth, "lms-a")).json()
    assert ids["verb"] == {"id": stmt["verb"]["id"]} and "name" not in ids["actor"]
    canonical = client.get(f"/xapi/statements?statementId={stmt['id']}&format=canonical",
                           headers=h(auth, "lms-a", **{"Accept-Language": "fr-FR"})).json()
    assert canonical["verb"]["display"] == {"fr-FR": "expérimenté"}


def test_alternate_request_syntax_is_1_0_only(lrs: Any) -> None:
    client, auth = lrs
    stmt = statement()
    import json

    form = {"content": json.dumps(stmt), "Authorization": auth["lms-a"], "X-Experience-API-Version": "1.0.3",
            "statementId": stmt["id"]}
    r = client.post("/xapi/statements?method=PUT", data=form)
    assert r.status_code == 204
    got = client.get(f"/xapi/statements?statementId={stmt['id']}", headers=h(auth, "lms-a"))
    assert got.status_code == 200 and got.json()["version"] == "1.0.0"
    form["X-Experience-API-Version"] = "2.0.0"
    assert client.post("/xapi/statements?method=PUT", data=form).status_code == 400


def test_activities_and_agents_resources(lrs: Any) -> None:
    client, auth = lrs
    stmt = statement(activity="http://example.com/a/defined")
    stmt["object"]["definition"] = {"name": {"en-US": "Defined"}}
    post(client, h(auth, "lms-a"), stmt)
    got = client.get("/xapi/activities?activityId=" + quote("http://example.com/a/defined"), headers=h(auth, "lms-a"))
    assert got.status_code == 200 and got.json()["definition"] == {"name": {"en-US": "Defined"}}
    unknown = client.get("/xapi/activities?activityId=" + quote("http://example.com/none"), headers=h(auth, "lms-a"))
    assert unknown.json() == {"objectType": "Activity", "id": "http://example.com/none"}
    assert client.get("/xapi/activities", headers=h(auth, "lms-a")).status_code == 400
    person = client.get("/xapi/agents?agent=" + quote('{"mbox": "mailto:x@example.org"}'), headers=h(auth, "audit"))
    assert person.json() == {"objectType": "Person", "mbox": ["mailto:x@example.org"]}
    assert client.get("/xapi/agents?agent=" + quote("{}"), headers=h(auth, "audit")).status_code == 400
    assert client.head("/xapi/agents?agent=" + quote('{"mbox": "mailto:x@example.org"}'),
                       headers=h(auth, "audit")).content == b""


def test_strangers_and_other_roles_are_refused_before_a_byte_of_the_body_is_read(
    lrs: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ledger.api import xapi_http
    from ledger.api.body import read_body as real

    client, auth = lrs
    read: list[str] = []

    async def spy(request: Any, limit: int) -> bytes:
        read.append(request.url.path)
        return await real(request, limit)

    monkeypatch.setattr(xapi_http, "read_body", spy)
    huge = b"[" + b"0," * (8 * 1024 * 1024) + b"0]"  # 16 MiB of JSON
    stranger = "lrl_" + "0" * 16 + "_" + "A" * 43
    for path in ("/xapi/statements", "/xapi/activities/state?activityId=http%3A%2F%2Fx.example%2Fa&stateId=s"
                 "&agent=%7B%22mbox%22%3A%22mailto%3Aa%40x.example%22%7D"):
        for headers, code in (({**V2}, 401), ({**V2, "Authorization": f"Bearer {stranger}"}, 401),
                              ({**V2, "Authorization": auth["feed"]}, 403), ({**V2, "Authorization": auth["dpo"]}, 403)):
            answer = client.post(path, content=huge, headers={**headers, "Content-Type": "application/json"})
            assert answer.status_code == code, (path, headers.get("Authorization", "")[:12], answer.status_code)
            assert answer.headers["X-Experience-API-Version"]
    assert read == []  # no refused request was read
    ok = client.get("/xapi/statements", headers=h(auth, "lms-a"))
    assert ok.status_code == 200 and read == ["/xapi/statements"]  # the spy sees a request that is read
