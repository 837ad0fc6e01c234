"""Statements that report an officer's learning become ledger commands, in the same transaction
(DOMAIN.md "xAPI statements", the mapping table); roles; attachments; sealed personal data and erasure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.cli import cli
from ledger.config import Settings
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import data_key
from tests.integration.xapi_world import (
    HOMEPAGE,
    V2,
    basic,
    build,
    lrs_settings,
    officer_statement,
    post,
    statement,
)

PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Settings]]:
    """The LRS on each backend."""
    yield from _world(settings)


@pytest.fixture
def sqlite_world(sqlite_settings: Settings) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Settings]]:
    """The LRS on SQLite, whose files the byte scans read."""
    yield from _world(sqlite_settings)


def _world(settings: Settings) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Settings]]:
    configured = lrs_settings(settings)
    tokens = build(configured)
    with TestClient(create_app(configured, project=False)) as client:
        yield client, {name: basic(name, token) for name, token in tokens.items()}, configured


def events_of(settings: Settings, officer: str = "O1") -> list[dict[str, Any]]:
    ledger = Ledger(settings)
    try:
        return ledger.officer_events(officer)
    finally:
        ledger.close()


def unmapped(settings: Settings) -> list[tuple[Any, ...]]:
    db = Database(settings)
    with db.reading() as c:
        c.execute("SELECT statement_id, command, rule FROM xapi_unmapped ORDER BY seq")
        rows = [tuple(r) for r in c.fetchall()]
    db.close()
    return rows


def test_each_verb_becomes_its_command_with_the_statement_timestamp(world: Any) -> None:
    client, auth, settings = world
    when = "2025-05-02T10:00:00+05:30"
    stmts = [
        officer_statement("registered", timestamp=when),
        officer_statement("progressed", timestamp=when, result={"extensions": {PROGRESS: 100}}),
        officer_statement("failed", timestamp=when, result={"score": {"scaled": 0.3}}),
        officer_statement("passed", timestamp=when, result={"score": {"raw": 8, "min": 0, "max": 10}}),
        officer_statement("completed", timestamp=when),
    ]
    assert post(client, auth["lms-a"], stmts).status_code == 200
    events = events_of(settings)
    kinds = [e["type"] for e in events]
    assert kinds[-5:] == ["CourseEnrolled", "ProgressRecorded", "AssessmentAttempted", "AssessmentAttempted",
                          "CourseCompleted"], unmapped(settings)
    assert events[-4]["percent"] == 100
    assert [e["score"] for e in events[-3:-1]] == [30.0, 80.0]
    assert all(e["occurred_at"].startswith("2025-05-02T04:30:00") or "10:00:00+05:30" in e["occurred_at"]
               for e in events[-5:])
    assert unmapped(settings) == []


def test_a_statement_the_rules_refuse_is_stored_and_listed_with_the_rule(world: Any) -> None:
    client, auth, settings = world
    completed = officer_statement("completed", course="K-ETH")  # never enrolled in K-ETH
    assert post(client, auth["lms-a"], completed).status_code == 200
    got = client.get(f"/xapi/statements?statementId={completed['id']}", headers=auth["lms-a"])
    assert got.status_code == 200
    rows = unmapped(settings)
    assert [(r[0], r[1]) for r in rows] == [(completed["id"], "complete_course")]
    assert rows[0][2]  # the rule it broke, in words
    assert all(e["type"] != "CourseCompleted" for e in events_of(settings))
    metrics = client.get("/metrics").text
    assert 'ledger_xapi_unmapped_total{verb="completed"}' in metrics
    listed = CliRunner().invoke(cli, ["--store", settings.store, "xapi", "unmapped", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["statement_id"], r["command"]) for r in json.loads(listed.output)] == [(completed["id"],
                                                                                     "complete_course")]


def test_statements_about_strangers_or_unknown_courses_map_to_nothing(world: Any) -> None:
    client, auth, settings = world
    before = len(events_of(settings))
    post(client, auth["lms-a"], [statement("completed"), officer_statement("completed", course="NOPE"),
                                 officer_statement("completed", officer="O-UNKNOWN")])
    assert len(events_of(settings)) == before and unmapped(settings) == []


def test_voiding_a_mapped_statement_retracts_its_events_only_for_the_same_token(world: Any) -> None:
    client, auth, settings = world
    enrol = officer_statement("registered")
    post(client, auth["lms-a"], enrol)
    enrolled_version = events_of(settings)[-1]["version"]
    foreign = statement("voided")
    foreign["object"] = {"objectType": "StatementRef", "id": enrol["id"]}
    assert post(client, auth["lms-b"], foreign).status_code == 200  # stored, yet retracts nothing
    assert events_of(settings)[-1]["type"] == "CourseEnrolled"
    assert [r[1] for r in unmapped(settings)] == ["retract"]
    voiding = statement("voided")
    voiding["object"] = {"objectType": "StatementRef", "id": enrol["id"]}
    assert post(client, auth["lms-a"], voiding).status_code == 200  # the writer may still withdraw it
    retraction = [e for e in events_of(settings) if e["type"] == "EventsRetracted"]
    assert [r["versions"] for r in retraction] == [[enrolled_version]]


def test_voiding_by_the_writer_retracts_with_reason_withdrawn_by_provider(world: Any) -> None:
    client, auth, settings = world
    enrol = officer_statement("registered")
    post(client, auth["lms-a"], enrol)
    version = events_of(settings)[-1]["version"]
    voiding = statement("voided")
    voiding["object"] = {"objectType": "StatementRef", "id": enrol["id"]}
    assert post(client, auth["lms-a"], voiding).status_code == 200
    last = events_of(settings)[-1]
    assert last["type"] == "EventsRetracted" and last["versions"] == [version]
    assert last["reason"] == "withdrawn_by_provider"


def test_roles_basic_and_bearer(world: Any) -> None:
    client, auth, _ = world
    stmt = statement()
    assert post(client, V2, stmt).status_code == 401
    assert post(client, V2, stmt).headers["WWW-Authenticate"].startswith("Basic")
    assert post(client, auth["feed"], stmt).status_code == 403
    assert post(client, auth["audit"], stmt).status_code == 403
    wrong_user = {**V2, "Authorization": basic("someone", auth["lms-a"]["Authorization"])["Authorization"]}
    assert post(client, wrong_user, stmt).status_code == 401
    assert post(client, auth["lms-a"], stmt).status_code == 200
    url = f"/xapi/statements?statementId={stmt['id']}"
    assert client.get(url, headers=auth["audit"]).status_code == 200
    assert client.get(url, headers=auth["lms-b"]).status_code == 404  # reads only what it wrote
    assert stmt["id"] not in client.get("/xapi/statements", headers=auth["lms-b"]).text
    assert client.get(url, headers=auth["dpo"]).status_code == 403


def multipart(parts: list[tuple[dict[str, str], bytes]], boundary: str = "b0und4ry") -> tuple[bytes, str]:
    body = b""
    for headers, content in parts:
        body += f"--{boundary}\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        body += b"\r\n" + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f'multipart/mixed; boundary="{boundary}"'


def test_attachments_travel_in_multipart_with_their_sha2(world: Any) -> None:
    client, auth, _ = world
    content = b"certificate bytes \x00\xff"
    sha2 = hashlib.sha256(content).hexdigest()
    stmt = statement(attachments=[{"usageType": "http://example.com/cert", "display": {"en-US": "cert"},
                                   "contentType": "application/octet-stream", "length": len(content), "sha2": sha2}])
    part = {"Content-Type": "application/octet-stream", "Content-Transfer-Encoding": "binary",
            "X-Experience-API-Hash": sha2}
    body, ctype = multipart([({"Content-Type": "application/json"}, json.dumps(stmt).encode()), (part, content)])
    r = client.post("/xapi/statements", content=body, headers={**auth["lms-a"], "Content-Type": ctype})
    assert r.status_code == 200, r.text
    got = client.get(f"/xapi/statements?statementId={stmt['id']}&attachments=true", headers=auth["lms-a"])
    assert got.headers["content-type"].startswith("multipart/mixed") and content in got.content
    other = statement(attachments=stmt["attachments"])
    wrong, ctype = multipart([({"Content-Type": "application/json"}, json.dumps(other).encode()),
                              ({**part, "X-Experience-API-Hash": "0" * 64}, content)])
    assert client.post("/xapi/statements", content=wrong, headers={**auth["lms-a"], "Content-Type": ctype}).status_code == 400
    missing = statement(attachments=stmt["attachments"])
    assert post(client, auth["lms-a"], missing).status_code == 400  # no part and no fileUrl


def test_personal_data_is_sealed_in_the_store_and_erased_with_the_officer(sqlite_world: Any) -> None:
    client, auth, settings = sqlite_world
    stmt = officer_statement("experienced")
    stmt["actor"]["name"] = "Zubeida Quraishi-Pemberton"
    other = statement()
    other["actor"]["name"] = "Xenophon Strangeway"
    post(client, auth["lms-a"], [stmt, other])
    path = Path(settings.sqlite_path)
    for text in (b"Zubeida Quraishi", b"Xenophon Strangeway", b"ravi.learner@example.org"):
        assert text not in path.read_bytes() and text not in Path(f"{path}-wal").read_bytes()
    assert client.get(f"/xapi/statements?statementId={stmt['id']}",
                      headers=auth["lms-a"]).json()["actor"]["name"] == "Zubeida Quraishi-Pemberton"
    ledger = Ledger(settings)
    key = data_key(ledger, "O1")
    ledger.close()
    assert key is not None
    r = client.post("/officers/O1/erase", json={"reason": "data_principal_request"}, headers={
        "Authorization": "Bearer " + _token_of(auth["dpo"])})
    assert r.status_code in (200, 201, 202), r.text
    erased = client.get(f"/xapi/statements?statementId={stmt['id']}", headers=auth["lms-a"]).json()
    assert "name" not in erased["actor"] and erased["actor"]["account"]["name"] == "erased"
    assert erased["actor"]["account"]["homePage"] == HOMEPAGE
    for file in (path, Path(f"{path}-wal")):  # the key that sealed the officer's agents is gone from the files
        assert not file.exists() or key not in file.read_bytes()
    kept = client.get(f"/xapi/statements?statementId={other['id']}", headers=auth["lms-a"]).json()
    assert kept["actor"]["name"] == "Xenophon Strangeway"


def _token_of(headers: dict[str, str]) -> str:
    import base64

    return base64.b64decode(headers["Authorization"].split()[1]).decode().split(":", 1)[1]
