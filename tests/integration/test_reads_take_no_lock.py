"""Reads never take a write lock (issue: `ledger status`, and the console polling it, took
SQLite's write lock three times per call): with another process holding the store's
write lock, every read answers at once instead of queueing behind it."""

from __future__ import annotations

import sqlite3
import subprocess
import time

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.write.application import Ledger
from tests.integration.util import run_ledger


def test_reads_answer_while_a_writer_holds_the_lock(sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    list(Ledger(settings).ingest(generate_lines(20, seed=5)))
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    writer = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # held for the whole test: a write lock never granted to anyone else
    try:
        for args in (["status", "--json"], ["stats", "--json"], ["record", "OFF-0000002", "--json"],
                     ["history", "OFF-0000002", "--json"], ["ministry", "MOF", "--json"], ["dead-letters", "--json"]):
            started = time.monotonic()
            try:
                done = run_ledger(settings, *args)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"ledger {' '.join(args)} waited for the write lock") from None
            took = time.monotonic() - started
            assert done.returncode in (0, 1), (args, done.stderr)
            assert "locked" not in done.stderr, (args, done.stderr)
            assert took < 15, (args, took)  # SQLite's busy timeout here is 30 s
    finally:
        writer.execute("ROLLBACK")
        writer.close()
