"""A rebuild's bulk writes: each officer's documents once, with the projections' accumulators."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ledger.projections.base import OfficerDocProjection, dumps
from ledger.store.db import Database

WRITE_BATCH = 5_000  # officers per bulk write


class _Statements:
    """Stands in for a cursor while a projection flushes its accumulators: keeps the
    statements, to run in the writer's transaction (a flush only writes)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Sequence[Any]]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.calls.append((sql, [tuple(params)]))

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self.calls.append((sql, [tuple(row) for row in params]))

    def fetchone(self) -> Any:
        raise TypeError("a projection's flush only writes")

    def fetchall(self) -> list[Any]:
        raise TypeError("a projection's flush only writes")


_Batch = tuple[list[list[tuple[str, int, str]]], list[tuple[str, list[Sequence[Any]]]]]


class BulkWriter:
    """The bulk-write buffer: documents per projection, written with the accumulators.

    Each full buffer is committed on a connection of its own that does not wait for the
    disk at each commit (SQLite ``synchronous = NORMAL``, PostgreSQL ``synchronous_commit
    = off``): until the swap the shadow tables are the rebuild's alone, and a crash only
    means rebuilding again. The swap itself commits durably on the runner's connection.
    With ``behind``, a thread commits each buffer while the next one is folded (one
    batch in flight at most).
    """

    def __init__(
        self, db: Database, projections: Sequence[OfficerDocProjection], suffix: str, behind: bool = False
    ) -> None:
        self.db = db
        self.projections = projections
        self.suffix = suffix
        self.tables = [f"{p.doc_table}{suffix}" for p in projections]
        self.rows: list[list[tuple[str, int, str]]] = [[] for _ in projections]
        self.officers = 0
        self._conn: Any = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rebuild-write") if behind else None
        self._pending: Future[None] | None = None
        for projection in projections:
            projection.begin()

    def add(self, docs: list[tuple[str, int, dict[str, Any]] | None]) -> None:
        for rows, found in zip(self.rows, docs, strict=True):
            if found is not None:
                rows.append((found[0], found[1], dumps(found[2])))
        self.officers += 1

    def full(self) -> bool:
        return self.officers >= WRITE_BATCH

    def write(self) -> None:
        """Commit the buffer with the accumulators' statements (with ``behind``: hand them
        to the writing thread, once the previous batch is committed)."""
        statements = _Statements()
        for projection in self.projections:
            projection.flush(statements, self.suffix)
            projection.begin()
        batch: _Batch = (self.rows, statements.calls)
        self.rows = [[] for _ in self.projections]
        self.officers = 0
        self._wait()
        if self._thread is None:
            self._store(batch)
        else:
            self._pending = self._thread.submit(self._store, batch)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # a failed batch fails the rebuild

    def _store(self, batch: _Batch) -> None:
        if self.db.is_postgres:
            self._store_postgres(batch)
        else:
            self._store_sqlite(batch)

    def _store_sqlite(self, batch: _Batch) -> None:
        docs, calls = batch
        if self._conn is None:
            import sqlite3

            self._conn = sqlite3.connect(
                str(self.db.settings.sqlite_path), timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA synchronous = NORMAL")
        c = self._conn.cursor()
        c.execute("BEGIN IMMEDIATE")
        try:
            for table, rows in zip(self.tables, docs, strict=True):
                if rows:
                    c.executemany(f"INSERT INTO {table} (officer_id, version, doc) VALUES (?, ?, ?)", rows)
            for sql, params in calls:
                c.executemany(sql, params)
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def _store_postgres(self, batch: _Batch) -> None:
        """The documents by COPY, the accumulators' statements with psycopg's placeholders
        (written with ``?`` like every statement of the ledger's own tables: see ledger.store.db)."""
        docs, calls = batch
        if self._conn is None:
            import psycopg

            self._conn = psycopg.connect(self.db.settings.store, autocommit=True)
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            for table, rows in zip(self.tables, docs, strict=True):
                if rows:
                    with cur.copy(f"COPY {table} (officer_id, version, doc) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            for sql, params in calls:
                cur.executemany(sql.replace("?", "%s"), params)

    def close(self) -> None:
        try:
            self._wait()
        finally:
            if self._thread is not None:
                self._thread.shutdown()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
