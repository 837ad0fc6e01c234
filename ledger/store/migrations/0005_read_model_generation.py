"""The read models' generation: a counter bumped whenever read-model tables are replaced.

Projection consumers keep officer documents in memory between batches (see
``ledger.projections.runner``). Each batch reads this one row inside its transaction,
under the read-model lock, and drops what it holds when the number changed, so
documents replaced by a rebuild's swap (committed by another process) are never
written back over the new tables.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "ledger_generation: bumped by a rebuild's swap, so consumers drop cached documents"


def apply(c: Cursor, dialect: str) -> None:
    c.execute("CREATE TABLE ledger_generation (name TEXT PRIMARY KEY, generation BIGINT NOT NULL)")
    c.execute("INSERT INTO ledger_generation (name, generation) VALUES ('read_models', 0)")
