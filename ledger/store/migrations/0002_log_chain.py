"""Tamper evidence that survives an insider: the log chain, and entity links that cover type.

Before this migration each entity's chain covered only the previous link and the
event's stored bytes, so a retyped event (an enrolment turned into a withdrawal with
the same fields) passed, and nothing linked the entities to each other.

This migration first checks every existing entity chain with the old rule and refuses
to go on if any link is broken (recomputing would launder tampered history: run
`ledger verify` with the previous release and investigate). Then it writes the entity
chains with the new rule (``ledger.integrity.chain.link``: type, entity, version, bytes) and the
log chain over every event in log order. Both passes stream the store with keyset
paging, so memory stays flat however long the history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from eventsourcing.persistence import StoredEvent

from ledger.domain.errors import LedgerError
from ledger.integrity import chain
from ledger.store.db import Cursor

NAME = "log chain over the whole log; entity chains cover type, entity and version"
PAGE = 5000
OLD = "ledger_chain_v1"


def _rows(c: Cursor, select: str, keys: str, order: str) -> Iterator[Any]:
    """Stream ``select`` ordered by ``order`` with keyset paging on the ``keys`` columns.

    The keys are the first columns of ``select`` and must be stored columns with an
    index in that order, never expressions: each page is then one index range scan,
    so the whole stream costs time linear in the store (a key computed per row, as
    PostgreSQL's uuid turned into text was, made every page sort the whole table).
    """
    last: tuple[Any, ...] | None = None
    width = len(order.split(","))
    while True:
        where, params = ("", ()) if last is None else (f"WHERE ({keys}) > ({', '.join('?' * width)})", last)
        c.execute(f"SELECT * FROM ({select}) q {where} ORDER BY {order} LIMIT {PAGE}", params)
        rows = c.fetchall()
        if not rows:
            return
        yield from rows
        last = tuple(rows[-1][:width])


def _event(entity: Any, version: Any, topic: Any, state: Any) -> StoredEvent:
    return StoredEvent(originator_id=chain.originator_key(entity), originator_version=int(version),
                       topic=str(topic), state=bytes(state))


def _insert_paged(c: Cursor, sql: str, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert ``rows`` with ``sql``, ``PAGE`` at a time (memory stays flat); returns how many."""
    count = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        count += 1
        if len(batch) >= PAGE:
            c.executemany(sql, batch)
            batch.clear()
    if batch:
        c.executemany(sql, batch)
    return count


def apply(c: Cursor, dialect: str) -> None:
    postgres = dialect == "postgres"
    events, position, entity = (
        ("ledger_events", "e.notification_id", "replace(e.originator_id::text, '-', '')") if postgres
        else ("stored_events", "e.rowid", "e.originator_id")
    )
    _create_tables(c, postgres)
    _rechain_entities(c, events, entity)
    _chain_log(c, events, position, entity)


def _create_tables(c: Cursor, postgres: bool) -> None:
    """The log chain's table, and the entity chain's anew beside the old one (renamed)."""
    blob = "BYTEA" if postgres else "BLOB"
    c.execute(
        f"CREATE TABLE {chain.LOG_TABLE} (position BIGINT PRIMARY KEY, originator_id TEXT NOT NULL, "
        f"version BIGINT NOT NULL, hash {blob} NOT NULL)"
    )
    c.execute(f"ALTER TABLE {chain.TABLE} RENAME TO {OLD}")
    if postgres:  # index names are schema-wide: free the primary key's name
        c.execute(f"ALTER INDEX IF EXISTS {chain.TABLE}_pkey RENAME TO {OLD}_pkey")
    c.execute(
        f"CREATE TABLE {chain.TABLE} (originator_id TEXT NOT NULL, version BIGINT NOT NULL, "
        f"hash {blob} NOT NULL, PRIMARY KEY (originator_id, version))"
    )


def _rechain_entities(c: Cursor, events: str, entity: str) -> None:
    """1. Entity by entity, in version order: every old link must hold; new links beside."""
    broken: list[str] = []
    # Keyed on the stored (originator_id, originator_version), the events' primary key:
    # a uuid orders as its hex text does, so this is the entity chains' order too.
    by_entity = (
        f"SELECT e.originator_id AS k, e.originator_version AS version, {entity} AS entity, e.topic, e.state, "
        f"o.hash FROM {events} e LEFT JOIN {OLD} o ON o.originator_id = {entity} AND o.version = e.originator_version"
    )
    rows = _rows(c, by_entity, "k, version", "k, version")
    count = _insert_paged(c, f"INSERT INTO {chain.TABLE} VALUES (?, ?, ?)", _relinked(rows, broken))
    c.execute(f"SELECT COUNT(*) FROM {OLD}")
    recorded = int(c.fetchone()[0])
    if recorded != count:
        broken.append(f"{recorded} chain entries for {count} events (events removed)")
    if broken:
        raise LedgerError(
            "migration 0002 refused: the existing hash chains are broken at "
            + ", ".join(broken[:10]) + (" ..." if len(broken) > 10 else "")
            + "; recomputing them would hide it (investigate with `ledger verify` of the previous release)"
        )
    c.execute(f"DROP TABLE {OLD}")


def _relinked(rows: Iterable[Any], broken: list[str]) -> Iterator[tuple[str, int, bytes]]:
    """The new entity-chain rows; each event whose old link does not hold is added to ``broken``."""
    current, version, old_head, new_head = "", 0, chain.GENESIS, chain.GENESIS
    for r in rows:
        s = _event(r[2], r[1], r[3], r[4])  # k, version, entity, topic, state, old hash
        key = str(r[2])
        if key != current:
            current, version, old_head, new_head = key, 0, chain.GENESIS, chain.GENESIS
        old_head = hashlib.sha256(old_head + s.state).digest()  # the old rule
        if s.originator_version != version + 1 or r[5] is None or bytes(r[5]) != old_head:
            broken.append(f"{key} v{s.originator_version}")
        new_head = chain.link_of(new_head, s)
        version = s.originator_version
        yield key, version, new_head


def _chain_log(c: Cursor, events: str, position: str, entity: str) -> None:
    """2. The log chain, in log order."""
    in_log = f"SELECT {position} AS position, {entity} AS entity, e.originator_version, e.topic, e.state FROM {events} e"
    _insert_paged(c, f"INSERT INTO {chain.LOG_TABLE} VALUES (?, ?, ?, ?)",
                  _log_links(_rows(c, in_log, "position", "position")))


def _log_links(rows: Iterable[Any]) -> Iterator[chain.Link]:
    head = chain.GENESIS
    for r in rows:
        s = _event(*r[1:5])  # position, entity, version, topic, state
        head = chain.link_of(head, s)
        yield int(r[0]), str(s.originator_id), s.originator_version, head
