"""Tamper evidence: hash chains over the whole log and over each entity's events.

Every link covers the previous link, the event's type (its stored topic), its entity
(the aggregate id), its version and its stored bytes, each length-prefixed so no two
different events encode alike:

    link(prev, e) = SHA-256(prev || len+topic || len+entity || version || len+state)

* The **entity chain** (``ledger_chain``) links each aggregate's versions, from 32
  zero bytes before version 1: it names the officer and version where something
  changed.
* The **log chain** (``ledger_log_chain``) links every event in log (notification)
  order: deleting an entity's events, or a whole entity, breaks the link of the next
  event in the log, whichever entity that belongs to. The head of the log chain up to
  a position is the *root* that a signed checkpoint commits to (``ledger.integrity.checkpoint``),
  which also catches a truncated tail and a history rewritten with recomputed hashes.

Both are written in the events' transaction by the recorders (under the store's write
lock, so log order is commit order). The stored bytes are ciphertext for personal data,
so destroying an officer's key on erasure leaves both chains intact.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

GENESIS = b"\x00" * 32
TABLE = "ledger_chain"
LOG_TABLE = "ledger_log_chain"


_pack_len = struct.Struct(">I").pack
_pack_version = struct.Struct(">q").pack


def link(previous: bytes, topic: str, entity: str, version: int, state: bytes) -> bytes:
    """The next link of a chain: covers type, entity, version and the stored bytes."""
    t, e, s = topic.encode(), entity.encode(), bytes(state)
    return hashlib.sha256(
        b"".join((previous, _pack_len(len(t)), t, _pack_len(len(e)), e, _pack_version(version), _pack_len(len(s)), s))
    ).digest()


def originator_key(originator_id: Any) -> str:
    """The chain tables' key for an aggregate: a UUID's hex, as the SQLite events table has it."""
    if isinstance(originator_id, UUID):
        return originator_id.hex
    text = str(originator_id)
    try:
        return UUID(text).hex
    except ValueError:
        return text


def link_of(previous: bytes, s: StoredEvent) -> bytes:
    return link(previous, s.topic, originator_key(s.originator_id), s.originator_version, s.state)


def needed_previous(stored_events: Sequence[StoredEvent]) -> list[tuple[str, int]]:
    """(originator, version) pairs whose hash must be read to extend the entity chains."""
    first: dict[str, int] = {}
    for s in stored_events:
        key = originator_key(s.originator_id)
        first[key] = min(first.get(key, s.originator_version), s.originator_version)
    return [(key, v - 1) for key, v in first.items() if v > 1]


def extend(previous: dict[str, bytes], stored_events: Sequence[StoredEvent]) -> list[tuple[str, int, bytes]]:
    """Entity-chain rows for these events, given the hash of each chain's last stored version."""
    heads = dict(previous)
    rows = []
    keyed = sorted(((originator_key(s.originator_id), s.originator_version, s) for s in stored_events),
                   key=lambda k: k[:2])
    for key, version, s in keyed:
        digest = link(heads.get(key, GENESIS) if version > 1 else GENESIS, s.topic, key, version, s.state)
        heads[key] = digest
        rows.append((key, version, digest))
    return rows


def extend_log(head: bytes, positioned: Iterable[tuple[int, StoredEvent]]) -> list[tuple[int, str, int, bytes]]:
    """Log-chain rows (position, entity, version, hash) for events at these positions, after ``head``.

    The entity and version only label the row (so a removed event can be named); the
    hash is what proves anything.
    """
    rows = []
    for position, s in sorted(positioned, key=lambda p: p[0]):
        key = originator_key(s.originator_id)
        head = link(head, s.topic, key, s.originator_version, s.state)
        rows.append((position, key, s.originator_version, head))
    return rows


SQLITE_PREVIOUS = f"SELECT originator_id, hash FROM {TABLE} WHERE originator_id = ? AND version = ?"
# One index lookup per pair; a row-value IN list is not index-driven on every engine
# (SQLite scans the whole table for it), which made each batch slower than the last.
# Many pairs go in one statement as a UNION ALL of such look-ups (each term is still one
# primary-key look-up); SQLite allows 500 terms in a compound SELECT, so 200 per statement.
SQLITE_PREVIOUS_PER_QUERY = 200


def sqlite_previous(pairs: int) -> str:
    """One statement looking up ``pairs`` (originator, version) chain entries, by primary key."""
    return " UNION ALL ".join([SQLITE_PREVIOUS] * pairs)


POSTGRES_PREVIOUS = (
    f"SELECT c.originator_id, c.hash FROM {TABLE} c "
    "JOIN unnest(%s::text[], %s::bigint[]) AS k(o, v) ON c.originator_id = k.o AND c.version = k.v"
)
LOG_HEAD = f"SELECT hash FROM {LOG_TABLE} ORDER BY position DESC LIMIT 1"


@dataclass(frozen=True)
class Break:
    """A place where the stored events no longer match their chain."""

    originator: str
    version: int
    problem: str
    position: int | None = None


def verify_chain(events: Iterable[StoredEvent], hashes: dict[int, bytes], originator: str) -> list[Break]:
    """Recompute one entity's chain from its stored events (in version order) and compare."""
    found: list[Break] = []
    previous = GENESIS
    expected_version = 1
    seen: set[int] = set()
    for s in events:
        version = s.originator_version
        seen.add(version)
        if version != expected_version:
            for missing in range(expected_version, version):
                found.append(Break(originator, missing, "event removed"))
        digest = link_of(previous, s)
        stored = hashes.get(version)
        if stored is None:
            found.append(Break(originator, version, "event has no chain entry (inserted outside the ledger)"))
        elif stored != digest:
            found.append(Break(originator, version, "event altered or reordered, or retyped (hash mismatch)"))
            digest = stored  # judge the next event against the recorded chain, not the altered one
        previous = digest
        expected_version = version + 1
    for version in sorted(v for v in hashes if v not in seen and v >= expected_version):
        found.append(Break(originator, version, "event removed"))
    return found


Link = tuple[int, str, int, bytes]  # a log-chain row: position, entity, version, hash


def verify_log(events: Iterator[tuple[int, StoredEvent]], links: Iterator[Link]) -> tuple[int, list[Break]]:
    """Recompute the log chain from events in position order and compare with its rows.

    Both iterators are in ascending position order (streamed, so memory stays flat).
    Returns how many events were checked, and every break.
    """
    found: list[Break] = []
    head = GENESIS
    checked = 0
    link_row = next(links, None)
    for position, s in events:
        checked += 1
        while link_row is not None and link_row[0] < position:
            found.append(_removed(link_row))
            head = link_row[3]
            link_row = next(links, None)
        digest = link_of(head, s)
        entity = originator_key(s.originator_id)
        if link_row is None or link_row[0] != position:
            found.append(Break(entity, s.originator_version, "event has no log-chain entry (inserted outside the ledger)", position))
        else:
            if link_row[3] != digest:
                found.append(Break(entity, s.originator_version, "log chain broken here: this event, or the one before it in the log, was altered or reordered, retyped or removed", position))
                digest = link_row[3]
            link_row = next(links, None)
        head = digest
    while link_row is not None:
        found.append(_removed(link_row))
        link_row = next(links, None)
    return checked, found


def _removed(row: Link) -> Break:
    return Break(row[1], row[2], f"event removed (its log-chain entry at position {row[0]} remains)", row[0])


def log_root(events: Iterable[tuple[int, StoredEvent]], upto: int) -> tuple[bytes, int, int]:
    """The log chain's head over the events at positions <= ``upto``, recomputed from the
    events alone; returns (root, last position seen, events folded)."""
    head = GENESIS
    last = 0
    count = 0
    for position, s in events:
        if position > upto:
            break
        head = link_of(head, s)
        last = position
        count += 1
    return head, last, count
