"""What every projection shares: idempotent per-officer documents, applied in batches.

A projection turns events into table changes. It is handed a batch of events in
order inside the runner's transaction, so its change and its position commit
together. Each officer's document remembers the last version applied: an event at
or below it is a duplicate delivery and changes nothing; an event that skips a
version is reported as a gap (never applied out of order).

A live consumer may keep documents in memory between batches (:class:`DocCache`).
Every document write is therefore a compare-and-set on the version the change was
based on: if another writer moved the document meanwhile (a dead-letter retry, a
second process on the same partition, a rebuild), the write fails the whole batch
(:func:`write_docs`) instead of overwriting it or counting an event twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.events import OFFICER_EVENTS
from ledger.projections.business import (
    LAST_AT,
    RETRACTION,
    HistoryUnavailable,
    add_into,
    business_order,
    epoch,
    mark,
)
from ledger.store.db import Cursor

CHUNK = 500
_OFFICER_TYPES = frozenset(OFFICER_EVENTS)
# PostgreSQL: deadlock detected, serialization failure (the transaction was the victim).
_RETRY_STATES = ("40P01", "40001")


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def select_in(c: Cursor, sql: str, keys: Sequence[Any]) -> list[Any]:
    """``sql`` has one ``IN ({})``; runs it over ``keys`` in chunks and joins the rows."""
    rows: list[Any] = []
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start : start + CHUNK])
        c.execute(sql.format(",".join("?" * len(chunk))), chunk)
        rows.extend(c.fetchall())
    return rows


def keep_newest(kept: dict[Any, tuple[Any, ...]], key: Any, row: tuple[Any, ...]) -> None:
    """Keep ``row`` (its version first) for ``key``, unless the same or a later revision is kept."""
    known = kept.get(key)
    if known is None or known[0] < row[0]:
        kept[key] = row


def write_newest(c: Cursor, table: str, key: Sequence[str], columns: Sequence[str], replaced: Sequence[str],
                 rows: Sequence[Sequence[Any]]) -> None:
    """Write reference rows (``key``, then ``columns`` with ``version``): a later revision
    replaces the version and the ``replaced`` columns; an older or repeated one is ignored,
    so neither the order nor how often rows are written matters."""
    if not rows:
        return
    names = (*key, *columns)
    kept = ", ".join(f"{name} = excluded.{name}" for name in ("version", *replaced))
    c.executemany(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {kept} WHERE {table}.version < excluded.version",
        rows,
    )


def add_counts(c: Cursor, table: str, key: Sequence[str], counts: Sequence[str],
               rows: Sequence[Sequence[Any]]) -> None:
    """Add each row's ``counts`` to the stored ones (a new key is inserted as it is).

    Commutative deltas: consumers of several partitions may write them at once; rows in
    key order, so their batches cannot deadlock.
    """
    if not rows:
        return
    names = (*key, *counts)
    added = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in counts)
    c.executemany(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {added}",
        rows,
    )


@dataclass(frozen=True)
class Gap:
    """An officer event refused because it does not follow the last applied version.

    ``held`` marks the officer's later events in the same batch: once a version is
    missing, nothing after it may be applied out of order.
    """

    officer_id: str
    expected: int
    got: int
    held: bool = False


class DocCache:
    """Committed documents of one projection, by officer: ``(version, doc)``, least recently used first.

    Only a consumer that checks the read models' generation in each batch's
    transaction may use one, and it must drop it when a batch fails (the documents
    are changed in place before the commit). A hit is used only when the batch's
    first event of the officer follows the cached version; anything else (a
    duplicate, a gap) is decided on the database's document.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._docs: dict[str, tuple[int, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, officer_id: str) -> tuple[int, dict[str, Any]] | None:
        found = self._docs.pop(officer_id, None)
        if found is not None:
            self._docs[officer_id] = found  # now the most recently used
        return found

    def put(self, officer_id: str, version: int, doc: dict[str, Any]) -> None:
        self._docs.pop(officer_id, None)
        self._docs[officer_id] = (version, doc)
        while len(self._docs) > self.limit:
            del self._docs[next(iter(self._docs))]

    def clear(self) -> None:
        self._docs.clear()


class DocumentMoved(Exception):
    """A stored document is not at the version a batch's change of it was based on."""


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed batch may succeed when applied again from the database.

    Either another writer moved a document the batch changed (:class:`DocumentMoved`),
    or PostgreSQL chose the transaction as a deadlock or serialization victim (also
    when that error is the cause of another, e.g. a pipeline reported as aborted).
    """
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, DocumentMoved) or getattr(seen, "sqlstate", None) in _RETRY_STATES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def write_docs(c: Cursor, table: str, rows: Sequence[tuple[str, int, str, int]]) -> None:
    """Write documents ``(officer_id, version, doc, based_on)``, each only if still at ``based_on``.

    Compare-and-set: existing documents are updated where their version is still
    ``based_on``, new ones (``based_on`` 0) inserted where absent. If any row was not
    written, another writer got there first: :class:`DocumentMoved` fails the batch,
    which is never an overwrite and never counts an event twice. PostgreSQL gets each
    kind in one statement over arrays (not a message per document), passed in binary
    (``%b``: a text array of JSON documents would otherwise be escaped character by
    character); SQLite, in process, runs one prepared statement per row.
    """
    updates = [r for r in rows if r[3]]
    inserts = [r[:3] for r in rows if not r[3]]
    written = 0
    if isinstance(c, sqlite3.Cursor):
        if updates:
            c.executemany(f"UPDATE {table} SET version = ?, doc = ? WHERE officer_id = ? AND version = ?",
                          [(version, doc, oid, based) for oid, version, doc, based in updates])
            written += c.rowcount  # summed over the rows
        if inserts:
            c.executemany(f"INSERT INTO {table} (officer_id, version, doc) VALUES (?, ?, ?) "
                          "ON CONFLICT (officer_id) DO NOTHING", inserts)
            written += c.rowcount
    else:
        if updates:
            written += c.execute(
                f"UPDATE {table} SET version = v.version, doc = v.doc "
                "FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::bigint[]) AS v (officer_id, version, doc, based) "
                f"WHERE {table}.officer_id = v.officer_id AND {table}.version = v.based",
                [list(column) for column in zip(*updates, strict=True)],
            ).rowcount
        if inserts:
            written += c.execute(
                f"INSERT INTO {table} (officer_id, version, doc) "
                "SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[]) ON CONFLICT (officer_id) DO NOTHING",
                [list(column) for column in zip(*inserts, strict=True)],
            ).rowcount
    if written != len(rows):
        raise DocumentMoved(f"{len(rows) - written} of {len(rows)} documents in {table} were moved by another writer")


class Projection:
    """A read model: its tables, and how a batch of events changes them."""

    name = "projection"
    # Sees every event of the store's log, in its order, one batch at a time, no topic's and
    # dead letters or not (e.g. it numbers across officers): see ``Runner``, ``rebuild``.
    follows_log = False
    log_types: tuple[str, ...] | None = None  # the officer event types it applies, if not all

    def tables(self) -> list[str]:
        """The tables this projection owns (a rebuild recreates exactly these)."""
        raise NotImplementedError

    def apply_batch(
        self, c: Cursor, events: list[dict[str, Any]], suffix: str = "", cache: DocCache | None = None
    ) -> list[Gap]:
        """Apply events in order; returns the officer events it refused as gaps.

        ``cache``: documents kept from earlier batches (a live consumer's; see ``DocCache``).
        """
        raise NotImplementedError


class OfficerDocProjection(Projection):
    """A projection keeping one JSON document per officer, plus optional extra tables.

    Events are applied in the order they come (versions ascending), which is the business
    order as long as each comes after the events before it. A late event (earlier than
    the document's latest) or a retraction changes the history before its end: the
    officer is folded again from its stored events, once as before the event and once
    with it, and the difference of the two folds is applied (``refold``). So a read model
    always shows the current business history, at a cost that grows with the officer's
    history, never with the store.
    """

    doc_table = "rm_docs"
    # Per-batch accumulators (attributes ``begin`` sets) that are sums: a re-fold adds the
    # officer's new contribution and subtracts the old. Values are numbers or lists of them.
    counters: tuple[str, ...] = ()
    # Per-batch sets of rows inserted idempotently; a re-fold may also remove rows, listed
    # in the attribute ``<name>_gone`` for ``flush`` to delete.
    row_sets: tuple[str, ...] = ()
    # Reads an officer's stored events through a version (public shape, ascending): set by the runner.
    history: Callable[[str, int], list[dict[str, Any]]] | None = None

    def tables(self) -> list[str]:
        return [self.doc_table, *self.extra_tables()]

    def extra_tables(self) -> list[str]:
        return []

    def new_doc(self, officer_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def apply_event(self, c: Any, doc: dict[str, Any], event: dict[str, Any]) -> None:
        """Apply one officer event to its document (pure, apart from batch deltas)."""
        raise NotImplementedError

    def apply_reference(self, c: Cursor, event: dict[str, Any], suffix: str) -> None:
        """Apply one reference event (default: not needed by this read model)."""

    def begin(self) -> None:
        """Called before a batch (to reset per-batch accumulators)."""

    def flush(self, c: Cursor, suffix: str) -> None:
        """Called after a batch's documents are written (to write accumulators)."""

    def fold(self, officer_id: str, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """A new document folded from ``events`` in business order (counted in the accumulators)."""
        doc = self.new_doc(officer_id)
        for event in business_order(events):
            self.apply_event(None, doc, event)
        mark(doc, events)
        return doc

    def refold(self, officer_id: str, stored: dict[str, Any], version: int) -> dict[str, Any]:
        """The officer's document through ``version`` folded again from the store, and the
        batch's accumulators moved by the difference between that fold and the fold of
        the versions before it (which ``stored`` is)."""
        if self.history is None:
            raise HistoryUnavailable(f"{self.name}: {officer_id} needs a re-fold and no history reader was given")
        events = self.history(officer_id, version)
        if [e["version"] for e in events] != list(range(1, version + 1)):
            raise HistoryUnavailable(f"{self.name}: the store does not hold versions 1..{version} of {officer_id}")
        kept = dict(self.__dict__)
        self.begin()
        self.fold(officer_id, events[:-1])
        before = dict(self.__dict__)
        self.begin()
        doc = self.fold(officer_id, events)
        after = dict(self.__dict__)
        self.__dict__.clear()
        self.__dict__.update(kept)
        for name in self.counters:
            add_into(getattr(self, name), after[name], 1)
            add_into(getattr(self, name), before[name], -1)
        for name in self.row_sets:  # the rows hold the officer id: after[name] are all of its rows
            rows, gone = getattr(self, name), getattr(self, f"{name}_gone")
            added, removed = after[name] - before[name], before[name] - after[name]
            rows.update(added)
            rows.difference_update(removed)
            gone.update(removed)
            gone.difference_update(added)
        self.refolded(stored, doc)
        return doc

    def refolded(self, stored: dict[str, Any], doc: dict[str, Any]) -> None:
        """Called after ``refold`` replaced ``stored`` by ``doc`` (for per-officer rows)."""

    def load_docs(self, c: Cursor, officer_ids: Iterable[str], suffix: str = "") -> dict[str, tuple[int, dict[str, Any]]]:
        rows = select_in(
            c,
            f"SELECT officer_id, version, doc FROM {self.doc_table}{suffix} WHERE officer_id IN ({{}})",
            sorted(set(officer_ids)),
        )
        return {row[0]: (int(row[1]), loads(row[2])) for row in rows}

    def _documents(
        self, c: Cursor, events: list[dict[str, Any]], suffix: str, cache: DocCache | None
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        """The batch's officers' documents: from the cache where the batch continues it, else loaded."""
        first: dict[str, int] = {}
        for event in events:
            if event["type"] in _OFFICER_TYPES:
                first.setdefault(event["officer_id"], event["version"])
        if cache is None:
            return self.load_docs(c, first, suffix)
        docs: dict[str, tuple[int, dict[str, Any]]] = {}
        missing = []
        for officer_id, version in first.items():
            hit = cache.get(officer_id)
            if hit is not None and hit[0] + 1 == version:
                docs[officer_id] = hit
            else:  # unknown, or a duplicate or gap: the database's document decides
                missing.append(officer_id)
        if missing:
            docs.update(self.load_docs(c, missing, suffix))
        return docs

    def apply_batch(
        self, c: Cursor, events: list[dict[str, Any]], suffix: str = "", cache: DocCache | None = None
    ) -> list[Gap]:
        self.begin()
        docs = self._documents(c, events, suffix, cache)
        based = {officer_id: version for officer_id, (version, _) in docs.items()}
        changed: set[str] = set()
        gaps: list[Gap] = []
        stalled: set[str] = set()
        for event in events:
            if event["type"] not in _OFFICER_TYPES:
                self.apply_reference(c, event, suffix)
                continue
            officer_id = event["officer_id"]
            version, doc = docs.get(officer_id) or (0, self.new_doc(officer_id))
            if event["version"] <= version:
                continue  # delivered before: already in the document
            if officer_id in stalled or event["version"] != version + 1:
                gaps.append(Gap(officer_id, version + 1, event["version"], officer_id in stalled))
                stalled.add(officer_id)
                continue
            at = epoch(event["occurred_at"])
            # A document from before LAST_AT was kept is folded again once to learn it.
            last = doc.get(LAST_AT, float("inf") if version else float("-inf"))
            if event["type"] == RETRACTION or at < last:
                doc = self.refold(officer_id, doc, event["version"])
            else:
                self.apply_event(c, doc, event)
                doc[LAST_AT] = at
            docs[officer_id] = (event["version"], doc)
            changed.add(officer_id)
        write_docs(c, f"{self.doc_table}{suffix}",
                   [(oid, docs[oid][0], dumps(docs[oid][1]), based.get(oid, 0)) for oid in sorted(changed)])
        if cache is not None:
            for officer_id, (version, doc) in docs.items():
                cache.put(officer_id, version, doc)
        self.flush(c, suffix)
        return gaps

    def get_doc(self, c: Cursor, officer_id: str) -> dict[str, Any] | None:
        c.execute(f"SELECT doc FROM {self.doc_table} WHERE officer_id = ?", (officer_id,))
        row = c.fetchone()
        return None if row is None else dict(loads(row[0]))

    def all_docs(self, c: Cursor) -> Iterable[dict[str, Any]]:
        c.execute(f"SELECT doc FROM {self.doc_table} ORDER BY officer_id")
        for row in c.fetchall():
            yield loads(row[0])
