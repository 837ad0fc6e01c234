"""The ingest fast paths store exactly what the plain paths store.

The fast paths: PostgreSQL rows written as one statement over arrays per table
(``LedgerPostgresRecorder.array_inserts``), SQLite events in one executemany with their
ids taken from the last rowid (``LedgerSQLiteRecorder.bulk_inserts``), a batch's officers
loaded in one query before its commands (``Ledger.preload_batches``), and pending events
put in the store without the library's per-object protocol checks (``Ledger.direct_save``). The same input, with the clock and
every random byte made the same, must give the same answers and the same rows: events,
receipts, data keys, access rows, entity chain and log chain.
"""

from __future__ import annotations

import hashlib
import itertools
import types
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from ledger.config import Settings
from ledger.domain import officer, plan, reference
from ledger.generate import generate_lines
from ledger.integrity import crypto
from ledger.store.postgres import LedgerPostgresRecorder
from ledger.store.sqlite import LedgerSQLiteRecorder
from ledger.write.application import Ledger
from tests.conftest import create_database, drop_database, migrated, pg_url

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


Fresh = Callable[[], None]


@pytest.fixture
def deterministic(monkeypatch: pytest.MonkeyPatch) -> Fresh:
    """Starts the clock, data keys, nonces and event ids from the same point (so two runs
    can be compared bytewise)."""
    import eventsourcing.domain

    def fresh() -> None:
        ticks, keys, nonces, ids = itertools.count(), itertools.count(), itertools.count(), itertools.count()
        monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo",
                            lambda: START + timedelta(microseconds=next(ticks)))
        monkeypatch.setattr(crypto, "new_data_key", lambda: hashlib.sha256(b"key%d" % next(keys)).digest())
        fake_os = types.SimpleNamespace(urandom=lambda n: hashlib.sha256(b"nonce%d" % next(nonces)).digest()[:n])
        monkeypatch.setattr(crypto, "os", fake_os)
        for module in (officer, reference, plan):
            monkeypatch.setattr(module, "uuid4", lambda: uuid.UUID(int=next(ids)))

    return fresh


def _lines() -> list[str]:
    lines = list(generate_lines(60, seed=71))
    # The last command again (a duplicate) and changed (a conflict).
    return [*lines, lines[-1], lines[-1].replace('"occurred_at": "', '"occurred_at": "1')]


def _run(
    settings: Settings, fast: bool, monkeypatch: pytest.MonkeyPatch, fresh: Fresh
) -> list[tuple[int, str, str | None]]:
    fresh()
    monkeypatch.setattr(LedgerPostgresRecorder, "array_inserts", fast)
    monkeypatch.setattr(Ledger, "preload_batches", fast)
    monkeypatch.setattr(Ledger, "direct_save", fast)
    monkeypatch.setattr(LedgerSQLiteRecorder, "bulk_inserts", fast)
    ledger = Ledger(settings)
    answers = [(o.line, o.status, o.error) for o in ledger.ingest(_lines(), batch_size=250)]
    ledger.close()
    return answers


TABLES = {
    "ledger_events": "notification_id",
    "ledger_command_receipts": "command_id",
    "ledger_officer_keys": "officer_id",
    "officer_access": "officer_id",
    "ledger_chain": "originator_id, version",
    "ledger_log_chain": "position",
}


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                for table, order in TABLES.items()}


@pytest.fixture
def two_databases() -> Iterator[tuple[Settings, Settings]]:
    names = [create_database(), create_database()]
    try:
        yield migrated(Settings(store=pg_url(names[0]))), migrated(Settings(store=pg_url(names[1])))
    finally:
        for name in names:
            drop_database(name)


@pytest.mark.postgres
def test_fast_and_plain_paths_store_identical_rows_on_postgres(
    deterministic: Fresh, two_databases: tuple[Settings, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_settings, fast_settings = two_databases
    plain = _run(plain_settings, False, monkeypatch, deterministic)
    fast = _run(fast_settings, True, monkeypatch, deterministic)
    assert fast == plain
    assert {status for _, status, _ in plain} == {"accepted", "rejected", "duplicate"}
    plain_rows, fast_rows = _rows(plain_settings.store), _rows(fast_settings.store)
    for table in TABLES:
        assert fast_rows[table] == plain_rows[table], table
    assert len(plain_rows["ledger_events"]) > 1000 and plain_rows["ledger_log_chain"]


SQLITE_TABLES = {
    "stored_events": "rowid",
    "command_receipts": "command_id",
    "officer_keys": "officer_id",
    "officer_access": "officer_id",
    "ledger_chain": "originator_id, version",
    "ledger_log_chain": "position",
}


def _sqlite_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    import sqlite3

    with sqlite3.connect(settings.sqlite_path) as conn:
        return {table: conn.execute(f"SELECT {'rowid, ' if table == 'stored_events' else ''}* FROM {table} "
                                    f"ORDER BY {order}").fetchall()
                for table, order in SQLITE_TABLES.items()}


def test_fast_and_plain_paths_store_identical_rows_on_sqlite(
    deterministic: Fresh, sqlite_settings: Settings, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Settings(store=f"sqlite:///{tmp_path / 'other.db'}")
    plain = _run(sqlite_settings, False, monkeypatch, deterministic)
    fast = _run(other, True, monkeypatch, deterministic)
    assert fast == plain
    assert {status for _, status, _ in plain} == {"accepted", "rejected", "duplicate"}
    plain_rows, fast_rows = _sqlite_rows(sqlite_settings), _sqlite_rows(other)
    for table in SQLITE_TABLES:
        assert fast_rows[table] == plain_rows[table], table
    assert len(plain_rows["stored_events"]) > 1000 and len(plain_rows["ledger_log_chain"]) == len(
        plain_rows["stored_events"])
    ledger = Ledger(other)
    ids = [n.id for n in ledger.recorder.select_notifications(start=1, limit=1_000_000)]
    ledger.close()
    assert ids == list(range(1, len(ids) + 1))  # the ids the fast path reported are the rowids


def test_bulk_inserts_read_back_the_rowids_when_they_are_not_consecutive(sqlite_settings: Settings) -> None:
    """Once the largest possible rowid is taken (a row put there by hand), SQLite picks
    random rowids: the fast path then reads each id back, so every log-chain position is
    still the rowid of the event it names."""
    import sqlite3

    lines = list(generate_lines(3, seed=5))
    ledger = Ledger(sqlite_settings)
    list(ledger.ingest(lines[:20]))
    ledger.close()
    with sqlite3.connect(sqlite_settings.sqlite_path) as conn:
        conn.execute("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                     "VALUES (9223372036854775807, 'x', 1, 't', x'7b7d')")
    ledger = Ledger(sqlite_settings)
    assert any(o.status == "accepted" for o in ledger.ingest(lines[20:]))
    ledger.close()
    with sqlite3.connect(sqlite_settings.sqlite_path) as conn:
        rowids = {(o, v): r for r, o, v in conn.execute(
            "SELECT rowid, originator_id, originator_version FROM stored_events")}
        links = conn.execute("SELECT position, originator_id, version FROM ledger_log_chain").fetchall()
    assert len(links) == len(rowids) - 1 > 20
    assert all(rowids[(o, v)] == position for position, o, v in links)
    assert max(position for position, _, _ in links) > 2**40  # the random ones were taken
