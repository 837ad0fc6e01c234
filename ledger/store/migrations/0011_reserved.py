"""Reserved: number 0011 belongs to another branch; this placeholder keeps the numbering whole
on this branch (for 0013, the xAPI documents) and is dropped when that branch's 0011 is merged."""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "reserved (placeholder for another branch's migration 0011)"


def apply(c: Cursor, dialect: str) -> None:
    """Nothing."""
