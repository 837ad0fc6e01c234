"""The lean ``POST /commands`` and ``GET /healthz`` (ledger.api.lean) on a real store and a real server.

They skip FastAPI, so what FastAPI did for them is checked here: the OpenAPI document
still describes them, authentication and the role rules hold before any body is read,
a client that leaves mid-body changes nothing, an oversized body is refused as it
streams in, the HTTP metrics and request ids still come, and concurrent requests share
group-commit transactions.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.api import lean
from ledger.api.app import create_app
from ledger.api.auth import create_token
from ledger.api.body import MAX_BODY
from ledger.config import Settings
from ledger.domain.errors import LedgerError
from ledger.store.db import Database
from ledger.write.application import Ledger, Outcome
from tests.helpers import reference, register
from tests.integration.test_api_lost_clients import (
    competencies_in_store,
    competency,
    services,
    serving,
)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, project=False)) as found:
        yield found


def bearer(settings: Settings, name: str, role: str, **scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(Database(settings), name, role, **scope)}"}


def test_the_openapi_document_still_describes_commands_and_healthz(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    post = paths["/commands"]["post"]
    assert {"200", "401", "403", "413", "503"} <= set(post["responses"])
    assert "requestBody" in post and post["summary"] == "Apply one command or an array of commands"
    assert "get" in paths["/healthz"]


def test_healthz_answers_as_its_declared_route(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert response.headers["content-type"] == "application/json" and response.headers["x-request-id"]
    assert client.post("/healthz").status_code == 405  # not lean: FastAPI answers it as before


def test_without_a_valid_token_nothing_is_read_or_applied(settings: Settings, client: TestClient) -> None:
    body = [competency("LNAUTH")]
    for headers, why in (({}, "required"), ({"Authorization": "Basic dXNlcjpwYXNz"}, "required"),
                         ({"Authorization": "Bearer"}, "required"),
                         ({"Authorization": "Bearer lrl_0123456789abcdef_" + "x" * 43}, "not valid")):
        response = client.post("/commands", json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert why in response.json()["detail"] and response.headers["www-authenticate"] == "Bearer"
    # A role that may not send commands is refused before its body is looked at (this one is not even JSON).
    officer = bearer(settings, "lean-officer", "officer", officer_id="O1")
    response = client.post("/commands", content=b"\xff not json", headers=officer)
    assert response.status_code == 403 and response.json() == {"detail": "role officer may not send commands"}
    assert competencies_in_store(settings, "LNAUTH") == {}


def test_each_command_is_judged_by_the_senders_role(settings: Settings, client: TestClient) -> None:
    ingest, registrar = bearer(settings, "lean-feed", "ingest"), bearer(settings, "lean-cell", "registrar")
    setup = client.post("/commands", json=[*reference(), register("O1")], headers=ingest).json()
    assert {r["status"] for r in setup} == {"accepted"}
    retract = {"type": "retract", "command_id": "lean-r1", "officer_id": "O1", "versions": [2],
               "reason": "other", "occurred_at": "2024-05-01T10:00:00+05:30"}
    by_ingest = client.post("/commands", json=[retract], headers=ingest).json()
    assert by_ingest[0]["status"] == "rejected" and "may not send retract" in by_ingest[0]["error"]
    by_registrar = client.post("/commands", json=[competency("LNREG"), retract], headers=registrar).json()
    assert by_registrar[0]["status"] == "rejected" and "sends only corrections" in by_registrar[0]["error"]
    assert [r["index"] for r in by_registrar] == [0, 1]


def test_answers_are_the_same_json_as_before(settings: Settings, client: TestClient) -> None:
    ingest = bearer(settings, "lean-json", "ingest")
    response = client.post("/commands", json=[competency("LNJ1"), competency("LNJ1"), {"type": "nope"}],
                           headers=ingest)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    answer = response.json()
    assert [(r["index"], r["status"]) for r in answer] == [(0, "accepted"), (1, "duplicate"), (2, "rejected")]
    assert answer[0]["error"] is None and answer[2]["error"].startswith("type")
    assert response.content.startswith(b'[{"index":0,"status":"accepted","error":null}')
    for body, status in ((b"", 400), (b"[]", 422), (b'"text"', 422), (b"[1,", 400), (b"\xc3\x28", 400)):
        refused = client.post("/commands", content=body, headers=ingest)
        assert refused.status_code == status, (body, refused.text)
        assert set(refused.json()) == {"detail"} and refused.json()["detail"].startswith("body")


def requests_counted(client: TestClient, method: str, route: str, status: int) -> float:
    """The HTTP duration histogram's count for this series (0 before its first request)."""
    series = f'ledger_http_request_duration_seconds_count{{method="{method}",route="{route}",status="{status}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(series):
            return float(line.removeprefix(series))
    return 0.0


def test_http_metrics_and_request_ids_still_come(settings: Settings, client: TestClient) -> None:
    ingest = bearer(settings, "lean-metrics", "ingest")
    before = {key: requests_counted(client, *key) for key in (("POST", "/commands", 200), ("POST", "/commands", 401),
                                                              ("GET", "/healthz", 200))}
    answered = client.post("/commands", json=competency("LNM"), headers={**ingest, "X-Request-ID": "trace-42"})
    assert answered.headers["x-request-id"] == "trace-42"
    assert client.post("/commands", json=competency("LNM2")).status_code == 401
    assert client.post("/commands", json=competency("LNM3")).headers["x-request-id"] != \
        client.post("/commands", json=competency("LNM3")).headers["x-request-id"]
    client.get("/healthz")
    after = {key: requests_counted(client, *key) for key in before}
    assert after[("POST", "/commands", 200)] - before[("POST", "/commands", 200)] == 1
    assert after[("POST", "/commands", 401)] - before[("POST", "/commands", 401)] == 3
    assert after[("GET", "/healthz", 200)] - before[("GET", "/healthz", 200)] == 1


def test_an_oversized_body_is_413_announced_or_chunked(settings: Settings, client: TestClient) -> None:
    ingest = bearer(settings, "lean-big", "ingest")
    announced = client.post("/commands", content=b"[" + b" " * MAX_BODY + b"]", headers=ingest)
    assert announced.status_code == 413 and announced.json()["detail"] == f"body: larger than {MAX_BODY} bytes"

    sent: list[int] = []

    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting as it streams finds it
        for _ in range(40):
            sent.append(1)
            yield b" " * (64 * 1024)

    chunked = client.post("/commands", content=chunks(), headers=ingest)
    assert chunked.status_code == 413


def asgi_call(app: Any, headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Call the app's ASGI entry directly with these body messages: what it sends."""
    sent: list[dict[str, Any]] = []
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # nothing more ever comes
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/commands", "root_path": "", "headers": headers,
             "query_string": b"", "http_version": "1.1", "scheme": "http"}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    return sent


def test_a_client_disconnecting_mid_body_is_answered_400_and_applies_nothing(settings: Settings) -> None:
    app = create_app(settings, project=False)
    with TestClient(app):  # the lifespan builds the services
        token = bearer(settings, "lean-gone", "ingest")["Authorization"].encode()
        body = json.dumps([competency("LNGONE")]).encode()
        sent = asgi_call(app, [(b"authorization", token), (b"content-length", str(len(body)).encode())],
                         [{"type": "http.request", "body": body[:10], "more_body": True},
                          {"type": "http.disconnect"}])
        assert sent[0]["status"] == 400
        assert json.loads(sent[1]["body"]) == {"detail": "body: the client disconnected before sending all of it"}
        # The whole body in two pieces is applied.
        sent = asgi_call(app, [(b"authorization", token)],
                         [{"type": "http.request", "body": body[:10], "more_body": True},
                          {"type": "http.request", "body": body[10:], "more_body": False}])
        assert sent[0]["status"] == 200 and json.loads(sent[1]["body"])[0]["status"] == "accepted"
    assert set(competencies_in_store(settings, "LNGONE")) == {"LNGONE"}


def test_a_real_client_vanishing_mid_body_leaves_the_server_answering(settings: Settings) -> None:
    app = create_app(settings, project=False)
    with serving(app) as base:
        token = bearer(settings, "lean-vanish", "ingest")["Authorization"]
        host, port = base.removeprefix("http://").split(":")
        body = json.dumps(competency("LNVANISH")).encode()
        for _ in range(20):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(f"POST /commands HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])
        with httpx.Client(base_url=base, headers={"Authorization": token}, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
            assert http.post("/commands", json=competency("LNAFTER")).json()[0]["status"] == "accepted"
    assert competencies_in_store(settings, "LN") == {"LNAFTER": 1}


class CountingLedger:
    """The real ledger, counting batches; the first waits for the gate so the others queue behind it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.batches: list[int] = []
        self.entered = threading.Event()
        self.gate = threading.Event()

    def apply_batch(self, chunk: list[tuple[int, str | LedgerError]]) -> list[Outcome]:
        self.batches.append(len(chunk))
        self.entered.set()
        assert self.gate.wait(timeout=20)
        return self.ledger.apply_batch(chunk)


def test_concurrent_requests_share_group_commit_transactions(settings: Settings) -> None:
    app = create_app(settings, project=False)
    with serving(app) as base:
        headers = bearer(settings, "lean-group", "ingest")
        committer = services(app).committer
        counting = CountingLedger(committer.ledger)
        committer.ledger = counting

        def post(i: int) -> list[dict[str, Any]]:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                answer: list[dict[str, Any]] = http.post("/commands", json=[competency(f"LNG{i}")]).json()
                return answer

        with ThreadPoolExecutor(max_workers=24) as pool:
            first = pool.submit(post, 0)
            assert counting.entered.wait(10)  # the first request's transaction is under way
            rest = [pool.submit(post, i) for i in range(1, 24)]
            deadline = 0
            while committer._queue.qsize() < 23 and deadline < 200:  # all 23 queued behind it
                threading.Event().wait(0.05)
                deadline += 1
            counting.gate.set()
            answers = [first.result(), *(f.result() for f in rest)]
    assert [a[0]["status"] for a in answers] == ["accepted"] * 24
    assert counting.batches == [1, 23], "the requests queued during one transaction make up the next"
    assert sum(competencies_in_store(settings, "LNG").values()) == 24


def test_lean_path_is_only_post_commands_and_get_healthz() -> None:
    def scope(method: str, path: str, root: str = "") -> dict[str, Any]:
        return {"method": method, "path": path, "root_path": root}

    assert lean.lean_path(scope("POST", "/commands")) == "/commands"
    assert lean.lean_path(scope("GET", "/healthz")) == "/healthz"
    assert lean.lean_path(scope("POST", "/api/commands", "/api")) == "/commands"
    for method, path in (("GET", "/commands"), ("POST", "/commands/"), ("PUT", "/commands"), ("HEAD", "/healthz"),
                         ("POST", "/officers/x/record")):
        assert lean.lean_path(scope(method, path)) is None, (method, path)


def test_a_cancelled_async_submission_is_applied_once_and_others_are_answered(settings: Settings) -> None:
    from ledger.api.committer import GroupCommitter

    store = Ledger(settings)
    counting = CountingLedger(store)
    committer = GroupCommitter(counting)

    async def scenario() -> None:
        first = committer.submit_async([json.dumps(competency("LNC1"))])
        assert await asyncio.to_thread(counting.entered.wait, 10)
        queued = [committer.submit_async([json.dumps(competency(f"LNC{i}"))]) for i in (2, 3, 4)]
        queued[0].cancel()  # as when the awaiting request's task is cancelled
        counting.gate.set()
        assert [o.status for o in await asyncio.wait_for(first, 10)] == ["accepted"]
        assert [[o.status for o in await asyncio.wait_for(q, 10)] for q in queued[1:]] == [["accepted"]] * 2
        again = await asyncio.wait_for(committer.submit_async([json.dumps(competency("LNC2"))]), 10)
        assert [o.status for o in again] == ["duplicate"]

    try:
        asyncio.run(scenario())
    finally:
        counting.gate.set()
        committer.close()
        store.close()
    assert counting.batches[:2] == [1, 3], "the three queued during the first transaction shared the next"
    assert competencies_in_store(settings, "LNC") == {f"LNC{i}": 1 for i in (1, 2, 3, 4)}
    closed = asyncio.run(_submit_after_close(committer))
    assert closed == "CommitterClosed"


async def _submit_after_close(committer: Any) -> str:
    try:
        await committer.submit_async(["{}"])
    except Exception as exc:
        return type(exc).__name__
    return "answered"
