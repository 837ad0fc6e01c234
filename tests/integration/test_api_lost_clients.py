"""Lost clients cost nothing (issue 11): disconnects, cancelled requests, token floods, name races.

A real server (uvicorn on a free port, in a thread) and raw sockets: a client that
goes away mid-request neither stops the group commit nor delays anyone, and its
commands are applied at most once (a resend with the same ``command_id`` answers
``duplicate`` when they were); a flood of made-up tokens costs a few readings of the token table a second
and delays no valid token, known or new; two requests creating
the same token name get one 200 and one 409.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from ledger.api.app import create_app
from ledger.api.auth import Lookup, Principal, TokenCache, create_token, list_tokens, revoke_token
from ledger.api.committer import GroupCommitter
from ledger.api.deps import Services
from ledger.config import Settings
from ledger.domain.errors import LedgerError
from ledger.store.db import Database
from ledger.write.application import Ledger, Outcome
from tests.ports import free_port


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on uvicorn in a thread, on a free port of 127.0.0.1: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def services(app: FastAPI) -> Services:
    found: Services = app.state.services
    return found


def competency(competency_id: str) -> dict[str, Any]:
    return {"type": "define_competency", "competency_id": competency_id, "name": f"Skill {competency_id}",
            "kind": "domain", "command_id": f"cmd-{competency_id}"}


def competencies_in_store(settings: Settings, prefix: str) -> Counter[str]:
    """How many events the store holds for each competency whose id starts with ``prefix``."""
    store = Ledger(settings)
    try:
        return Counter(event["competency_id"] for _, event in store.iter_log()
                       if str(event.get("competency_id", "")).startswith(prefix))
    finally:
        store.close()


def raw_post(base: str, token: str, body: bytes, send: int, wait_for_answer: bool = False) -> None:
    """POST /commands announcing all of ``body`` but sending ``send`` bytes of it, then vanish.

    The socket is reset (SO_LINGER 0), not closed politely: whatever the server still
    has to say is lost, as when a client crashes or a network drops.
    """
    host, port = base.removeprefix("http://").split(":")
    head = (f"POST /commands HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body[:send])
        if wait_for_answer:
            assert sock.recv(1) == b"H"  # the answer has begun: the commands are durable
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_clients_that_vanish_mid_request_cost_nothing_and_apply_nothing_twice(settings: Settings) -> None:
    app = create_app(settings, project=False)
    with serving(app) as base:
        token = create_token(Database(settings), "lost", "ingest")
        headers = {"Authorization": f"Bearer {token}"}
        half_sent, fully_sent, answered = [], [], []
        for i in range(50):
            half = json.dumps(competency(f"LCHALF{i}")).encode()
            raw_post(base, token, half, send=len(half) // 2)
            half_sent.append(f"LCHALF{i}")
            full = json.dumps(competency(f"LCFULL{i}")).encode()
            raw_post(base, token, full, send=len(full))
            fully_sent.append(f"LCFULL{i}")
            done = json.dumps(competency(f"LCDONE{i}")).encode()
            raw_post(base, token, done, send=len(done), wait_for_answer=True)
            answered.append(f"LCDONE{i}")

        # The event loop and the group commit still answer everyone, at once.
        with httpx.Client(base_url=base, headers=headers, timeout=1.0) as client:
            assert client.get("/healthz").status_code == 200
            response = client.post("/commands", json=competency("LCNORMAL"))
            assert response.status_code == 200 and response.json()[0]["status"] == "accepted", response.text

        before = competencies_in_store(settings, "LC")
        assert set(before.values()) == {1}, "no command is applied twice"
        assert not set(before) & set(half_sent), "a command never sent in full is never applied"
        assert set(answered) <= set(before), "a command whose answer began is durable"

        # Resending: what was applied answers duplicate, the rest is applied now, once.
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            resent = fully_sent + answered
            statuses = [r["status"] for r in client.post("/commands", json=[competency(c) for c in resent]).json()]
            for competency_id, status in zip(resent, statuses, strict=True):
                # (One not seen applied may still have been applied since, by its own request.)
                expected = {"duplicate"} if competency_id in before else {"accepted", "duplicate"}
                assert status in expected, (competency_id, status)
            after = competencies_in_store(settings, "LC")
            assert after == Counter({c: 1 for c in [*fully_sent, *answered, "LCNORMAL"]})
            statuses = [r["status"] for r in client.post("/commands", json=[competency(c) for c in resent]).json()]
            assert set(statuses) == {"duplicate"}


class GatedLedger:
    """The real ledger, except that each batch waits until the test opens the gate."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.entered = threading.Event()
        self.gate = threading.Event()

    def apply_batch(self, chunk: list[tuple[int, str | LedgerError]]) -> list[Outcome]:
        self.entered.set()
        assert self.gate.wait(timeout=10)
        return self.ledger.apply_batch(chunk)


def test_a_cancelled_request_neither_stops_the_group_commit_nor_loses_its_commands(settings: Settings) -> None:
    store = Ledger(settings)
    gated = GatedLedger(store)
    committer = GroupCommitter(gated)

    def line(competency_id: str) -> str:
        return json.dumps(competency(competency_id))

    async def await_answer(lines: list[str]) -> list[str]:
        outcomes = await asyncio.wrap_future(committer.submit(lines))
        return [o.status for o in outcomes]

    async def scenario() -> None:
        committing = asyncio.ensure_future(await_answer([line("CXA")]))
        assert await asyncio.to_thread(gated.entered.wait, 10)
        queued = asyncio.ensure_future(await_answer([line("CXB")]))  # behind the batch being committed
        await asyncio.sleep(0.05)
        committing.cancel()  # as a server does to the task of a request whose client left
        queued.cancel()
        gated.gate.set()
        assert await asyncio.wait_for(await_answer([line("CXC")]), 5) == ["accepted"]
        assert await asyncio.wait_for(await_answer([line("CXA"), line("CXB")]), 5) == ["duplicate"] * 2
        assert committing.cancelled() and queued.cancelled()

    try:
        asyncio.run(scenario())
    finally:
        gated.gate.set()
        committer.close()
        store.close()
    assert competencies_in_store(settings, "CX") == Counter({"CXA": 1, "CXB": 1, "CXC": 1})


def made_up_token() -> str:
    return f"lrl_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def test_a_flood_of_made_up_tokens_neither_delays_valid_ones_nor_costs_a_query_each(settings: Settings) -> None:
    app = create_app(settings, project=False, token_ttl=60)  # the table read stays fresh all test long
    with serving(app) as base:
        auditor = {"Authorization": f"Bearer {create_token(Database(settings), 'flood-auditor', 'auditor')}"}
        with httpx.Client(base_url=base, headers=auditor, timeout=30) as client:
            assert client.get("/status").status_code == 200
        tokens = services(app).tokens
        queries_before = tokens.queries

        # Thousands of distinct well-shaped strangers; a third are not even shaped like a
        # token (refused without waiting for anything).
        flood = [made_up_token() if i % 3 else f"lrl_{i}_guess" for i in range(3000)]
        flooding = threading.Event()
        flooding.set()
        # A token made during the flood, never seen before: it waits for one reading of
        # the table, not behind the strangers.
        newcomer_waits: list[float] = []

        def attack(share: list[str]) -> Counter[int]:
            with httpx.Client(base_url=base, timeout=30) as client:
                return Counter(client.get("/status", headers={"Authorization": f"Bearer {t}"}).status_code
                               for t in share)

        def use() -> Counter[int]:
            answered: Counter[int] = Counter()
            with httpx.Client(base_url=base, headers=auditor, timeout=30) as client:
                while flooding.is_set():
                    answered[client.get("/status").status_code] += 1
            return answered

        def newcomer(k: int) -> int:
            token = create_token(Database(settings), f"newcomer-{k}", "auditor")
            with httpx.Client(base_url=base, timeout=30) as client:
                assert client.get("/healthz").status_code == 200  # the connection is up before timing
                started = time.perf_counter()
                code = client.get("/status", headers={"Authorization": f"Bearer {token}"}).status_code
                newcomer_waits.append(time.perf_counter() - started)
            return code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=24) as pool:
            users = [pool.submit(use) for _ in range(4)]
            attacks = [pool.submit(attack, flood[k::16]) for k in range(16)]
            time.sleep(0.5)
            newcomers = [pool.submit(newcomer, k) for k in range(3)]
            assert [n.result() for n in newcomers] == [200, 200, 200]
            refused = sum((a.result() for a in attacks), Counter[int]())
            flooding.clear()
            served = sum((u.result() for u in users), Counter[int]())
        elapsed = time.monotonic() - started

        assert refused == Counter({401: len(flood)})
        assert set(served) == {200} and served[200] > 0, served
        # The strangers shared readings of the whole table, started at most every
        # min_interval: a few queries a second, not one per stranger (2,000 of them).
        assert tokens.queries - queries_before <= elapsed / tokens.min_interval + 2, (tokens.queries, elapsed)
        # A valid newcomer waited for about one reading, not for the flood.
        assert max(newcomer_waits) < 5, newcomer_waits


def test_the_table_in_memory_decides_and_follows_revocation(sqlite_settings: Settings) -> None:
    db = Database(sqlite_settings)
    valid = create_token(db, "kept", "cbc")
    cache = TokenCache(lambda: db, ttl=60)
    assert cache.cached(valid) is Lookup.UNKNOWN  # nothing read yet
    assert cache.get(valid) == Principal("kept", "cbc")
    assert cache.queries == 1
    strangers = [made_up_token() for _ in range(50)]
    assert all(cache.cached(t) is Lookup.UNKNOWN for t in strangers)  # not in the table: wait for a reading
    wrong_secret = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    assert cache.cached(wrong_secret) is None  # a known id with another secret: refused from memory
    assert cache.cached("lrl_not_a_token") is None
    assert cache.cached(valid) == Principal("kept", "cbc")  # still known: no query
    assert cache.queries == 1
    cache.ttl = 0  # the table is now stale: known tokens need a fresh reading
    assert cache.cached(valid) is Lookup.EXPIRED
    revoke_token(db, "kept")
    assert cache.get(valid) is None
    assert cache.queries == 2
    cache.ttl = 60
    assert cache.cached(valid) is None  # revoked: refused from memory


def test_looking_a_token_up_neither_waits_for_nor_holds_up_a_writer(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings, project=False)
    with serving(app) as base:
        db = Database(sqlite_settings)
        fresh = create_token(db, "fresh", "cbc")
        with db.transaction(), httpx.Client(base_url=base, timeout=10) as client:
            # The store's write lock is held (as by a long batch) while tokens never seen
            # before are looked up: each is judged at once, with no database lock to wait for.
            assert client.get("/status", headers={"Authorization": f"Bearer {fresh}"}).status_code == 403
            assert client.get("/status", headers={"Authorization": f"Bearer {made_up_token()}"}).status_code == 401
        assert services(app).tokens.queries >= 1


def test_simultaneous_requests_for_one_token_name_get_one_token_and_409s(settings: Settings) -> None:
    app = create_app(settings, project=False)
    with serving(app) as base:
        admin = {"Authorization": f"Bearer {create_token(Database(settings), 'race-admin', 'admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=30) as client:
            assert client.post("/tokens", json={"name": "warm-up", "role": "cbc"}).status_code == 200
        racers = 8
        for round_ in range(5):
            name = f"racer-{round_}"
            start = threading.Barrier(racers)

            def create(_: int, name: str = name, start: threading.Barrier = start) -> httpx.Response:
                with httpx.Client(base_url=base, headers=admin, timeout=30) as client:
                    start.wait(timeout=10)
                    return client.post("/tokens", json={"name": name, "role": "cbc"})

            with ThreadPoolExecutor(max_workers=racers) as pool:
                answers = list(pool.map(create, range(racers)))
            assert sorted(a.status_code for a in answers) == [200] + [409] * (racers - 1), [a.text for a in answers]
            assert all(a.json()["detail"] == f"name: a token named {name!r} already exists"
                       for a in answers if a.status_code == 409)
        names = Counter(t["name"] for t in list_tokens(Database(settings)))
        assert all(names[f"racer-{r}"] == 1 for r in range(5))
