"""A scrub that could not run is reported, never claimed: a busy WAL checkpoint is a failed scrub."""

from __future__ import annotations

import json
import sqlite3

from ledger.config import Settings
from ledger.write.application import Ledger
from tests.helpers import data_key, reference, register


def test_a_reader_holding_the_wal_makes_the_scrub_fail_and_say_so(sqlite_settings: Settings) -> None:
    ledger = Ledger(sqlite_settings)
    commands = [*reference(), register("O1"), register("O2")]
    assert all(o.status == "accepted" for o in ledger.ingest(json.dumps(c) for c in commands))
    reader = sqlite3.connect(sqlite_settings.sqlite_path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM stored_events").fetchone()  # a snapshot pins the WAL
    try:
        assert ledger.erase("O1", reason="request") is False
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert data_key(ledger, "O1") is None  # the erasure itself happened
    assert ledger.erase("O2", reason="request") is True  # and a later scrub covers both
    wal = sqlite_settings.sqlite_path.with_name(sqlite_settings.sqlite_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
