"""Hostile bodies at POST/PUT /xapi/statements: the battery of POST /commands (tests/test_hostile_input.py,
tests/integration/test_hostile_battery.py). Each is answered 400 or 413 with a message and the xAPI
version header, never 5xx; nothing of it is stored; the statements sent around it all land."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.config import Settings
from tests.integration.xapi_world import basic, build, lrs_settings, statement


def body(**changes: Any) -> bytes:
    return json.dumps({**statement(), **changes}).encode()


ACTOR = '"actor":{"mbox":"mailto:a@example.org","name":'
REST = ',"verb":{"id":"http://adlnet.gov/expapi/verbs/experienced"},"object":{"id":"http://example.com/a"}}'
POISON: list[bytes] = [
    b"[" * 100_000 + b"]" * 100_000,                                       # nesting 100,000 deep
    b"{" + ACTOR.encode() + b'"x"' + REST[:-1].encode() + b',"result":{"score":{"raw":' + b"9" * 5000 + b"}}}",
    b"{" + ACTOR.encode() + b'"\\ud800"' + REST.encode(),                   # lone surrogate in a value
    b'{"\\udfff":1,' + ACTOR.encode() + b'"x"' + REST.encode(),             # ... in a key
    b"\xff\xfe\xfd not utf-8",                                              # invalid UTF-8
    b"{" + ACTOR.encode() + b'"a\x00b"' + REST.encode(),                    # raw NUL byte
    b"{" + ACTOR.encode() + b'"x","actor":{}' + REST.encode(),              # a repeated key
    b"{" + ACTOR.encode() + b'"x"' + REST[:-1].encode() + b',"result":{"score":{"raw":NaN}}}',
    b"{" + ACTOR.encode() + b'"x"' + REST[:-1].encode() + b',"result":{"score":{"raw":Infinity}}}',
    b"{" + ACTOR.encode() + b'"' + b"x" * (20 << 20) + b'"' + REST.encode(),  # a 20 MB body
    b"null", b"[]", b'"just a string"', b"{", b"\x00\x00\x00", b"",
]


@pytest.fixture
def lrs(sqlite_settings: Settings) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    configured = lrs_settings(sqlite_settings)
    tokens = build(configured)
    with TestClient(create_app(configured, project=False)) as client:
        yield client, {name: {**basic(name, token), "Content-Type": "application/json"}
                       for name, token in tokens.items()}


def test_each_hostile_body_is_refused_and_its_neighbours_land(lrs: Any) -> None:
    client, auth = lrs
    landed = []
    for i, poison in enumerate(POISON):
        before = statement()
        assert client.post("/xapi/statements", json=before, headers=auth["lms-a"]).status_code == 200
        landed.append(before["id"])
        for method, url in (("POST", "/xapi/statements"), ("PUT", f"/xapi/statements?statementId={uuid.uuid4()}")):
            r = client.request(method, url, content=poison, headers=auth["lms-a"])
            assert r.status_code in (400, 413), (i, method, r.status_code, r.text[:300])
            assert r.headers["X-Experience-API-Version"] == "2.0.0"
            assert r.json()["error"] and len(r.content) < 2000  # a message, never the body echoed back
    everything = client.get("/xapi/statements?limit=0", headers=auth["audit"]).json()["statements"]
    assert sorted(s["id"] for s in everything) == sorted(landed)


def test_a_token_of_another_role_writes_nothing_whatever_it_sends(lrs: Any) -> None:
    client, auth = lrs
    for name in ("feed", "dpo", "audit"):
        r = client.post("/xapi/statements", content=POISON[0], headers=auth[name])
        assert r.status_code == 403
    assert client.get("/xapi/statements", headers=auth["audit"]).json()["statements"] == []


def test_concurrent_clients_some_sending_poison_all_valid_statements_land(lrs: Any) -> None:
    client, auth = lrs
    good = [statement() for _ in range(40)]

    def send(i: int) -> int:
        if i % 2:
            return int(client.post("/xapi/statements", content=POISON[i % len(POISON)], headers=auth["lms-a"]).status_code)
        return int(client.post("/xapi/statements", json=good[i // 2], headers=auth["lms-a"]).status_code)

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, range(80)))
    assert all(code == 200 for code in codes[::2]) and all(code in (400, 413) for code in codes[1::2])
    stored = {s["id"] for s in client.get("/xapi/statements?limit=0", headers=auth["audit"]).json()["statements"]}
    assert stored == {s["id"] for s in good}
