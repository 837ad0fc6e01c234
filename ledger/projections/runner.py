"""Applies batches of positioned events to every projection, in one transaction.

Each projection has its own position per source partition (the embedded log is one
partition of source ``log``; Kafka has a partition per topic partition). A batch
writes the read-model changes, the dead letters and the new positions together,
so a crash, a restart or a duplicate delivery can never count an event twice or
lose one.

Poison: a message that cannot be decoded, or an officer or reference event that skips a
version (:mod:`reference_gaps`), goes to the dead-letter table with its reason and
position. From then on that officer's (or entity's) later events are held back (also
recorded there, never applied out of order); every other officer keeps flowing. Once
the cause is gone, ``recovery.retry`` (``ledger dead-letters retry``) folds such an
officer's events from the store and clears its dead letters in one transaction under
the same lock. A projection that
``follows_log`` (credential status) takes the store log's events, dead letters or not.

Several consumer processes may run at once, each on its own partitions (Kafka:
``ledger project --instance i/n``), all writing the same read models: per-officer
documents are disjoint (an officer's events stay on one partition), the aggregates
are commutative deltas (``x = x + excluded.x``, written in key order, so concurrent
batches cannot deadlock), reference writes are idempotent and order-free. Each
projection has its own advisory lock on PostgreSQL: consumer batches hold those of
their projections shared (:meth:`Runner.lock_shared`, one statement); a rebuild's swap
holds the rebuilt projections' alone and a dead-letter retry all of them
(:meth:`Runner.lock`). On SQLite every write transaction is exclusive anyway.

Between batches the runner keeps officer documents in memory (``DocCache``), valid
while the read models' generation (``ledger_generation``, bumped by a rebuild's swap:
:meth:`Runner.bump_generation`) is the one it read last; each batch reads it once
under the lock. Document writes are compare-and-set on the version, so a document
moved by anyone else (a dead-letter retry, a second process on the same partition)
fails the batch, which is then retried from the database.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ledger.events import OFFICER_EVENTS, reference_key
from ledger.ops import metrics
from ledger.projections import reference_gaps
from ledger.projections.base import (
    DocCache,
    OfficerDocProjection,
    Projection,
    is_retryable,
    select_in,
)
from ledger.projections.history import StoredHistory
from ledger.store.db import Cursor, Database

log = logging.getLogger("ledger.projections")

READ_MODEL_LOCK = 0x1ED6E6
GENERATION = "read_models"  # the row of ledger_generation
CACHE_OFFICERS = 10_000  # officers kept between batches, per read model (~9 KB an officer over all five)
ATTEMPTS = 10  # a batch whose documents moved under it (or a deadlock victim) is retried
_OFFICER_TYPES = frozenset(OFFICER_EVENTS)
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
        if self.event is None or self.event["type"] in _OFFICER_TYPES:
            return self.key
        return None

    @property
    def holder(self) -> str | None:
        """Whose dead letter this message is: its officer's, else its reference entity's key."""
        if self.event is None or self.event["type"] in _OFFICER_TYPES:
            return self.key
        return reference_key(self.event)


# A batch's dead letters: by (source, partition, offset), the message and why.
DeadLetters = dict[tuple[str, int, int], tuple[Item, str]]


def lock_key(projection: str) -> int:
    """A projection's advisory-lock key on PostgreSQL (with :data:`READ_MODEL_LOCK` as the first)."""
    return zlib.crc32(projection.encode()) & 0x7FFFFFFF


def all_projections() -> list[Projection]:
    from ledger.projections.competency import CompetenciesProjection
    from ledger.projections.credential_status import CredentialStatusProjection
    from ledger.projections.gaps import GapsProjection
    from ledger.projections.ministry import MinistriesProjection
    from ledger.projections.plans import PlansProjection
    from ledger.projections.record import RecordsProjection

    return [RecordsProjection(), CompetenciesProjection(), MinistriesProjection(), PlansProjection(),
            GapsProjection(), CredentialStatusProjection()]


class Runner:
    """Owns the positions and dead letters; drives the projections batch by batch."""

    def __init__(
        self, db: Database, projections: Sequence[Projection] | None = None, cache_officers: int = CACHE_OFFICERS
    ) -> None:
        self.db = db
        self.projections = list(projections or all_projections())
        self.caches = {
            p.name: DocCache(cache_officers)
            for p in self.projections if isinstance(p, OfficerDocProjection) and cache_officers > 0
        }
        self.stored = StoredHistory(db)  # officers' stored events, for re-folds
        for projection in self.projections:
            if isinstance(projection, OfficerDocProjection) and projection.history is None:
                projection.history = self.stored
        self.generation: int | None = None  # of the read models the caches hold documents of
        self.cache_drops = 0
        self.retries = 0
        # What the batch in progress applied per projection, and its dead letters' kinds:
        # counted in the metrics once it commits.
        self._observed: tuple[dict[str, int], list[str]] = ({}, [])


    def offsets(self, c: Cursor | None = None) -> dict[str, dict[tuple[str, int], int]]:
        """Next offset to apply, per projection and (source, partition)."""
        if c is None:
            with self.db.reading() as cur:
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
        with self.db.reading() as c:
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
        attempt = 1
        while True:
            started = time.perf_counter()
            try:
                with self.db.transaction() as c:
                    applied = self._process(c, items)
            except BaseException as exc:
                self.drop_cache()  # it holds changes that were just rolled back
                if attempt >= ATTEMPTS or not is_retryable(exc):
                    raise
                log.info("batch retried from the database (attempt %d): %s", attempt, exc)
                self.retries += 1
                time.sleep(random.uniform(0, 0.01 * attempt))  # out of step with the other writer
                attempt += 1
            else:
                self._count(time.perf_counter() - started)
                return applied

    def _count(self, took: float) -> None:
        """Metrics of a committed batch: once per batch, never per event."""
        counts, dead = self._observed
        metrics.PROJECTION_BATCH_DURATION.observe(took)
        for name, n in counts.items():
            if n:
                metrics.PROJECTION_EVENTS.labels(name).inc(n)
        for kind in dead:
            metrics.DEAD_LETTERS_WRITTEN.labels(kind).inc()

    def drop_cache(self) -> None:
        """Forget every document kept between batches (the next batch loads what it needs)."""
        for cache in self.caches.values():
            cache.clear()
        self.generation = None
        self.cache_drops += 1

    @staticmethod
    def read_generation(c: Cursor) -> int:
        c.execute("SELECT generation FROM ledger_generation WHERE name = ?", (GENERATION,))
        row = c.fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def bump_generation(c: Cursor) -> None:
        """Tell every consumer that the read models were replaced: their cached documents are void.

        Call it in the transaction that swaps rebuilt tables in (holding :meth:`lock`).
        """
        c.execute(
            "INSERT INTO ledger_generation (name, generation) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET generation = ledger_generation.generation + 1",
            (GENERATION,),
        )

    def _check_generation(self, c: Cursor) -> None:
        generation = self.read_generation(c)
        if generation != self.generation:
            if self.generation is not None:
                log.info("read models replaced (generation %d): cached documents dropped", generation)
                self.drop_cache()
            self.generation = generation

    @staticmethod
    def _first_offsets(items: Sequence[Item]) -> dict[tuple[str, int], int]:
        first: dict[tuple[str, int], int] = {}
        for i in items:
            if i.offset < first.get((i.source, i.part), i.offset + 1):
                first[(i.source, i.part)] = i.offset
        return first

    def lock(self, c: Cursor, names: Sequence[str] | None = None) -> None:
        """Hold the named projections (default: all of this runner's) alone: no consumer
        batch writing any of them runs until this transaction ends.

        For a rebuild's swap (the rebuilt projections) and a dead-letter retry (all).
        SQLite's BEGIN IMMEDIATE already holds the one write lock; PostgreSQL needs
        explicit transaction-scoped advisory locks.
        """
        if self.db.is_postgres:
            self._advisory(c, "pg_advisory_xact_lock", names or [p.name for p in self.projections])

    def lock_shared(self, c: Cursor, log_batch: bool = True) -> None:
        """A consumer batch's locks: shared with other consumers' batches, excluded by :meth:`lock`;
        a projection that follows the log alone, and only by a batch of the log (``log_batch``)."""
        if self.db.is_postgres:
            alone = [p.name for p in self.projections if p.follows_log] if log_batch else []
            shared = [p.name for p in self.projections if not p.follows_log]
            self._advisory(c, "pg_advisory_xact_lock_shared", shared, alone)

    @staticmethod
    def _advisory(c: Cursor, function: str, names: Sequence[str], alone: Sequence[str] = ()) -> None:
        # ``function`` on the keys of ``names``, the exclusive lock on those of ``alone``. One
        # round trip; keys in ascending order (the select list is evaluated left to right),
        # the same order for every holder, so lockers never wait in a cycle.
        locks = sorted({(lock_key(name), function) for name in names}
                       | {(lock_key(name), "pg_advisory_xact_lock") for name in alone})
        if locks:
            c.execute("SELECT " + ", ".join(f"{held}(?, ?)" for _, held in locks),
                      [value for key, _ in locks for value in (READ_MODEL_LOCK, key)])

    def _process(self, c: Cursor, items: Sequence[Item]) -> int:
        self.lock_shared(c, any(i.source == LOG_SOURCE for i in items))
        self._check_generation(c)  # under the lock: a rebuild's swap is wholly before it or after this batch
        now = datetime.now(timezone.utc).isoformat()
        offsets = self.offsets(c)
        per_officer = any(not p.follows_log for p in self.projections)  # else no dead letter concerns it
        dead, good = self._sort_out(c, items) if per_officer else ({}, [])
        good = reference_gaps.sort_out(c, good, dead)  # reference events that skip a version
        applied, counts = self._apply(c, good, offsets, dead, items)
        if dead:
            self._write_dead_letters(c, dead, now)
        self._advance(c, items, now)
        self._observed = (counts, [metrics.dead_letter_reason(reason) for _, reason in dead.values()])
        return applied

    @staticmethod
    def _sort_out(c: Cursor, items: Sequence[Item]) -> tuple[DeadLetters, list[Item]]:
        """The batch's dead letters by position (undecodable, or held back behind an
        officer's earlier dead letter), and the items to apply."""
        officers = [i.officer for i in items]
        blocked = {
            r[0] for r in select_in(
                c, "SELECT DISTINCT officer_id FROM ledger_dead_letters WHERE officer_id IN ({})",
                sorted({o for o in officers if o}),
            )
        }
        dead: DeadLetters = {}
        good: list[Item] = []
        for item, officer in zip(items, officers, strict=True):
            position = (item.source, item.part, item.offset)
            if item.event is None:
                dead[position] = (item, item.error or "undecodable")
                if officer:
                    blocked.add(officer)
            elif officer and officer in blocked:
                dead[position] = (item, f"held back: officer {officer} has an earlier dead letter")
            else:
                good.append(item)
        return dead, good

    def _apply(
        self, c: Cursor, good: list[Item], offsets: dict[str, dict[tuple[str, int], int]],
        dead: DeadLetters, items: Sequence[Item],
    ) -> tuple[int, dict[str, int]]:
        """Apply the items to every projection from its own offsets; its gaps join ``dead``. A
        projection that follows the log gets every event of the store's log in ``items``.
        Returns how many events the projection that took the most applied, and how many each did."""
        applied = 0
        counts: dict[str, int] = {}
        firsts = self._first_offsets(good)
        # The decoded events themselves, shared by the projections: no copy per batch.
        shared = [(i, i.event) for i in good if i.event is not None]
        for projection in self.projections:
            mine = offsets.get(projection.name, {})
            if projection.follows_log:
                start = mine.get((LOG_SOURCE, 0), 0)
                logged = [i.event for i in items if i.source == LOG_SOURCE and i.event is not None and i.offset >= start]
                projection.apply_batch(c, logged)
                applied, counts[projection.name] = max(applied, len(logged)), len(logged)
                continue
            # Usually no projection has seen any of the batch: then they share one list.
            if all(mine.get(key, 0) <= first for key, first in firsts.items()):
                chosen = shared
            else:
                chosen = [(i, e) for i, e in shared if i.offset >= mine.get((i.source, i.part), 0)]
            events = [e for _, e in chosen]
            gaps = projection.apply_batch(c, events, cache=self.caches.get(projection.name))
            applied = max(applied, len(events))
            counts[projection.name] = len(events)
            for gap in gaps:
                item = next(i for i, e in chosen if e.get("officer_id") == gap.officer_id and e["version"] == gap.got)
                reason = (
                    f"held back: officer {gap.officer_id} has an earlier dead letter"
                    if gap.held
                    else f"version gap: expected {gap.expected}, got {gap.got}"
                )
                dead.setdefault((item.source, item.part, item.offset), (item, reason))
        return applied, counts

    @staticmethod
    def _write_dead_letters(c: Cursor, dead: DeadLetters, now: str) -> None:
        c.executemany(
            "INSERT INTO ledger_dead_letters (source, part, position, officer_id, reason, payload, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(i.source, i.part, i.offset, i.holder,
              reason, i.payload, now) for _, (i, reason) in sorted(dead.items())],
        )
        for i, reason in dead.values():
            log.warning("dead letter %s[%d]@%d (%s): %s", i.source, i.part, i.offset, i.key, reason,
                        extra={"officer": i.officer, "topic": i.source, "partition": i.part, "position": i.offset})

    def _advance(self, c: Cursor, items: Sequence[Item], now: str) -> None:
        """Every projection's offsets past the batch, per (source, partition)."""
        ends: dict[tuple[str, int], int] = defaultdict(int)
        for item in items:
            key = (item.source, item.part)
            ends[key] = max(ends[key], item.offset + 1)
        rows = [
            (p.name, source, part, end, now)
            for p in self.projections
            for (source, part), end in sorted(ends.items())
        ]
        # Never move a position backwards: a replayed or late batch must not rewind
        # past changes that a newer batch already committed.
        c.executemany(
            "INSERT INTO ledger_offsets (projection, source, part, next_offset, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (projection, source, part) DO UPDATE SET next_offset = excluded.next_offset, "
            "updated_at = excluded.updated_at WHERE ledger_offsets.next_offset < excluded.next_offset",
            rows,
        )
