"""Audit: hash chains reveal edits made behind the ledger's back; erasure is real."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from ledger.config import Settings
from ledger.domain.officer import Officer
from ledger.read.audit import AuditReader
from ledger.write.application import Ledger
from tests.helpers import data_key, officer_cmd, reference, register


def _setup(settings: Settings) -> Ledger:
    ledger = Ledger(settings)
    commands = [*reference(), register("O1"), register("O2"),
                officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
                officer_cmd("record_progress", 2, "O1", course_id="K-ETH", percent=40),
                officer_cmd("record_progress", 3, "O1", course_id="K-ETH", percent=80),
                officer_cmd("record_progress", 4, "O1", course_id="K-ETH", percent=100)]
    assert all(o.status == "accepted" for o in ledger.ingest(json.dumps(c) for c in commands))
    return ledger


def _sql(settings: Settings, statements: Callable[[str, str], list[tuple[str, tuple[Any, ...]]]]) -> None:
    """Run raw SQL against the events table, as an intruder with database access would."""
    oid = Officer.create_id("O1")
    if settings.is_postgres:
        with psycopg.connect(settings.store) as conn:
            for sql, params in statements("ledger_events", "%s"):
                conn.execute(sql, [oid if p == "OID" else p for p in params])
    else:
        import sqlite3

        db = sqlite3.connect(settings.sqlite_path)
        for sql, params in statements("stored_events", "?"):
            db.execute(sql.replace("%s", "?"), [oid.hex if p == "OID" else p for p in params])
        db.commit()
        db.close()


def test_an_untouched_store_verifies(settings: Settings) -> None:
    ledger = _setup(settings)
    checked, breaks = AuditReader(ledger).verify()
    assert breaks == [] and checked > 10
    ledger.erase("O1", reason="request")
    assert AuditReader(ledger).verify("O1") == (1, [])


@pytest.mark.parametrize("attack, version, problem", [
    ("modify", 4, "altered"),
    ("delete", 3, "removed"),
    ("swap", 3, "altered or reordered"),
])
def test_verify_finds_a_tampered_event(settings: Settings, attack: str, version: int, problem: str) -> None:
    ledger = _setup(settings)

    def statements(table: str, p: str) -> list[tuple[str, tuple[Any, ...]]]:
        where = f"originator_id = {p} AND originator_version = {p}"
        if attack == "modify":
            # Change the recorded progress from 80 to 90 in the stored bytes.
            state = next(s.state for s in ledger.recorder.select_events(Officer.create_id("O1"))
                         if s.originator_version == 4)
            forged = state.replace(b'"percent":80', b'"percent":90')
            assert forged != state
            return [(f"UPDATE {table} SET state = {p} WHERE {where}", (forged, "OID", 4))]
        if attack == "delete":
            return [(f"DELETE FROM {table} WHERE {where}", ("OID", 3))]
        return [  # swap the contents of versions 3 and 4
            (f"UPDATE {table} SET originator_version = 99 WHERE {where}", ("OID", 3)),
            (f"UPDATE {table} SET originator_version = 3 WHERE {where}", ("OID", 4)),
            (f"UPDATE {table} SET originator_version = 4 WHERE {where}", ("OID", 99)),
        ]

    _sql(settings, statements)
    if attack == "modify":
        assert [e["percent"] for e in Ledger(settings).officer_events("O1") if e["type"] == "ProgressRecorded"] == [40, 90, 100]
    checked, breaks = AuditReader(Ledger(settings)).verify()
    assert breaks, "tampering went unnoticed"
    assert {(b["entity"], b["version"]) for b in breaks} >= {("officer_id=O1", version)}
    assert all(b["entity"] == "officer_id=O1" for b in breaks), breaks
    assert any(problem in b["problem"] for b in breaks if b["version"] == version), breaks
    only_o1 = AuditReader(Ledger(settings)).verify("O1")
    assert only_o1[1] and AuditReader(Ledger(settings)).verify("O2") == (1, [])


def _scalar(conn: psycopg.Connection[tuple[Any, ...]], sql: str) -> Any:
    """The first column of the one row a query answers."""
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _raw_database_bytes(settings: Settings) -> bytes:
    """Every byte the database keeps for the ledger, dead row versions included."""
    if not settings.is_postgres:
        path = settings.sqlite_path
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    chunks = []
    with psycopg.connect(settings.store, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        for table in tables:
            blocks = _scalar(conn, f"SELECT pg_relation_size('\"{table}\"') / 8192")
            for block in range(int(blocks)):
                chunks.append(bytes(_scalar(conn, f"SELECT get_raw_page('\"{table}\"', {block})")))
    return b"".join(chunks)


def test_erasure_leaves_no_personal_data_and_no_key_in_the_database(settings: Settings) -> None:
    from ledger.consumers.log import LogFollower
    from ledger.projections.runner import Runner
    from ledger.read.models import ReadModels
    from ledger.store.db import Database

    name, email = "Zorawar Erasablesingh", "zorawar.erasable@example.gov.in"
    ledger = Ledger(settings)
    commands = [*reference(), register("O1", name=name, email=email),
                officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
                officer_cmd("record_progress", 2, "O1", course_id="K-ETH", percent=100),
                officer_cmd("complete_course", 3, "O1", course_id="K-ETH")]
    assert all(o.status == "accepted" for o in ledger.ingest(json.dumps(c) for c in commands))
    db = Database(settings)
    LogFollower(ledger, Runner(db)).run(until_idle=True)
    key = data_key(ledger, "O1")
    assert key is not None and key in _raw_database_bytes(settings)

    ledger.erase("O1", reason="data principal's request")
    LogFollower(ledger, Runner(db)).run(until_idle=True)

    raw = _raw_database_bytes(settings)
    for secret in (name.encode(), email.encode(), key):
        assert secret not in raw
    fresh = Ledger(settings)
    assert fresh.execute(officer_cmd("enrol", 9, "O1", course_id="K-BUD")).status == "rejected"
    assert [e["type"] for e in AuditReader(fresh).history("O1")][-1] == "OfficerErased"
    assert AuditReader(fresh).verify("O1") == (1, [])
    reads = ReadModels(db, fresh)
    record = reads.record("O1")
    assert record is not None and (record["name"], record["email"]) == (None, None)
    assert record["completed_count"] == 1
    # Headcount counts officers who are not erased; the learning facts stay.
    assert reads.ministry("MOF") == {"ministry_id": "MOF", "headcount": 0, "years": {
        "2025-26": {"enrolments": 1, "completions": 1, "learning_hours": 4.0, "officers_completed": 1}}}


@pytest.mark.postgres
def test_erasure_waits_out_a_transaction_elsewhere_on_the_server_before_it_scrubs(pg_settings: Settings) -> None:
    """VACUUM FULL keeps a dead row version while any older transaction runs, in any database
    of the server (another ledger's, another tenant's): the scrub waits for it to end."""
    import threading

    from tests.conftest import PG_ADMIN

    ledger = Ledger(pg_settings)
    assert all(o.status == "accepted" for o in ledger.ingest(
        json.dumps(c) for c in [*reference(), register("O1", name="Ishaan Erasable", email="ishaan.e@example.gov.in")]))
    key = data_key(ledger, "O1")
    assert key is not None
    elsewhere = psycopg.connect(PG_ADMIN)  # the admin database, not the ledger's
    elsewhere.execute("SELECT pg_current_xact_id()")  # a transaction with an id, left open
    ends = threading.Timer(1.0, elsewhere.commit)
    ends.start()
    try:
        ledger.erase("O1", reason="data principal's request")
    finally:
        ends.join()
        elsewhere.close()
    assert key not in _raw_database_bytes(pg_settings)
