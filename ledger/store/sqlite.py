"""SQLite event store: the eventsourcing recorder plus the ledger's side tables.

Command receipts (idempotency) and officer data keys are written in the same
transaction as the events they belong to, so a crash can never keep one without
the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from ledger.integrity import chain
from ledger.store.receipts import ACCESS, ACTORS, Access, Actor, Receipt
from ledger.store.recorder import LedgerRecorder

RECEIPTS = "command_receipts"


# Seconds a scrub waits for other connections before it reports itself as not done.
SCRUB_BUSY_TIMEOUT = 3.0


class ScrubIncomplete(RuntimeError):
    """The database files could not be scrubbed now (the erasure itself is done)."""
KEYS = "officer_keys"


class LedgerSQLiteRecorder(SQLiteApplicationRecorder, LedgerRecorder):
    """Application recorder that also keeps command receipts and officer data keys (see :class:`LedgerRecorder`)."""

    # Events inserted with one executemany per transaction, their notification ids (rowids)
    # taken from the last one inserted; off, one statement per event as the library does.
    # Same rows either way (tests/test_fast_paths.py).
    bulk_inserts = True
    # insert_events takes ``heads``: entity-chain hashes the caller knows (each aggregate's
    # at the version before its first event here), so they are not read back; the new
    # heads are written into the same dict.
    takes_heads = True
    # Pages of cache per connection (negative: KiB). The events' and the chain's primary
    # keys start with a random UUID, so each insert lands on a random page of those
    # indexes; with SQLite's default 2 MB most of those pages are read from the file again
    # once the store has grown past a few hundred thousand events.
    cache_kib = 262_144
    # WAL pages before an automatic checkpoint copies them into the database (SQLite's
    # default: 1,000). A batch of random-key inserts dirties a page per event in each of
    # those indexes, so at 1,000 every commit was followed by a checkpoint copying all of
    # them; less often, a page written by several batches is copied once.
    checkpoint_pages = 16_000

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        # The tables themselves come from ledger.store.schema's migrations, never from here.
        super().__init__(datastore, events_table_name)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.bulk_inserts:
            c.execute(f"PRAGMA cache_size = -{self.cache_kib}")
            c.execute(f"PRAGMA wal_autocheckpoint = {self.checkpoint_pages}")
        ids = self._insert_all(c, stored_events) if self.bulk_inserts else super()._insert_events(c, stored_events, **kwargs)
        self._extend_chains(c, stored_events, kwargs.get("heads"))
        if ids:
            c.execute(chain.LOG_HEAD)
            row = c.fetchone()
            rows = chain.extend_log(bytes(row[0]) if row else chain.GENESIS, zip(ids, stored_events, strict=True))
            c.executemany(f"INSERT INTO {chain.LOG_TABLE} VALUES (?, ?, ?, ?)", rows)
        receipts: dict[str, Receipt] = kwargs.get("receipts") or {}
        keys: dict[str, bytes] = kwargs.get("keys") or {}
        if receipts:
            c.executemany(
                f"INSERT INTO {RECEIPTS} (command_id, content_hash, officer_id) VALUES (?, ?, ?)",
                [(cid, r.digest, r.officer_id) for cid, r in receipts.items()],
            )
        access: dict[str, Access] = kwargs.get("access") or {}
        if access:
            c.executemany(
                f"INSERT INTO {ACCESS} (officer_id, ministry_id, erased) VALUES (?, ?, ?) "
                "ON CONFLICT (officer_id) DO UPDATE SET ministry_id = excluded.ministry_id, erased = excluded.erased",
                [(officer, a.ministry_id, int(a.erased)) for officer, a in sorted(access.items())],
            )
        if keys:
            c.executemany(f"INSERT INTO {KEYS} VALUES (?, ?)", list(keys.items()))
        actors: list[Actor] = kwargs.get("actors") or []
        if actors:
            c.executemany(f"INSERT INTO {ACTORS} (officer_id, version, role, token_name) VALUES (?, ?, ?, ?)", actors)
        for sql, rows in kwargs.get("side_rows") or ():
            c.executemany(sql, rows)  # e.g. the xAPI statements' index (ledger.xapi.statement)
        destroy = kwargs.get("destroy_keys") or ()
        if destroy:
            # Overwrite the deleted key's bytes in the page instead of leaving them
            # in free space; scrub() then clears the WAL and the free pages.
            c.execute("PRAGMA secure_delete = ON")
        for officer_id in destroy:
            c.execute(f"DELETE FROM {KEYS} WHERE officer_id = ?", (officer_id,))
        return ids

    def _insert_all(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the events in one statement; their rowids, in the events' order.

        The table is a plain rowid table and the transaction holds SQLite's write lock,
        so each insert takes the largest rowid plus one: the ids are the ``n`` numbers
        ending at the last one inserted. Checked against the largest rowid before; when
        that does not hold (SQLite picks random rowids once the largest possible one is
        taken), each id is read back by the event's primary key.
        """
        if not stored_events:
            return []
        c.execute(f"SELECT max(rowid) FROM {self.events_table_name}")
        before = c.fetchone()[0] or 0
        c.executemany(
            self.insert_events_statement,
            [(s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
              s.originator_version, s.topic, s.state) for s in stored_events],
        )
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        if last - before == len(stored_events):
            return list(range(before + 1, last + 1))
        ids = []
        for s in stored_events:
            c.execute(f"SELECT rowid FROM {self.events_table_name} WHERE originator_id = ? AND originator_version = ?",
                      (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                       s.originator_version))
            ids.append(int(c.fetchone()[0]))
        return ids

    def scrub(self) -> None:
        """Leave no copy of destroyed keys in the database files (WAL, free pages)."""
        import sqlite3

        raw = sqlite3.connect(self.datastore.pool.db_name, isolation_level=None, timeout=SCRUB_BUSY_TIMEOUT)
        try:
            raw.execute("PRAGMA secure_delete = ON")
            self._checkpoint(raw)
            raw.execute("VACUUM")
            self._checkpoint(raw)
        finally:
            raw.close()

    @staticmethod
    def _checkpoint(raw: Any) -> None:
        """Copy the WAL into the database and truncate it, or fail: a busy checkpoint
        leaves old pages (and the destroyed key in them) in the WAL file."""
        busy, wal_pages, moved = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy or (wal_pages != -1 and moved != wal_pages):
            raise ScrubIncomplete(
                f"the WAL could not be checkpointed ({moved} of {wal_pages} pages; another "
                "connection is reading or writing the database)"
            )

    def _extend_chains(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       heads: dict[str, bytes] | None = None) -> None:
        previous: dict[str, bytes] = dict(heads or {})
        pairs = [p for p in chain.needed_previous(stored_events) if p[0] not in previous]
        for start in range(0, len(pairs), chain.SQLITE_PREVIOUS_PER_QUERY):
            chunk = pairs[start : start + chain.SQLITE_PREVIOUS_PER_QUERY]
            c.execute(chain.sqlite_previous(len(chunk)), [value for pair in chunk for value in pair])
            for row in c.fetchall():
                previous[row[0]] = bytes(row[1])
        rows = chain.extend(previous, stored_events)
        c.executemany(f"INSERT INTO {chain.TABLE} VALUES (?, ?, ?)", rows)
        if heads is not None:
            heads.update((key, digest) for key, _, digest in rows)

    def select_chain(self, originator: str) -> dict[int, bytes]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT version, hash FROM {chain.TABLE} WHERE originator_id = ?", (originator,))
            return {int(r[0]): bytes(r[1]) for r in c.fetchall()}

    def select_log_chain(self, after: int, limit: int) -> list[chain.Link]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT position, originator_id, version, hash FROM {chain.LOG_TABLE} "
                "WHERE position > ? ORDER BY position LIMIT ?",
                (after, limit),
            )
            return [(int(r[0]), str(r[1]), int(r[2]), bytes(r[3])) for r in c.fetchall()]

    def select_log_head(self) -> tuple[int, bytes] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, hash FROM {chain.LOG_TABLE} ORDER BY position DESC LIMIT 1")
            row = c.fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]))

    def count_notifications(self, after: int, upto: int) -> int:
        if upto <= after:
            return 0
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM {self.events_table_name} WHERE rowid > ? AND rowid <= ?", (after, upto))
            return int(c.fetchone()[0])

    def originators(self) -> set[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id FROM {self.events_table_name} "
                f"UNION SELECT originator_id FROM {chain.TABLE}"
            )
            return {r[0] for r in c.fetchall()}

    def _rows_for(self, sql: str, keys: Iterable[str]) -> list[tuple[Any, ...]]:
        """Run ``sql`` (one ``IN ({})``) over ``keys`` in chunks; the rows as tuples."""
        wanted = list(keys)
        rows: list[tuple[Any, ...]] = []
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                c.execute(sql.format(",".join("?" * len(chunk))), chunk)
                rows.extend(tuple(row) for row in c.fetchall())
        return rows

    def select_receipts(self, command_ids: Iterable[str]) -> dict[str, Receipt]:
        sql = f"SELECT command_id, content_hash, officer_id FROM {RECEIPTS} WHERE command_id IN ({{}})"
        return {cid: Receipt(digest, officer) for cid, digest, officer in self._rows_for(sql, command_ids)}

    def select_access(self, officer_id: str) -> Access | None:
        rows = self._rows_for(f"SELECT ministry_id, erased FROM {ACCESS} WHERE officer_id IN ({{}})", [officer_id])
        return Access(str(rows[0][0]), bool(rows[0][1])) if rows else None

    def select_keys(self, officer_ids: Iterable[str]) -> dict[str, bytes]:
        sql = f"SELECT officer_id, data_key FROM {KEYS} WHERE officer_id IN ({{}})"
        return {officer: bytes(key) for officer, key in self._rows_for(sql, officer_ids)}

    def select_by_entity(
        self, upto: int, after: tuple[str, int] | None, below: str | None, limit: int
    ) -> list[tuple[str, int, str, bytes]]:
        sql = (
            f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
            "WHERE rowid <= ? AND (originator_id, originator_version) > (?, ?)"
        )
        params: list[Any] = [upto, *(after or ("", 0))]
        if below is not None:
            sql += " AND originator_id < ?"
            params.append(below)
        sql += " ORDER BY originator_id, originator_version LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None  # plain tuples: (TEXT, INTEGER, TEXT, BLOB) as they are
            cursor.execute(sql, params)
            rows: list[tuple[str, int, str, bytes]] = cursor.fetchall()
            return rows

    def select_log_except(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
                "WHERE rowid > ? AND rowid <= ? AND substr(topic, 1, ?) <> ? ORDER BY rowid LIMIT ?",
                (after, upto, len(prefix), prefix, limit),
            )
            return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), bytes(r[4])) for r in c.fetchall()]

    def select_log_of(
        self, topics: Sequence[str], after: int, upto: int, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
                f"WHERE rowid > ? AND rowid <= ? AND topic IN ({', '.join('?' * len(topics))}) ORDER BY rowid LIMIT ?",
                (after, upto, *topics, limit),
            )
            return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), bytes(r[4])) for r in c.fetchall()]

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        # One query per 500 of them.
        found: list[StoredEvent] = []
        wanted = [o.hex for o in originator_ids]
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({', '.join('?' * len(chunk))}) "
                    "ORDER BY originator_id, originator_version",
                    chunk,
                )
                found += [StoredEvent(UUID(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in c.fetchall()]
        return found

