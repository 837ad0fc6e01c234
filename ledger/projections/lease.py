"""One rebuild of a read model at a time.

A rebuild fills shadow tables (``<table>_rebuild``) and swaps them in; a second rebuild
of the same read model running at once would drop and recreate the first one's shadow
tables under it, and the first would then swap in a model missing what the second threw
away. So a rebuild first takes a lease per read model, and a second is refused.

The lease dies with the process that holds it, whatever way it ends (a SIGKILL
included), so a crashed rebuild never blocks the next: on PostgreSQL a session-level
advisory lock on a connection of its own, on SQLite an exclusive ``flock`` on a file
beside the database (SQLite's database is on this host, so every process that can
rebuild it can see the file).
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ledger.domain.errors import LedgerError
from ledger.store.db import Database

# Advisory-lock keys of rebuilds: (this class id, the read model's hash), apart from the
# runner's read-model write locks.
_REBUILD_CLASS = 0x5EB1


class RebuildRunning(LedgerError):
    """Another rebuild of the same read model is running."""


class RebuildLease:
    """Held for the whole of a rebuild of ``names``; refused when any of them is taken."""

    def __init__(self, db: Database, names: Sequence[str]) -> None:
        self.db, self.names = db, sorted(set(names))
        self._held: list[Any] = []

    def __enter__(self) -> RebuildLease:
        try:
            for name in self.names:
                self._held.append(self._take(name))
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None) -> None:
        self._release()

    def _take(self, name: str) -> Any:
        refused = RebuildRunning(f"rebuild: another rebuild of {name} is running; wait for it to finish "
                                 "(a second one at once would lose what the first has built)")
        if self.db.is_postgres:
            import psycopg

            conn = psycopg.connect(self.db.settings.store, autocommit=True)
            key = zlib.crc32(name.encode()) & 0x7FFFFFFF
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_REBUILD_CLASS, key)).fetchone()
            if not (row and row[0]):
                conn.close()
                raise refused
            return conn
        path = self.db.settings.sqlite_path
        handle = os.open(f"{path}.rebuild-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise refused from None
        return handle

    def _release(self) -> None:
        while self._held:
            held = self._held.pop()
            if isinstance(held, int):
                os.close(held)  # closing the descriptor releases the flock
            else:
                held.close()  # ending the session releases the advisory lock
