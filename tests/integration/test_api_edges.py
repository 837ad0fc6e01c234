"""The HTTP API's edges: who is asked first, how much is read, and hostile input (issue 11)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.types import Message

from ledger.api.app import create_app
from ledger.api.auth import create_token
from ledger.api.body import MAX_BODY, MAX_DEPTH
from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.projections.runner import Runner
from ledger.read.audit import AuditReader
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register
from tests.ports import free_port

BODY_ENDPOINTS = {"/commands": "ingest", "/tokens": "admin", "/officers/O1/erase": "admin"}
# Every role a body endpoint admits (admin may also send commands; which ones is decided per command).
ALLOWED = {"/commands": {"ingest", "admin"}, "/tokens": {"admin"}, "/officers/O1/erase": {"admin"}}
HOSTILE_BODIES = {
    "malformed": b"{not json",
    "empty": b"",
    "wrong fields": b'{"name": "", "role": "nobody", "reason": ""}',
    "not an object": b"[1, 2]",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "huge number": b'{"name": ' + b"9" * 5000 + b', "reason": 1e999999}',
    "lone surrogate": b'{"\\ud800": "\\udfff", "name": "a\\ud800", "role": "cbc", "reason": "\\ud800"}',
    "NUL": b'{"name": "a\\u0000", "role": "cbc", "reason": "\\u0000"}',
    "raw NUL": b'{"name": "a\x00", "role": "cbc"}',
    "invalid UTF-8": b'{"name": "\xff\xfe", "role": "cbc", "reason": "\xc3"}',
    "NaN": b'{"name": NaN, "role": "cbc", "reason": Infinity}',
    "over the limit": b" " * (MAX_BODY + 1),
}


class Client:
    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings = settings
        self.http = client
        db = Database(settings)
        self.tokens = {role: create_token(db, f"edge-{role}", role, ministry_id="MOF", officer_id="O1")
                       for role in ("ingest", "officer", "ministry_hr", "cbc", "auditor", "admin")}

    def headers(self, who: str | None) -> dict[str, str]:
        token = self.tokens.get(who or "", who)
        return {"Content-Type": "application/json"} | ({} if token is None else {"Authorization": f"Bearer {token}"})

    def post(self, who: str | None, path: str, body: bytes) -> Any:
        return self.http.post(path, content=body, headers=self.headers(who))

    def get(self, who: str, path: str) -> Any:
        return self.http.get(path, headers=self.headers(who))


@pytest.fixture
def api(settings: Settings) -> Iterator[Client]:
    with TestClient(create_app(settings, project=False), raise_server_exceptions=False) as http:
        client = Client(settings, http)
        answered = client.post("ingest", "/commands", json.dumps([*reference(), register("O1")]).encode())
        assert {r["status"] for r in answered.json()} == {"accepted"}
        LogFollower(Ledger(settings), Runner(Database(settings))).run(until_idle=True)
        yield client


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_no_token_is_401_and_a_wrong_role_403_whatever_the_body(api: Client, body: bytes) -> None:
    for path, allowed in ALLOWED.items():
        assert api.post(None, path, body).status_code == 401, path
        assert api.post("lrl_0000_forged", path, body).status_code == 401, path
        for role in api.tokens.keys() - allowed:
            assert api.post(role, path, body).status_code == 403, (path, role)


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_bodies_get_a_4xx_and_write_nothing(api: Client, body: bytes) -> None:
    store = Ledger(api.settings)
    before = store.recorder.max_notification_id()
    for path, role in BODY_ENDPOINTS.items():
        response = api.post(role, path, body)
        if response.status_code == 200:  # the body was a command: answered, and rejected
            statuses = [r["status"] for r in response.json()]
            assert path == "/commands" and statuses and set(statuses) == {"rejected"}, response.text
        else:
            assert 400 <= response.status_code < 500 and set(response.json()) == {"detail"}, (path, response.text)
    assert store.recorder.max_notification_id() == before
    assert (AuditReader(store).record("O1") or {}).get("name") == "Asha Verma"


def test_each_kind_of_bad_body_has_its_status_and_names_the_problem(api: Client) -> None:
    def detail(path: str, body: bytes, status: int) -> str:
        response = api.post(BODY_ENDPOINTS[path], path, body)
        assert response.status_code == status, response.text
        return str(response.json()["detail"])

    for path in BODY_ENDPOINTS:
        assert detail(path, HOSTILE_BODIES["over the limit"], 413).startswith("body: larger than")
        assert detail(path, HOSTILE_BODIES["malformed"], 400).startswith("body: malformed JSON")
        assert detail(path, HOSTILE_BODIES["invalid UTF-8"], 400).startswith("body: not valid UTF-8")
        assert detail(path, HOSTILE_BODIES["deep"], 400) == f"body: JSON nested more than {MAX_DEPTH} levels deep"
    assert detail("/tokens", HOSTILE_BODIES["NaN"], 400).startswith("body: malformed JSON (NaN")
    assert detail("/tokens", HOSTILE_BODIES["huge number"], 400).endswith("(a number has too many digits)")
    assert detail("/tokens", b'{"name": "a", "role": "cbc", "role": "admin"}', 400).endswith("repeats key 'role')")
    assert detail("/tokens", HOSTILE_BODIES["empty"], 422) == "body: Field required"
    assert detail("/tokens", b'{"name": "x", "role": "nobody"}', 422).startswith("role:")
    assert detail("/tokens", HOSTILE_BODIES["NUL"], 422) == "name: contains a control character (U+0000)"
    assert detail("/tokens", HOSTILE_BODIES["lone surrogate"], 422).startswith("name:")
    assert detail("/tokens", b'{"name": "x", "role": "officer", "officer_id": "O1\\n"}', 422).startswith("officer_id:")
    assert detail("/officers/O1/erase", b'{"reason": ""}', 422).startswith("reason:")
    assert detail("/officers/O1/erase", b"[]", 422).startswith("body:")


def test_a_body_of_exactly_the_limit_is_read(api: Client) -> None:
    body = json.dumps({"name": "padded", "role": "cbc"}).encode()
    assert api.post("admin", "/tokens", body.ljust(MAX_BODY)).status_code == 200
    assert api.post("admin", "/tokens", body.ljust(MAX_BODY + 1)).status_code == 413


def test_each_command_of_a_body_is_judged_as_the_same_line_in_a_file(api: Client) -> None:
    good = json.dumps(officer_cmd("enrol", 3, "O1", course_id="K-ETH"))
    repeated = '{"type": "enrol", "officer_id": "O1", "officer_id": "O2", "course_id": "K-BUD", "occurred_at": "2025-04-05T09:00:00Z"}'
    huge = '{"type": "record_progress", "officer_id": "O1", "course_id": "K-ETH", "percent": ' + "9" * 5000 + ', "occurred_at": "2025-04-05T09:00:00Z"}'
    surrogate = '{"type": "define_competency", "competency_id": "C9", "name": "\\ud800", "kind": "domain", "command_id": "\\udfff"}'
    pretty = json.dumps(officer_cmd("record_progress", 4, "O1", course_id="K-ETH", percent=50), indent=2)
    body = f"\ufeff [ {good} ,\n{repeated},{huge}, {surrogate},\r\n{pretty} ]\n".encode()
    results = api.post("ingest", "/commands", body).json()
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected", "accepted"]
    assert "repeat" in results[1]["error"]
    assert results[2]["error"].startswith(("percent", "json"))
    assert results[3]["error"].startswith(("name", "command_id"))


@pytest.mark.parametrize("body", [b"[1,]", b"[,]", b"[{}] []", b"{} {}", b"[{}", b"   "])
def test_a_body_that_is_not_one_json_text_is_400(api: Client, body: bytes) -> None:
    assert api.post("ingest", "/commands", body).status_code == 400


@pytest.mark.parametrize("officer_id", ["O1%0A", "O1%00", "%ED%A0%80", "O1%20", "%C3%A9", "-O1", "O" * 65, "O1%5Cud800"])
def test_an_officer_id_that_is_not_an_id_answers_like_an_unknown_officer(api: Client, officer_id: str) -> None:
    for endpoint in ("record", "competencies", "history"):
        response = api.get("auditor", f"/officers/{officer_id}/{endpoint}")
        assert response.status_code == 404, (officer_id, endpoint, response.text)
        unknown = api.get("auditor", f"/officers/NOBODY/{endpoint}").json()["detail"]
        assert response.json()["detail"].endswith(unknown.removeprefix("no officer 'NOBODY'"))
    erase = api.http.post(f"/officers/{officer_id}/erase", json={"reason": "data_principal_request"},
                          headers=api.headers("admin"))
    assert erase.status_code == 404, erase.text
    assert api.get("ingest", f"/officers/{officer_id}/record").status_code == 403


def test_hostile_path_and_query_values_are_4xx(api: Client) -> None:
    for path, status in [("/ministries/MOF%00", 422), ("/ministries/%ED%A0%80", 422), ("/ministries/" + "M" * 70, 422),
                         ("/officers/O1/record?as_of=%00", 422), ("/officers/O1/record?as_of=" + "9" * 5000, 422),
                         ("/officers/O1/record?as_of=0001-01-01T00:00:00%2B05:30", 422)]:
        assert api.get("auditor", path).status_code == status, path
    for name in ("a%00b", "%ED%A0%80", "x" * 200):
        assert api.http.delete(f"/tokens/{name}", headers=api.headers("admin")).status_code == 404, name


@given(body=st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20).map(lambda value: json.dumps(value).encode()))
@hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_body_whatsoever_gets_a_server_error(api: Client, body: bytes) -> None:
    for path, role in [*BODY_ENDPOINTS.items(), ("/officers/NOBODY/erase", "admin")]:
        response = api.post(role, path, body)
        assert response.status_code < 500, (path, body, response.text)
        if path == "/commands" and response.status_code == 200:
            assert all(r["status"] == "rejected" for r in response.json())


def _scope(app: FastAPI, token: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/commands", "raw_path": b"/commands", "query_string": b"",
            "root_path": "", "server": ("testserver", 80), "client": ("testclient", 50000), "app": app,
            "headers": [(b"authorization", f"Bearer {token}".encode()), *headers]}


def _serve(app: FastAPI, scope: dict[str, Any], chunk: bytes) -> tuple[int, int]:
    """Status answered and chunks taken for an endless chunked body of ``chunk``s."""
    taken = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    asyncio.run(app(scope, receive, send))
    return status, taken


def test_the_limit_is_counted_while_the_body_streams_in(settings: Settings) -> None:
    app = create_app(settings, project=False)
    with TestClient(app):
        token = create_token(Database(settings), "stream", "ingest")
        chunk = b" " * 65536
        # No Content-Length, a body that never ends: answered once the limit is passed.
        assert _serve(app, _scope(app, token, []), chunk) == (413, MAX_BODY // len(chunk) + 1)
        # A Content-Length over the limit is refused before a byte is read.
        declared = _scope(app, token, [(b"content-length", str(10**12).encode())])
        assert _serve(app, declared, chunk) == (413, 0)
        # Authorization first: a stranger is refused before a byte is read.
        assert _serve(app, _scope(app, "lrl_0000_forged", []), chunk) == (401, 0)


@pytest.fixture
def server(sqlite_settings: Settings) -> Iterator[tuple[int, str]]:
    app = create_app(sqlite_settings, project=False)
    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port, create_token(Database(sqlite_settings), "socket", "ingest")
    finally:
        running.should_exit = True
        thread.join(timeout=15)


def _request_head(token: str, *fields: str) -> bytes:
    lines = ["POST /commands HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}",
             "Content-Type: application/json", "Connection: close", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:  # the server closed with our unread bytes still queued
            return received
        if not data:
            return received
        received += data


def test_a_real_server_answers_413_before_an_endless_chunked_body_ends(server: tuple[int, str]) -> None:
    port, token = server
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(_request_head(token, "Transfer-Encoding: chunked"))
        chunk = b" " * 65536
        for _ in range(MAX_BODY // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # The last chunk is never sent: a server waiting for the whole body would not answer.
        assert _answer(sock).startswith(b"HTTP/1.1 413 ")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(_request_head(token, f"Content-Length: {MAX_BODY + 1}"))
        assert _answer(sock).startswith(b"HTTP/1.1 413 ")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        command = json.dumps(reference()[0]).encode()
        sock.sendall(_request_head(token, "Transfer-Encoding: chunked")
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(command), command))
        answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 200 ") and b'"status":"accepted"' in answer
