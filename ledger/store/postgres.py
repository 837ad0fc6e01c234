"""PostgreSQL event store: the eventsourcing recorder plus the ledger's side tables.

As in :mod:`ledger.store.sqlite`, receipts and data keys share the events' transaction.
The library's recorder takes an EXCLUSIVE lock on the events table while inserting,
so notification ids become visible in commit order and a log follower never
passes over an id that a slower transaction fills in later.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composable, Composed, Identifier

from ledger.integrity import chain
from ledger.store.receipts import ACCESS, ACTORS, Access, Actor, Receipt
from ledger.store.recorder import LedgerRecorder


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column (for ``unnest`` over arrays)."""
    return [[row[i] for row in rows] for i in range(width)]


class LedgerPostgresRecorder(PostgresApplicationRecorder, LedgerRecorder):
    """Application recorder that also keeps command receipts and officer data keys (see :class:`LedgerRecorder`)."""

    # Rows go in as one statement over arrays per table; off, as the library writes them
    # (a statement per row). Both store the same rows (tests/test_fast_paths.py).
    array_inserts = True

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        schema = Identifier(datastore.schema)
        self.receipts_table = SQL("{}.{}").format(schema, Identifier(f"{prefix}_command_receipts"))
        self.keys_table = SQL("{}.{}").format(schema, Identifier(f"{prefix}_officer_keys"))
        self.chain_table = SQL("{}.{}").format(schema, Identifier(chain.TABLE))
        self.log_table = SQL("{}.{}").format(schema, Identifier(chain.LOG_TABLE))
        self.access_table = SQL("{}.{}").format(schema, Identifier(ACCESS))
        self.actors_table = SQL("{}.{}").format(schema, Identifier(ACTORS))
        # Which event got which position: the log chain links events in position order.
        self.insert_events_statement += SQL(", originator_id, originator_version")
        # The same insert from one array per column, passed in binary: psycopg builds an
        # array of composite values in Python, value by value, which cost more than the
        # insert itself. unnest() keeps the arrays' order, as the library's insert relies on.
        self.insert_arrays_statement = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id, originator_id, originator_version"
        ).format(schema, Identifier(events_table_name))
        # The tables themselves come from ledger.store.schema's migrations, never from here.
        self.sql_create_statements.clear()

    def _extend_chains(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]) -> None:
        pairs = chain.needed_previous(stored_events)
        previous: dict[str, bytes] = {}
        if pairs:
            curs.execute(chain.POSTGRES_PREVIOUS, ([o for o, _ in pairs], [v for _, v in pairs]))
            previous.update((row["originator_id"], bytes(row["hash"])) for row in curs.fetchall())
        rows = chain.extend(previous, stored_events)
        if rows:
            self._insert_rows(curs, self.chain_table, ("text", "bigint", "bytea"), rows)

    def _insert_rows(
        self, curs: Cursor[DictRow], into: Composable, types: Sequence[str], rows: Sequence[Sequence[Any]],
        tail: str = "",
    ) -> None:
        """Rows into a table: one statement over arrays (one per column, passed in binary),
        or, with ``array_inserts`` off, the plain statement once per row."""
        if not rows:
            return
        if self.array_inserts:
            arrays = SQL(", ").join(SQL(f"%b::{t}[]") for t in types)
            curs.execute(SQL("INSERT INTO {} SELECT * FROM unnest({}) " + tail).format(into, arrays),
                         columns(rows, len(types)))
        else:
            values = SQL(", ").join(SQL("%s") for _ in types)
            curs.executemany(SQL("INSERT INTO {} VALUES ({}) " + tail).format(into, values), rows)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """The library's insert (table lock, notification, rows), from one array per column."""
        if not self.array_inserts:
            super()._insert_stored_events(curs, stored_events, **kwargs)
            return
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_arrays_statement,
            [
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
            ],
        )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Read the positions the insert assigned, then extend the log chain (still under
        the table lock the library took, so no other writer is between head and insert)."""
        rows = curs.fetchall()
        by_key = {(chain.originator_key(s.originator_id), s.originator_version): s for s in stored_events}
        positioned = [
            (int(r["notification_id"]), by_key[(chain.originator_key(r["originator_id"]), int(r["originator_version"]))])
            for r in rows
        ]
        curs.execute(SQL("SELECT hash FROM {} ORDER BY position DESC LIMIT 1").format(self.log_table))
        head = curs.fetchone()
        links = chain.extend_log(bytes(head["hash"]) if head else chain.GENESIS, positioned)
        self._insert_rows(curs, self.log_table, ("bigint", "text", "bigint", "bytea"), links)
        return [int(r["notification_id"]) for r in rows]

    def select_log_chain(self, after: int, limit: int) -> list[chain.Link]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT position, originator_id, version, hash FROM {} "
                    "WHERE position > %s ORDER BY position LIMIT %s").format(self.log_table),
                (after, limit),
            )
            return [(int(r["position"]), str(r["originator_id"]), int(r["version"]), bytes(r["hash"]))
                    for r in curs.fetchall()]

    def select_log_head(self) -> tuple[int, bytes] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT position, hash FROM {} ORDER BY position DESC LIMIT 1").format(self.log_table))
            row = curs.fetchone()
            return None if row is None else (int(row["position"]), bytes(row["hash"]))

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        self._extend_chains(curs, stored_events)
        receipts: dict[str, Receipt] = kwargs.get("receipts") or {}
        keys: dict[str, bytes] = kwargs.get("keys") or {}
        # Each side table in one statement over arrays, not a message per row.
        self._insert_rows(
            curs, SQL("{} (command_id, content_hash, officer_id)").format(self.receipts_table), ("text", "text", "text"),
            [(cid, r.digest, r.officer_id) for cid, r in receipts.items()],
        )
        access: dict[str, Access] = kwargs.get("access") or {}
        self._insert_rows(
            curs, SQL("{} (officer_id, ministry_id, erased)").format(self.access_table), ("text", "text", "integer"),
            [(officer, a.ministry_id, int(a.erased)) for officer, a in sorted(access.items())],
            "ON CONFLICT (officer_id) DO UPDATE SET ministry_id = excluded.ministry_id, erased = excluded.erased",
        )
        self._insert_rows(curs, self.keys_table, ("text", "bytea"), list(keys.items()))
        actors: list[Actor] = kwargs.get("actors") or []
        self._insert_rows(curs, SQL("{} (officer_id, version, role, token_name)").format(self.actors_table),
                          ("text", "bigint", "text", "text"), actors)
        for sql, rows in kwargs.get("side_rows") or ():
            # Statements of the ledger's own (``?`` placeholders, e.g. the xAPI statements' index).
            curs.executemany(sql.replace("?", "%s"), rows)
        for officer_id in kwargs.get("destroy_keys") or ():
            curs.execute(
                SQL("DELETE FROM {} WHERE officer_id = %s").format(self.keys_table), (officer_id,)
            )

    def scrub(self, wait: float = 10.0) -> None:
        """Leave no dead row version of a destroyed key in the key table's files.

        VACUUM FULL keeps a dead row version while any transaction that began before it
        died is still running, in any database of the server. So first wait (up to
        ``wait`` seconds) until every transaction running when the scrub began has ended;
        then raise if the VACUUM still reports dead row versions it could not remove (a
        reader of this database holding an older snapshot), so the caller tries again.
        """
        dead: list[int] = []

        def count_dead(notice: Any) -> None:
            found = re.search(r"(\d+) dead row versions cannot be removed yet", notice.message_detail or "")
            if found:
                dead.append(int(found.group(1)))

        deadline = time.monotonic() + wait
        with self.datastore.get_connection() as conn:
            conn.autocommit = True
            try:
                curs = conn.cursor(row_factory=tuple_row)
                began = curs.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
                while began is not None and time.monotonic() < deadline:
                    ended = curs.execute("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= %s::xid8",
                                         (began[0],)).fetchone()
                    if ended is not None and ended[0]:
                        break
                    time.sleep(0.05)
                conn.add_notice_handler(count_dead)
                try:
                    conn.execute(SQL("VACUUM (FULL, VERBOSE) {}").format(self.keys_table))
                finally:
                    conn.remove_notice_handler(count_dead)
            finally:
                conn.autocommit = False
        if any(dead):
            raise RuntimeError(f"{sum(dead)} dead row versions of the key table cannot be removed yet "
                               "(a transaction older than the erasure is still running)")

    def select_chain(self, originator: str) -> dict[int, bytes]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT version, hash FROM {} WHERE originator_id = %s").format(self.chain_table),
                (originator,),
            )
            return {int(r["version"]): bytes(r["hash"]) for r in curs.fetchall()}

    def originators(self) -> set[str]:
        from uuid import UUID

        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT DISTINCT originator_id::text AS o FROM {}.{}").format(
                    Identifier(self.datastore.schema), Identifier(self.events_table_name)
                )
            )
            found = {UUID(r["o"]).hex for r in curs.fetchall()}
            curs.execute(SQL("SELECT DISTINCT originator_id AS o FROM {}").format(self.chain_table))
            found.update(r["o"] for r in curs.fetchall())
        return found

    def _rows_for(self, sql: Composed, keys: Iterable[str]) -> list[DictRow]:
        """Run ``sql`` (one ``= ANY(%s)``) over ``keys`` at once; no query when there are none."""
        wanted = list(keys)
        if not wanted:
            return []
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(sql, (wanted,))
            return curs.fetchall()

    def select_receipts(self, command_ids: Iterable[str]) -> dict[str, Receipt]:
        sql = SQL("SELECT command_id, content_hash, officer_id FROM {} WHERE command_id = ANY(%s)")
        rows = self._rows_for(sql.format(self.receipts_table), command_ids)
        return {row["command_id"]: Receipt(row["content_hash"], row["officer_id"]) for row in rows}

    def select_access(self, officer_id: str) -> Access | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT ministry_id, erased FROM {} WHERE officer_id = %s").format(self.access_table),
                (officer_id,),
            )
            row = curs.fetchone()
            return None if row is None else Access(str(row["ministry_id"]), bool(row["erased"]))

    def select_keys(self, officer_ids: Iterable[str]) -> dict[str, bytes]:
        sql = SQL("SELECT officer_id, data_key FROM {} WHERE officer_id = ANY(%s)").format(self.keys_table)
        return {row["officer_id"]: bytes(row["data_key"]) for row in self._rows_for(sql, officer_ids)}

    def _events(self) -> Composed:
        return SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

    def select_by_entity(
        self, upto: int, after: tuple[str, int] | None, below: str | None, limit: int
    ) -> list[tuple[str, int, str, bytes]]:
        # The entity as 32 hex digits, made by the server (no UUID object per row); a
        # uuid column reads them back as they are.
        sql = SQL(
            "SELECT translate(originator_id::text, '-', ''), originator_version, topic, state FROM {} "
            "WHERE notification_id <= %s"
        ).format(self._events())
        params: list[Any] = [upto]
        if after is not None:
            sql += SQL(" AND (originator_id, originator_version) > (%s::uuid, %s)")
            params += [after[0], after[1]]
        if below is not None:
            sql += SQL(" AND originator_id < %s::uuid")
            params.append(below)
        sql += SQL(" ORDER BY originator_id, originator_version LIMIT %s")
        params.append(limit)
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(force_rollback=True),
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            # Along the primary key, never "sort what is left, then take a page": the
            # planner's estimates (none before the first ANALYZE) can pick that, and each
            # page would then sort the rest of the history again.
            curs.execute("SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; "
                         "SET LOCAL enable_seqscan = off")
            curs.execute(sql, params)
            rows: list[tuple[str, int, str, bytes]] = curs.fetchall()
            return rows

    def select_log_except(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        return self._log_rows("substr(topic, 1, %s) <> %s", (len(prefix), prefix), after, upto, limit)

    def select_log_of(
        self, topics: Sequence[str], after: int, upto: int, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        return self._log_rows("topic = ANY(%s)", (list(topics),), after, upto, limit)

    def _log_rows(self, condition: str, params: tuple[Any, ...], after: int, upto: int,
                  limit: int) -> list[tuple[int, str, int, str, bytes]]:
        """A page of the log in (after, upto] whose topics meet ``condition``, as raw rows."""
        sql = SQL(
            "SELECT notification_id, translate(originator_id::text, '-', ''), originator_version, topic, state FROM {} "
            "WHERE notification_id > %s AND notification_id <= %s AND " + condition + " "
            "ORDER BY notification_id LIMIT %s"
        ).format(self._events())
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(sql, (after, upto, *params, limit))
            rows: list[tuple[int, str, int, str, bytes]] = curs.fetchall()
            return rows

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        # In one query, however many.
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                SQL("SELECT originator_id, originator_version, topic, state FROM {} "
                    "WHERE originator_id = ANY(%b::uuid[]) ORDER BY originator_id, originator_version").format(
                    self._events()),
                [list(originator_ids)],
            )
            return [StoredEvent(r[0], int(r[1]), str(r[2]), bytes(r[3])) for r in curs.fetchall()]

