"""A stored xAPI statement is an event like every other: chained, in the log, published as Avro
``StatementStored`` on ``<prefix>.xapi`` with no plaintext personal data, never stored twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.kafka.client import route
from ledger.kafka.codec import Codec
from ledger.read.audit import AuditReader
from ledger.store.db import Database
from ledger.store.schema import ensure_store
from ledger.write.application import Ledger
from ledger.xapi.statement import Statement
from ledger.xapi.store import Conflict, StatementStore


def a_statement(name: str = "Farida Khanum-Oyelaran") -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "actor": {"name": name, "mbox": "mailto:farida.k@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
            "object": {"objectType": "Activity", "id": "http://example.com/a"},
            "authority": {"objectType": "Agent", "account": {"homePage": "http://x", "name": "lms"}}, "version": "2.0.0"}


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Ledger, StatementStore]:
    settings = Settings(store=f"sqlite:///{tmp_path / 'x.db'}")
    ensure_store(settings)
    ledger = Ledger(settings)
    db = Database(settings)
    return ledger, StatementStore(ledger, settings, lambda: db)


def test_a_statement_is_a_published_event_without_plaintext_personal_data(parts: tuple[Ledger, StatementStore]) -> None:
    ledger, store = parts
    stmt = a_statement()
    store.store([stmt], "lms")
    [(_, event)] = ledger.read_log()
    assert event["type"] == "StatementStored" and event["statement_id"] == stmt["id"]
    topic, key = route("ledger", event)
    assert (topic, key) == ("ledger.xapi", str(stmt["id"]).encode())
    message = Codec().encode(event)
    assert Codec().decode(message) == event
    for text in (b"Farida", b"farida.k@example.org"):
        assert text not in message
    checked, breaks = AuditReader(ledger).verify()
    assert checked >= 1 and breaks == []


def test_an_id_is_stored_once_and_other_content_under_it_is_a_conflict(parts: tuple[Ledger, StatementStore]) -> None:
    ledger, store = parts
    stmt = a_statement()
    store.store([dict(stmt)], "lms")
    store.store([dict(stmt)], "lms")  # the same again: nothing new
    assert len(ledger.read_log()) == 1
    with pytest.raises(Conflict):
        store.store([{**stmt, "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"}}], "lms")
    assert Statement.create_id(str(stmt["id"])) == Statement.create_id(str(stmt["id"]).upper())
    assert Statement.create_id(str(stmt["id"])) != uuid.UUID(str(stmt["id"]))  # never another aggregate's stream


def test_concurrent_requests_share_transactions_yet_each_is_answered_alone(parts: tuple[Ledger, StatementStore]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ledger, store = parts
    taken = a_statement()
    store.store([dict(taken)], "lms")
    requests = [[a_statement(), a_statement()] for _ in range(30)]
    requests[7] = [a_statement(), {**taken, "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"}}]

    def send(batch: list[dict[str, object]]) -> str:
        try:
            store.store([dict(s) for s in batch], "lms")
        except Conflict:
            return "conflict"
        return "stored"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, requests))
    assert answers == ["conflict" if i == 7 else "stored" for i in range(30)]
    ids = {e["statement_id"] for _, e in ledger.read_log()}
    assert ids == {str(taken["id"])} | {str(s["id"]) for i, batch in enumerate(requests) if i != 7 for s in batch}
