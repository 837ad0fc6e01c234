"""An index on the access log by officer and time.

"Who read this officer's data" (the console's officer page, for auditors) reads one
officer's newest entries; without the index that is a scan of the whole log, which
grows with every read of every officer.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "access_log (officer_id, at) index: one officer's readers without scanning the log"


def apply(c: Cursor, dialect: str) -> None:
    c.execute("CREATE INDEX IF NOT EXISTS access_log_by_officer ON access_log (officer_id, at)")
