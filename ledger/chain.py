"""Tamper evidence: each aggregate's events form a hash chain.

``hash(v) = SHA-256(hash(v-1) || stored bytes of event v)``, with 32 zero bytes
before version 1. The stored bytes are what the store holds (ciphertext for personal
data), so destroying an officer's key on erasure leaves the chain intact. Hashes are
written in the same transaction as the events; ``ledger verify`` recomputes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

GENESIS = b"\x00" * 32
TABLE = "ledger_chain"


def link(previous: bytes, state: bytes) -> bytes:
    return hashlib.sha256(previous + state).digest()


def originator_key(originator_id: Any) -> str:
    """The chain table's key for an aggregate: a UUID's hex, as the SQLite events table has it."""
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


def needed_previous(stored_events: Sequence[StoredEvent]) -> list[tuple[str, int]]:
    """(originator, version) pairs whose hash must be read to extend the chains."""
    first: dict[str, int] = {}
    for s in stored_events:
        key = originator_key(s.originator_id)
        first[key] = min(first.get(key, s.originator_version), s.originator_version)
    return [(key, v - 1) for key, v in first.items() if v > 1]


def extend(previous: dict[str, bytes], stored_events: Sequence[StoredEvent]) -> list[tuple[str, int, bytes]]:
    """Chain rows for these events, given the hash of each chain's last stored version."""
    heads = dict(previous)
    rows = []
    for s in sorted(stored_events, key=lambda s: (originator_key(s.originator_id), s.originator_version)):
        key = originator_key(s.originator_id)
        digest = link(heads.get(key, GENESIS) if s.originator_version > 1 else GENESIS, s.state)
        heads[key] = digest
        rows.append((key, s.originator_version, digest))
    return rows


SQLITE_PREVIOUS = f"SELECT originator_id, hash FROM {TABLE} WHERE originator_id = ? AND version = ?"
# One index lookup per pair; a row-value IN list is not index-driven on every engine
# (SQLite scans the whole table for it), which made each batch slower than the last.
POSTGRES_PREVIOUS = (
    f"SELECT c.originator_id, c.hash FROM {TABLE} c "
    "JOIN unnest(%s::text[], %s::bigint[]) AS k(o, v) ON c.originator_id = k.o AND c.version = k.v"
)


@dataclass(frozen=True)
class Break:
    """A place where the stored events no longer match their chain."""

    originator: str
    version: int
    problem: str


def verify_chain(events: Iterable[tuple[int, bytes]], hashes: dict[int, bytes], originator: str) -> list[Break]:
    """Recompute one aggregate's chain from its (version, state) rows and compare."""
    found: list[Break] = []
    previous = GENESIS
    expected_version = 1
    seen: set[int] = set()
    for version, state in events:
        seen.add(version)
        if version != expected_version:
            for missing in range(expected_version, version):
                found.append(Break(originator, missing, "event removed"))
        digest = link(previous, state)
        stored = hashes.get(version)
        if stored is None:
            found.append(Break(originator, version, "event has no chain entry (inserted outside the ledger)"))
        elif stored != digest:
            found.append(Break(originator, version, "event altered or reordered (hash mismatch)"))
            digest = stored  # judge the next event against the recorded chain, not the altered one
        previous = digest
        expected_version = version + 1
    for version in sorted(v for v in hashes if v not in seen and v >= expected_version):
        found.append(Break(originator, version, "event removed"))
    return found
