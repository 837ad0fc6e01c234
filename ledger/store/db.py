"""A small database handle for the ledger's own tables (positions, read models).

The same SQL runs on SQLite and PostgreSQL: statements are written with ``?``
placeholders and translated for psycopg. Each ``transaction()`` is atomic, which is
what lets a projection write its change and its position together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from ledger.config import Settings


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class _PgCursor:
    """psycopg cursor that accepts ``?`` placeholders."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


# Checks run on a Database's first connection (the schema's version check, which
# ledger.store wires in): the schema builds on this module, so it registers itself
# here rather than being imported from it.
FIRST_USE: list[Callable[[Database], None]] = []


class Database:
    """One connection to the store's database, for the ledger's own tables."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.is_postgres = settings.is_postgres
        self.blob = "BYTEA" if self.is_postgres else "BLOB"
        self._conn: Any = None
        self.schema_checked = False

    def _connect(self) -> Any:
        if self._conn is None:
            if self.is_postgres:
                import psycopg

                self._conn = psycopg.connect(self.settings.store, autocommit=True)
            else:
                path = self.settings.sqlite_path
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(path), timeout=30, isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA journal_mode=WAL")
                self._conn = conn
            if not self.schema_checked and FIRST_USE:
                try:
                    for check in FIRST_USE:
                        check(self)
                except BaseException:
                    self.close()
                    raise
        return self._conn

    def transaction(self) -> AbstractContextManager[Cursor]:
        """An atomic unit of work: commits on success, rolls back on any error."""
        return self._begin("BEGIN IMMEDIATE", keep=True)

    def reading(self) -> AbstractContextManager[Cursor]:
        """A read-only snapshot that never takes the write lock.

        On SQLite (WAL) ``BEGIN DEFERRED`` reads one consistent snapshot and never waits
        for a writer, where ``transaction()``'s ``BEGIN IMMEDIATE`` would queue behind the
        group commit and the projections; on PostgreSQL readers never block anyway.
        """
        return self._begin("BEGIN DEFERRED", keep=False)

    @contextmanager
    def _begin(self, begin: str, keep: bool) -> Iterator[Cursor]:
        """A transaction (SQLite: begun with ``begin``); ``keep``: commit it on success, else roll it back."""
        conn = self._connect()
        if self.is_postgres:
            with conn.transaction():
                yield _PgCursor(conn.cursor())
            return
        cursor = conn.cursor()
        cursor.execute(begin)
        try:
            yield cursor
        except BaseException:
            conn.rollback()
            raise
        if keep:
            conn.commit()
        else:
            conn.rollback()  # nothing to keep: ends the snapshot

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# In ledger_positions while the relay refuses to sign checkpoints: the position of the
# fork it found (0: its last-checkpoint file could not be used). Written by
# ledger.kafka.relay, reported by ledger status.
RELAY_CHECKPOINT_REFUSED = "relay.checkpoint_refused"


class Positions:
    """Named positions in the notification log (the relay's, a projection's)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> int:
        with self.db.reading() as c:
            return self.read(c, name)

    @staticmethod
    def read(c: Cursor, name: str) -> int:
        c.execute("SELECT position FROM ledger_positions WHERE name = ?", (name,))
        row = c.fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def advance(c: Cursor, name: str, position: int) -> None:
        """Move ``name`` forward to ``position`` inside the caller's transaction.

        Never backwards: a late or replayed batch must not rewind a position that a
        newer batch already committed, or its events would be processed twice.
        """
        from datetime import datetime, timezone

        now = datetime.now(timezone.utc).isoformat()
        c.execute(
            "INSERT INTO ledger_positions (name, position, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = excluded.updated_at WHERE ledger_positions.position < excluded.position",
            (name, position, now),
        )

    @staticmethod
    def put(c: Cursor, name: str, position: int) -> None:
        """Set ``name`` to ``position``, whatever it was (a marker such as the relay's refusal to sign)."""
        from datetime import datetime, timezone

        c.execute(
            "INSERT INTO ledger_positions (name, position, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
            (name, position, datetime.now(timezone.utc).isoformat()),
        )

    @staticmethod
    def remove(c: Cursor, name: str) -> None:
        c.execute("DELETE FROM ledger_positions WHERE name = ?", (name,))
