"""The ledger application: load -> call the aggregate -> save, in batches.

Many commands share one transaction for speed, yet each keeps its own answer and
its own fate (:mod:`ledger.write.unit`): a command that is rejected, or that fails for
any reason, writes nothing and takes no other command down with it. A batch that
loses an optimistic-concurrency race (another process wrote the same officer) is
redone from fresh state; a batch that the store refuses for any other reason (or
with a conflict that no fresh start resolves) is redone in halves until the one
command it refuses is found and rejected alone.
Receipts of accepted command ids are written in the same transaction as the
events, so a resend after a crash answers ``duplicate``.

Audit reads (history, record as of an instant, chain verification, counts) live in
:mod:`ledger.read.audit`, which builds on this module; this module writes, and reads the
notification log and one officer's stream. It imports nothing from the layers above
it (projections, consumers, relay, audit, api, cli).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from functools import partial
from operator import itemgetter
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, OperationalError

from ledger.config import Settings
from ledger.domain.errors import LedgerError, NotFound
from ledger.domain.officer import Officer
from ledger.events import public_type, to_public
from ledger.integrity import crypto
from ledger.ops import metrics
from ledger.ops.paging import pages
from ledger.store import schema
from ledger.store.receipts import Access
from ledger.write.commands import Command
from ledger.write.unit import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    Outcome,
    Parsed,
    UnitOfWork,
    internal_error,
    parse_all,
)

__all__ = ["ACCEPTED", "DUPLICATE", "MAX_RETRIES", "REJECTED", "Ledger", "Outcome", "UnitOfWork"]

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger("ledger.write.application")

MAX_RETRIES = 20
# Attempts for each part of a batch that is being redone in halves: a conflict that
# survived MAX_RETRIES fresh starts is not a race, and the halves must not each wait as long.
PART_RETRIES = 5
# Failures that are about the moment, not the batch's content: redo the whole batch.
RACES = (IntegrityError, OperationalError)


def conflict_in(exc: BaseException) -> Exception | None:
    """The error saying the store refused a write that collides with a stored row, if any.

    PostgreSQL in pipeline mode may report a unique violation as an aborted
    pipeline (an OperationalError) whose cause or context holds the real error.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, IntegrityError):
            return current
        pending += [current.__cause__, current.__context__]
    return None


class Ledger(Application[UUID]):
    """The event-sourced system of record."""

    name = "Ledger"
    # A batch's officers are loaded in one query before its commands (``preload``); off,
    # each one when a command first needs it. Same answers and rows either way.
    preload_batches = True
    # Pending events collected straight from the aggregates and put in the event store
    # (``save``); off, through the library's ``Application.save``, which checks every
    # object against runtime protocols (a tenth of a bulk ingest's time). Same rows.
    direct_save = True

    def __init__(self, settings: Settings, cache_size: int = 200_000) -> None:
        self.settings = settings
        schema.ensure_store(settings)  # the library's recorders expect the tables to exist
        super().__init__(env=settings.eventsourcing_env())
        self._check_direct_save()
        # Committed state only: a batch mutates the cached objects it loads, so every
        # path on which a batch does not commit forgets them (see _commit).
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._cache_size = cache_size
        # One writer at a time per process: the aggregate cache and the cached
        # aggregates are mutated by writes (the API's committer thread and an
        # erasure request may otherwise race).
        self._write_lock = threading.RLock()

    # ---- writing ------------------------------------------------------------

    def ingest(self, lines: Iterable[str], batch_size: int = 500) -> Iterator[Outcome]:
        """Apply JSON Lines in order; yields one outcome per non-blank line."""
        numbered = ((n, line) for n, line in enumerate(lines, start=1) if line.strip())
        return self.ingest_numbered(numbered, batch_size)

    def ingest_numbered(
        self, items: Iterable[tuple[int, str | LedgerError]], batch_size: int = 500
    ) -> Iterator[Outcome]:
        """Apply numbered lines in order (a line that could not even be read is its own
        rejection, see ``ledger.write.lines``); yields one outcome per item."""
        chunk: list[tuple[int, str | LedgerError]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= batch_size:
                yield from self.apply_batch(chunk)
                chunk = []
        if chunk:
            yield from self.apply_batch(chunk)

    def execute(self, command: dict[str, Any] | str) -> Outcome:
        """Apply a single command (a dict or one JSON line)."""
        line = command if isinstance(command, str) else json.dumps(command)
        return next(iter(self.apply_batch([(1, line)])))

    def apply_batch(self, chunk: Sequence[tuple[int, str | LedgerError | Command]]) -> list[Outcome]:
        """Apply numbered lines as one batch; one outcome per line, in order.

        Raises only when the store cannot be used at all (unreachable or locked
        after every retry, or unreadable); never because of what one command holds.
        """
        with self._write_lock:
            return self._commit(parse_all(chunk))

    def _commit(self, parsed: Parsed, attempts: int = MAX_RETRIES) -> list[Outcome]:
        for attempt in range(attempts):
            unit = UnitOfWork(self)
            committing = False
            try:
                outcomes = unit.handle_all(parsed)
                committing = True
                unit.commit()
            except RACES as exc:
                # Another writer got there first (or the database was briefly
                # locked): forget everything cached and redo the batch from the
                # store's current state.
                self._cache.clear()
                if attempt < attempts - 1:
                    time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
                    continue
                conflict = conflict_in(exc) if committing else None
                if conflict is not None:
                    # Every fresh start hit the same conflict: something the batch
                    # writes collides with what is stored (e.g. a chain entry left
                    # behind by a deleted event), not with another writer.
                    return self._isolate(parsed, conflict)
                raise
            except Exception as exc:
                self._cache.clear()
                if not committing:
                    raise  # reading the store failed: nothing to do with one command
                return self._isolate(parsed, exc)
            except BaseException:
                self._cache.clear()
                raise
            for aggregate in unit.aggregates.values():
                self._remember(aggregate)
            metrics.count_commands(
                (c.type if isinstance(c, Command) else "invalid", o.status, o.reason)
                for (_, c), o in zip(parsed, outcomes, strict=True)
            )
            return outcomes
        raise AssertionError("unreachable")

    def apply_with(self, work: Callable[[UnitOfWork], tuple[Sequence[Aggregate], dict[str, Any]]]) -> None:
        """Run ``work`` on a fresh unit of work, then save what the unit holds together with the
        aggregates and save options ``work`` returns, in one transaction (the xAPI LRS stores a
        statement and the command it maps to together, ``ledger.xapi.store``). No retries: the
        store's errors reach the caller, and the cache forgets what did not commit."""
        with self._write_lock:
            unit = UnitOfWork(self)
            try:
                extra, options = work(unit)
                self.save(*unit.aggregates.values(), *extra, receipts=unit.receipts, keys=unit.keys,
                          actors=unit.actors, **options)
            except BaseException:
                self._cache.clear()
                raise
            for aggregate in unit.aggregates.values():
                self._remember(aggregate)

    def _isolate(self, parsed: Parsed, exc: Exception) -> list[Outcome]:
        """The store refused the batch: redo it in halves, so only the culprit is rejected.

        Halves run in order, each against what the one before committed, so every
        command still sees the state left by the ones before it.
        """
        if len(parsed) == 1:
            number = parsed[0][0]
            log.error("line %d could not be stored; rejected", number, exc_info=exc)
            command = parsed[0][1]
            metrics.count_commands([(command.type if isinstance(command, Command) else "invalid", REJECTED,
                                     type(exc).__name__)])
            return [Outcome(number, REJECTED, str(internal_error("storing", exc)), type(exc).__name__)]
        log.warning(
            "the store refused a batch of %d (%s); redoing it in halves",
            len(parsed),
            type(exc).__name__,
        )
        middle = len(parsed) // 2
        return self._commit(parsed[:middle], PART_RETRIES) + self._commit(
            parsed[middle:], PART_RETRIES
        )

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Save aggregates; each changed officer's current ministry and erasure are
        written in the same transaction (``officer_access``, for access decisions)."""
        access = {
            o.officer_id: Access(o.ministry_id, o.erased)
            for o in objs
            if isinstance(o, Officer) and o.pending_events
        }
        if access:
            kwargs["access"] = access
        if self.direct_save:
            # What Application.save does for this application: no snapshots, no
            # repository cache, no notify hooks are configured (see _check_direct_save).
            events = [e for o in objs if o is not None for e in o.collect_events()]
            recordings = self.events.put(events, **kwargs)
        else:
            recordings = super().save(*objs, **kwargs)
        metrics.count_events(public_type(r.domain_event) for r in recordings)  # once per transaction
        return recordings

    def _check_direct_save(self) -> None:
        """``save`` skips what the library does besides recording; none of it may be on."""
        if self.snapshots is not None or self.repository.cache is not None:
            raise AssertionError("direct_save assumes no snapshots and no repository cache")
        if type(self)._notify is not Application._notify or type(self).notify is not Application.notify:
            raise AssertionError("direct_save assumes the library's notify hooks are not overridden")

    def access(self, officer_id: str) -> Access | None:
        """The officer's current ministry and erasure, as committed with its events
        (for access decisions; never from a read model that may lag)."""
        found: Access | None = self.recorder.select_access(officer_id)  # type: ignore[attr-defined]
        return found

    def _remember(self, aggregate: Aggregate) -> None:
        self._cache[aggregate.id] = aggregate
        self._cache.move_to_end(aggregate.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, aggregate_id: UUID) -> None:
        """Drop one aggregate from the cache (it will be loaded from the store)."""
        self._cache.pop(aggregate_id, None)

    def load(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """A cached or stored aggregate, or None when it does not exist."""
        cached = self._cache.get(aggregate_id)
        if cached is not None:
            assert isinstance(cached, cls)
            return cached
        try:
            loaded: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(loaded, cls)
        return loaded

    def preload(self, aggregate_ids: Iterable[UUID]) -> set[UUID]:
        """Load the aggregates that are not cached, all in one query; returns the ids of
        those that do not exist (a batch's officers, before its commands are handled)."""
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in self._cache]
        if not wanted or not self.preload_batches:
            return set()
        recorder: Any = self.recorder
        by_id: dict[UUID, list[Any]] = {}
        for stored in recorder.select_events_of(wanted):
            by_id.setdefault(UUID(str(stored.originator_id)), []).append(stored)
        for events in by_id.values():
            aggregate = project_aggregate(None, [self.mapper.to_domain_event(s) for s in events])
            if aggregate is not None:
                self._remember(aggregate)
        return {i for i in wanted if i not in by_id}

    def erase(self, officer_id: str, reason: str, ticket: str | None = None) -> bool:
        """Destroy the officer's data key and record ``OfficerErased``, atomically.

        The ciphertext of name and email stays in the events (and on Kafka), but
        without the key it is noise. Then the storage layer scrubs the database
        files of the key's old bytes; returns False (and logs why) if that part
        could not run now, e.g. another process held the database. The erasure
        itself has happened either way; a later erasure's scrub covers it too.
        """
        with self._write_lock:
            for attempt in range(MAX_RETRIES):
                officer = self.load(Officer, Officer.create_id(officer_id))
                if officer is None:
                    raise NotFound(f"officer_id: officer {officer_id!r} is not registered")
                try:
                    officer.erase(reason, ticket, datetime.now(timezone.utc))
                    self.save(officer, destroy_keys=[officer_id])
                except RACES:
                    self._cache.clear()
                    if attempt == MAX_RETRIES - 1:
                        raise
                    continue
                except LedgerError:
                    raise  # checked before any change: the officer is as it was
                except BaseException:
                    self._cache.clear()
                    raise
                self._remember(officer)
                break
        # Outside the write lock: a VACUUM takes seconds and writers need not wait.
        for attempt, pause in enumerate((0.2, 1.0, 0.0)):
            try:
                self.recorder.scrub()  # type: ignore[attr-defined]
                return True
            except Exception as exc:
                log.warning(
                    "officer %s erased, but scrubbing the database files failed (attempt %d): %s",
                    officer_id, attempt + 1, exc,
                )
                time.sleep(pause)
        return False

    # ---- the notification log -------------------------------------------------

    def read_log(self, after: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` events after notification id ``after``, as (id, public event)."""
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [(n.id, to_public(self.mapper.to_domain_event(n))) for n in notifications]

    def iter_log(self, after: int = 0, page: int = 1000) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every event after ``after``, in notification order, one page at a time."""
        for batch in self.log_pages(after, page):
            yield from batch

    def log_pages(self, after: int = 0, page: int = 1000) -> Iterator[Sequence[tuple[int, dict[str, Any]]]]:
        """The events after ``after`` as ``read_log`` pages them, each page read once the one before was handled."""
        return pages(partial(self.read_log, limit=page), itemgetter(0), after)

    # ---- reading one officer's stream ------------------------------------------

    def officer_events(self, officer_id: str) -> list[dict[str, Any]]:
        """The officer's events in order, in the public shape."""
        return [to_public(e) for e in self.events.get(Officer.create_id(officer_id))]

    def decrypter(self, officer_id: str) -> Callable[[str, str], str | None]:
        """A function that decrypts this officer's personal fields (None once erased)."""
        key = self.recorder.select_key(officer_id)  # type: ignore[attr-defined]

        def decrypt(field: str, token: str) -> str | None:
            return crypto.decrypt(key, officer_id, field, token)

        return decrypt
