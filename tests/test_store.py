"""The application against each event store: the same bodies on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import psycopg

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.read.audit import AuditReader
from ledger.write.application import Ledger
from tests.helpers import at, data_key, officer_cmd, present, reference, register


def _ingest(ledger: Ledger, commands: list[dict[str, Any]]) -> list[str]:
    return [o.status for o in ledger.ingest(json.dumps(c) for c in commands)]


def test_ingesting_the_same_file_twice_answers_duplicate(settings: Settings) -> None:
    lines = list(generate_lines(40, seed=3))
    first = [o.status for o in Ledger(settings).ingest(lines, batch_size=64)]
    second = [o.status for o in Ledger(settings).ingest(lines, batch_size=64)]
    assert Counter(first)["accepted"] > 0.9 * len(lines)
    assert [("duplicate" if s == "accepted" else s) for s in first] == second


def test_versions_are_gapless_and_history_is_in_order(settings: Settings) -> None:
    ledger = Ledger(settings)
    _ingest(ledger, [*reference(), register(), officer_cmd("enrol", 1, course_id="K-BUD"),
                     officer_cmd("record_progress", 2, course_id="K-BUD", percent=30),
                     officer_cmd("transfer_officer", 3, org_id="AIIMS", post_id="P-DOC")])
    history = AuditReader(Ledger(settings)).history("O1")
    assert [e["version"] for e in history] == [1, 2, 3, 4]
    assert [e["type"] for e in history] == ["OfficerRegistered", "CourseEnrolled", "ProgressRecorded", "OfficerTransferred"]
    assert all({"event_id", "officer_id", "occurred_at", "recorded_at"} <= set(e) for e in history)
    assert history[0]["name"] == "Asha Verma"


def test_record_and_record_as_of(settings: Settings) -> None:
    from ledger.domain.values import parse_instant

    ledger = Ledger(settings)
    _ingest(ledger, [*reference(), register(),
                     officer_cmd("enrol", 1, course_id="K-ETH"),
                     officer_cmd("record_progress", 2, course_id="K-ETH", percent=100),
                     officer_cmd("complete_course", 3, course_id="K-ETH"),
                     officer_cmd("transfer_officer", 400, org_id="AIIMS", post_id="P-DOC")])
    now = AuditReader(Ledger(settings)).record("O1")
    assert now is not None
    assert (now["org_id"], now["ministry_id"], now["post_id"]) == ("AIIMS", "MOH", "P-DOC")
    assert [p["org_id"] for p in now["postings"]] == ["DOR", "AIIMS"]
    assert (now["completed_count"], now["learning_hours"]) == (1, 4.0)
    assert now["learning_hours_by_year"] == {"2025-26": 4.0}
    then = AuditReader(ledger).record("O1", as_of=parse_instant(at(2, 12)))
    assert then is not None
    assert then["enrolments"][0]["status"] == "enrolled" and then["enrolments"][0]["progress"] == 100
    assert then["ministry_id"] == "MOF" and then["completed_count"] == 0
    assert AuditReader(ledger).record("O1", as_of=parse_instant("2020-01-01T00:00:00Z")) is None


def test_personal_data_is_never_plaintext_in_the_store(settings: Settings) -> None:
    ledger = Ledger(settings)
    name, email = "Zorawar Plaintextsingh", "zorawar.plaintext@example.gov.in"
    assert _ingest(ledger, [*reference(), register(name=name, email=email)])[-1] == "accepted"
    assert present(AuditReader(ledger).record("O1"))["name"] == name
    for raw in _raw_store_bytes(settings):
        for secret in (name, email, "Plaintextsingh", "zorawar.plaintext"):
            assert secret.encode() not in raw


def _raw_store_bytes(settings: Settings) -> list[bytes]:
    if not settings.is_postgres:
        path = settings.sqlite_path
        return [p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    out = []
    with psycopg.connect(settings.store) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        assert "ledger_events" in tables
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            out.append("".join(r[0] for r in rows).encode())
        out.append(b"".join(bytes(r[0]) for r in conn.execute("SELECT state FROM ledger_events")))
    return out


def test_erasure_destroys_the_key_and_keeps_the_facts(settings: Settings) -> None:
    ledger = Ledger(settings)
    _ingest(ledger, [*reference(), register(), officer_cmd("enrol", 1, course_id="K-ETH")])
    ledger.erase("O1", reason="data principal's request")
    fresh = Ledger(settings)
    record = AuditReader(fresh).record("O1")
    assert record is not None and record["name"] is None and record["email"] is None
    assert record["enrolments"][0]["course_id"] == "K-ETH"
    history = AuditReader(fresh).history("O1")
    assert history[-1]["type"] == "OfficerErased" and history[0]["name"] is None
    assert data_key(fresh, "O1") is None
