"""Reserved: number 0010 belongs to another branch (the xAPI tables); this placeholder keeps
the numbering whole on this branch and is dropped when that branch's 0010 is merged."""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "reserved (placeholder for another branch's migration 0010)"


def apply(c: Cursor, dialect: str) -> None:
    """Nothing."""
