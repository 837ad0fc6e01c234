"""Applies batches of positioned events to every projection, in one transaction.

Each projection has its own position per source partition (the embedded log is one
partition of source ``log``; Kafka has a partition per topic partition). A batch
writes the read-model changes, the dead letters and the new positions together,
so a crash, a restart or a duplicate delivery can never count an event twice or
lose one.

Poison: a message that cannot be decoded, or an officer event that skips a version,
goes to the dead-letter table with its reason and position. From then on that
officer's later events are held back (also recorded there, never applied out of
order); every other officer keeps flowing. Once the cause is gone, ``recovery.retry``
(``ledger dead-letters retry``) folds such an officer's events from the store and
clears its dead letters in one transaction under the same lock.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ledger.db import Cursor, Database
from ledger.events import OFFICER_EVENTS
from ledger.projections.base import Projection, select_in

log = logging.getLogger("ledger.projections")

READ_MODEL_LOCK = 0x1ED6E6
# The source name of the store's own notification log (embedded mode: one partition, 0).
LOG_SOURCE = "log"


@dataclass(frozen=True)
class Item:
    """One message from a source: its position, key, and decoded event or error."""

    source: str
    part: int
    offset: int
    key: str | None
    event: dict[str, Any] | None
    error: str | None = None
    payload: str | None = None

    @property
    def officer(self) -> str | None:
        """The officer this message belongs to (undecodable messages count by their key)."""
        if self.event is None or self.event["type"] in OFFICER_EVENTS:
            return self.key
        return None


def all_projections() -> list[Projection]:
    from ledger.projections.competency import CompetenciesProjection
    from ledger.projections.gaps import GapsProjection
    from ledger.projections.ministry import MinistriesProjection
    from ledger.projections.plans import PlansProjection
    from ledger.projections.record import RecordsProjection

    return [RecordsProjection(), CompetenciesProjection(), MinistriesProjection(), PlansProjection(),
            GapsProjection()]


class Runner:
    """Owns the positions and dead letters; drives the projections batch by batch."""

    def __init__(self, db: Database, projections: Sequence[Projection] | None = None) -> None:
        self.db = db
        self.projections = list(projections or all_projections())

    def offsets(self, c: Cursor | None = None) -> dict[str, dict[tuple[str, int], int]]:
        """Next offset to apply, per projection and (source, partition)."""
        if c is None:
            with self.db.transaction() as cur:
                return self.offsets(cur)
        c.execute("SELECT projection, source, part, next_offset FROM ledger_offsets")
        found: dict[str, dict[tuple[str, int], int]] = {p.name: {} for p in self.projections}
        for name, source, part, next_offset in c.fetchall():
            found.setdefault(name, {})[(source, int(part))] = int(next_offset)
        return found

    def start_offsets(self) -> dict[tuple[str, int], int]:
        """Where a source must resume: the lowest next offset over all projections."""
        per = self.offsets()
        keys = {k for offsets in per.values() for k in offsets}
        return {k: min(per[p.name].get(k, 0) for p in self.projections) for k in keys}

    def dead_letter_count(self) -> int:
        with self.db.transaction() as c:
            c.execute("SELECT COUNT(*) FROM ledger_dead_letters")
            return int(c.fetchone()[0])

    @staticmethod
    def dead_letter_counts(c: Cursor, officer_id: str | None = None) -> dict[str | None, int]:
        """How many dead letters each officer (or message key) has; ``None`` for messages without one."""
        if officer_id is None:
            c.execute("SELECT officer_id, COUNT(*) FROM ledger_dead_letters GROUP BY officer_id")
        else:
            c.execute(
                "SELECT officer_id, COUNT(*) FROM ledger_dead_letters WHERE officer_id = ? GROUP BY officer_id",
                (officer_id,),
            )
        rows = [(r[0], int(r[1])) for r in c.fetchall()]
        return dict(sorted(rows, key=lambda r: (r[0] is None, r[0] or "")))

    @staticmethod
    def clear_dead_letters(c: Cursor, officer_id: str) -> None:
        """Delete an officer's dead letters, in the transaction that re-applied its events.

        Only under ``lock``: deleting them unblocks the officer for the next batch.
        """
        c.execute("DELETE FROM ledger_dead_letters WHERE officer_id = ?", (officer_id,))

    def process(self, items: Sequence[Item]) -> int:
        """Apply a batch; returns how many events were applied to at least one projection."""
        if not items:
            return 0
        with self.db.transaction() as c:
            return self._process(c, items)

    @staticmethod
    def _first_offsets(events: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
        first: dict[tuple[str, int], int] = {}
        for e in events:
            source, part, offset = e["_pos"]
            if offset < first.get((source, part), offset + 1):
                first[(source, part)] = offset
        return first

    def lock(self, c: Cursor) -> None:
        """Serialize with other writers of the read models (a rebuild's swap, other runners).

        SQLite's BEGIN IMMEDIATE already holds the one write lock; PostgreSQL needs an
        explicit transaction-scoped advisory lock.
        """
        if self.db.is_postgres:
            c.execute("SELECT pg_advisory_xact_lock(?)", (READ_MODEL_LOCK,))

    def _process(self, c: Cursor, items: Sequence[Item]) -> int:
        self.lock(c)
        now = datetime.now(timezone.utc).isoformat()
        offsets = self.offsets(c)
        officer_keys = sorted({i.officer for i in items if i.officer})
        blocked = {
            r[0] for r in select_in(
                c, "SELECT DISTINCT officer_id FROM ledger_dead_letters WHERE officer_id IN ({})", officer_keys
            )
        }
        dead: dict[tuple[str, int, int], tuple[Item, str]] = {}
        good: list[Item] = []
        for item in items:
            officer = item.officer
            position = (item.source, item.part, item.offset)
            if item.event is None:
                dead[position] = (item, item.error or "undecodable")
                if officer:
                    blocked.add(officer)
            elif officer and officer in blocked:
                dead[position] = (item, f"held back: officer {officer} has an earlier dead letter")
            else:
                good.append(item)

        applied = 0
        by_position = {(i.source, i.part, i.offset): i for i in good}
        positioned = [{**i.event, "_pos": (i.source, i.part, i.offset)} for i in good if i.event is not None]
        firsts = self._first_offsets(positioned)
        for projection in self.projections:
            mine = offsets.get(projection.name, {})
            # Usually no projection has seen any of the batch: then they share one list.
            if all(mine.get(key, 0) <= first for key, first in firsts.items()):
                events = positioned
            else:
                events = [e for e in positioned if e["_pos"][2] >= mine.get(e["_pos"][:2], 0)]
            gaps = projection.apply_batch(c, events)
            applied = max(applied, len(events))
            for gap in gaps:
                for event in events:
                    if event.get("officer_id") == gap.officer_id and event["version"] == gap.got:
                        item = by_position[event["_pos"]]
                        reason = (
                            f"held back: officer {gap.officer_id} has an earlier dead letter"
                            if gap.held
                            else f"version gap: expected {gap.expected}, got {gap.got}"
                        )
                        dead.setdefault(event["_pos"], (item, reason))
                        break

        if dead:
            c.executemany(
                "INSERT INTO ledger_dead_letters (source, part, position, officer_id, reason, payload, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(i.source, i.part, i.offset, i.officer,
                  reason, i.payload, now) for i, reason in dead.values()],
            )
            for i, reason in dead.values():
                log.warning("dead letter %s[%d]@%d (%s): %s", i.source, i.part, i.offset, i.key, reason)

        ends: dict[tuple[str, int], int] = defaultdict(int)
        for item in items:
            key = (item.source, item.part)
            ends[key] = max(ends[key], item.offset + 1)
        rows = [
            (p.name, source, part, end, now)
            for p in self.projections
            for (source, part), end in ends.items()
        ]
        # Never move a position backwards: a replayed or late batch must not rewind
        # past changes that a newer batch already committed.
        c.executemany(
            "INSERT INTO ledger_offsets (projection, source, part, next_offset, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (projection, source, part) DO UPDATE SET next_offset = excluded.next_offset, "
            "updated_at = excluded.updated_at WHERE ledger_offsets.next_offset < excluded.next_offset",
            rows,
        )
        return applied
