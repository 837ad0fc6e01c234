"""A batch whose officer commands run without per-event library objects.

:class:`BulkUnit` is the :class:`~ledger.write.unit.UnitOfWork` of the fast path. Reference
commands (organisations, competencies, posts, courses, plans) still go through their
aggregates. Officer commands are decided by the pure rules of :mod:`ledger.domain.history`
over each officer's compact state (:class:`~ledger.write.rows.FastOfficer`), which the ledger
keeps between batches as a :class:`~ledger.write.rows.Snapshot` (version, state and entity-chain
head) instead of an aggregate with its whole log; the log is read from the store only for the
commands that need it (a late fact, a retraction, a correction), and they are decided on it
exactly as the aggregate decides them (:meth:`Officer.execute`). The rows are built directly
(:mod:`ledger.write.rows`) and written through the recorder in one transaction, with the
receipts, keys, access rows and correction actors, in the order the plain path writes them:
aggregate by aggregate, in the order the batch first touched them.

Every side effect happens in the plain path's order (data key, nonces, event id, clock), so
with the same clock and random bytes both paths store the same rows
(tests/test_fast_paths.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledger.domain.errors import AlreadyExists, LedgerError, NotFound
from ledger.domain.history import OfficerState, Reference, SameAsInForce, accept, decide, is_late
from ledger.domain.officer import Officer
from ledger.events import public_type
from ledger.integrity import crypto
from ledger.store.receipts import Access
from ledger.write.commands import Command
from ledger.write.rows import FastOfficer, Snapshot, log_entry, new_event_id
from ledger.write.unit import Outcome, Parsed, UnitOfWork, _Before

if TYPE_CHECKING:
    from ledger.write.application import Ledger

# An officer's aggregate id (a name-based UUID: a SHA-1 each), remembered.
officer_uuid = lru_cache(maxsize=1 << 18)(Officer.create_id)


class BulkUnit(UnitOfWork):
    """One batch on the fast path (see the module docstring)."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.bulk = self
        self._loaded: dict[UUID, FastOfficer] = {}
        # Each officer the current command touched, as it was before (for _undo).
        self._saved: dict[UUID, tuple[int, OfficerState, int, int | None]] = {}

    # ---- loading ----------------------------------------------------------------

    def handle_all(self, parsed: Parsed) -> list[Outcome]:
        """Known receipts and the batch's officers, each in one query; then the commands in order."""
        ids = [c.command_id for _, c in parsed if isinstance(c, Command) and c.command_id]
        recorder: Any = self.ledger.recorder
        self._stored_receipts = recorder.select_receipts(ids) if ids else {}
        self.preload_officers(parsed)
        return [self.handle(number, command) for number, command in parsed]

    def preload_officers(self, parsed: Parsed) -> None:
        """The batch's officers not held by the ledger, loaded in one query."""
        states = self.ledger.states
        wanted = {}
        for _, c in parsed:
            officer_id = c.officer_id if isinstance(c, Command) else None
            if officer_id is not None:
                aggregate_id = officer_uuid(officer_id)
                if aggregate_id not in states:
                    wanted[aggregate_id] = officer_id
        self._absent = set()
        if not wanted:
            return
        by_id: dict[UUID, list[Any]] = {}
        recorder: Any = self.ledger.recorder
        for stored in recorder.select_events_of(list(wanted)):
            by_id.setdefault(UUID(str(stored.originator_id)), []).append(stored)
        for aggregate_id, officer_id in wanted.items():
            events = by_id.get(aggregate_id)
            if events is None:
                self._absent.add(aggregate_id)
            else:
                loaded = FastOfficer.loaded(aggregate_id, officer_id, events)
                self.ledger.remember_state(aggregate_id, loaded.snapshot())
                self._loaded[aggregate_id] = loaded

    def officer(self, officer_id: str) -> FastOfficer | None:
        """The officer as this batch has it, or None when it is not registered."""
        aggregate_id = officer_uuid(officer_id)
        found = self.aggregates.get(aggregate_id)
        if found is None:
            if aggregate_id in self._absent:
                return None
            made = self._loaded.pop(aggregate_id, None)
            if made is None:
                snap = self.ledger.states.get(aggregate_id)
                if snap is None:
                    stored = self.ledger.recorder.select_events_of([aggregate_id])  # type: ignore[attr-defined]
                    if not stored:
                        return None
                    made = FastOfficer.loaded(aggregate_id, officer_id, stored)
                else:
                    made = FastOfficer(aggregate_id, officer_id, snap.version, snap.state, snap.head,
                                       committed_access=(snap.state.ministry_id, snap.state.erased))
            self.aggregates[aggregate_id] = made  # type: ignore[assignment]
            self._touch(aggregate_id, made, in_batch=False)
            return made
        assert isinstance(found, FastOfficer)
        self._touch(aggregate_id, found, in_batch=True)
        return found

    def _require(self, officer_id: str) -> FastOfficer:
        found = self.officer(officer_id)
        if found is None:
            raise NotFound(f"officer_id: officer {officer_id!r} is not registered")
        return found

    def _log(self, officer: FastOfficer) -> list[dict[str, Any]]:
        """The officer's whole log: the stored events (up to the version the batch began
        from) and the ones the batch recorded."""
        if officer.log is None:
            stored_version = officer.version - len(officer.pending_events)
            recorder: Any = self.ledger.recorder
            officer.log = [log_entry(s.topic, s.originator_version, s.state)
                           for s in recorder.select_events_of([officer.id]) if s.originator_version <= stored_version]
            officer.log += [p.entry for p in officer.pending_events]
        return officer.log

    # ---- the officer commands (called by ledger.write.handlers) ---------------------

    def register(self, f: Mapping[str, Any], ref: Reference) -> None:
        """``register_officer``, with the plain handler's side effects in its order."""
        officer_id = f["officer_id"]
        if self.officer(officer_id) is not None:
            raise AlreadyExists(f"officer_id: officer {officer_id!r} is already registered")
        key = crypto.new_data_key()
        sealed = {**f, "name_ct": crypto.encrypt(key, officer_id, "name", f["name"]),
                  "email_ct": crypto.encrypt(key, officer_id, "email", f["email"])}
        body = decide(OfficerState(officer_id), "register_officer", sealed, ref)
        assert body is not None and body.pop("type") == "OfficerRegistered"
        aggregate_id = officer_uuid(officer_id)
        made = FastOfficer(aggregate_id, officer_id, 0, OfficerState(officer_id), log=[])
        made.record("OfficerRegistered", {**body, "event_id": new_event_id()}, sealed["occurred_at"])
        self.add_key(officer_id, key)
        self._savepoint.touched.setdefault(aggregate_id, _Before(False, 0, 0))
        self.aggregates[aggregate_id] = made  # type: ignore[assignment]

    def execute(self, command_type: str, f: Mapping[str, Any], ref: Reference,
                same_as_in_force: SameAsInForce | None = None, officer: FastOfficer | None = None) -> None:
        """An officer command, decided as ``Officer.execute`` decides it."""
        officer = officer or self._require(f["officer_id"])
        self._save(officer)
        if command_type == "retract" or is_late(officer.state, f["occurred_at"]):
            body = accept(self._log(officer), command_type, f, ref, same_as_in_force)
        else:
            body = decide(officer.state, command_type, f, ref, same_as_in_force)
        if body is None:
            return
        kind = body.pop("type")
        if kind == "EventsRetracted" or is_late(officer.state, f["occurred_at"]):
            self._log(officer)  # the state is re-folded from the log
        officer.record(kind, {**body, "event_id": new_event_id()}, f["occurred_at"])

    def correct_details(self, f: Mapping[str, Any], ref: Reference) -> None:
        """``correct_officer_details``: the new values under the officer's key, as the plain handler does."""
        from ledger.write.handlers import sealed_details

        officer = self._require(f["officer_id"])
        sealed, same_as_in_force = sealed_details(self, f, officer.state.erased)
        self.execute("correct_officer_details", sealed, ref, same_as_in_force, officer)

    # ---- what the unit of work does differently for fast officers ------------------

    def handle(self, number: int, command: Command | LedgerError) -> Outcome:
        self._saved = {}
        return super().handle(number, command)

    def _save(self, officer: FastOfficer) -> None:
        if officer.id not in self._saved:
            self._saved[officer.id] = (officer.version, officer.state, len(officer.pending_events),
                                       None if officer.log is None else len(officer.log))

    def _erased(self, officer_id: str) -> bool:
        found = self.officer(officer_id)
        return found is not None and found.state.erased

    def _undo(self) -> None:
        fast = {i: b for i, b in self._savepoint.touched.items() if isinstance(self.aggregates.get(i), FastOfficer)}
        for aggregate_id, before in fast.items():
            officer = self.aggregates[aggregate_id]
            assert isinstance(officer, FastOfficer)
            del self._savepoint.touched[aggregate_id]
            if not before.in_batch:
                del self.aggregates[aggregate_id]  # new to the batch: found again when needed
                continue
            saved = self._saved.get(aggregate_id)
            if saved is not None:
                officer.version, officer.state, pending, logged = saved
                del officer.pending_events[pending:]
                if officer.log is not None:
                    if logged is None:
                        officer.log = None
                    else:
                        del officer.log[logged:]
        super()._undo()

    def commit(self) -> None:
        """Every pending event (officers' rows built directly), receipt, key, access row and
        actor in one transaction; remembers the officers' new chain heads."""
        stored: list[Any] = []
        kinds: list[str] = []
        access: dict[str, Access] = {}
        heads: dict[str, bytes] = {}
        for aggregate in self.aggregates.values():
            if isinstance(aggregate, FastOfficer):
                if aggregate.pending_events:
                    stored += aggregate.stored_events()
                    kinds += [p.entry["type"] for p in aggregate.pending_events]
                    if aggregate.access_changed():  # else the stored row says it already
                        access[aggregate.officer_id] = Access(aggregate.state.ministry_id or "", aggregate.state.erased)
                    if aggregate.head is not None:
                        heads[aggregate.id.hex] = aggregate.head
            elif aggregate.pending_events:
                events = aggregate.collect_events()
                stored += [self.ledger.mapper.to_stored_event(e) for e in events]
                kinds += [public_type(e) for e in events]
        if not (stored or self.receipts or self.keys):
            return
        kwargs: dict[str, Any] = {"rows": stored, "kinds": kinds, "receipts": self.receipts, "keys": self.keys, "actors": self.actors}
        if access:
            kwargs["access"] = access
        if getattr(self.ledger.recorder, "takes_heads", False):
            kwargs["heads"] = heads
        self.ledger.save(**kwargs)
        for aggregate in self.aggregates.values():
            if isinstance(aggregate, FastOfficer) and aggregate.pending_events:
                aggregate.head = heads.get(aggregate.id.hex)

    def remember(self) -> None:
        """After the commit: the ledger keeps each officer's snapshot, every other aggregate as it is."""
        for aggregate_id, aggregate in self.aggregates.items():
            if isinstance(aggregate, FastOfficer):
                self.ledger.remember_state(aggregate_id, Snapshot(aggregate.version, aggregate.state, aggregate.head))
            else:
                self.ledger.remember(aggregate)
