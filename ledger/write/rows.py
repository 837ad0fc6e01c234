"""An officer's events as stored rows, built without the library's per-event objects.

The bulk path (:mod:`ledger.write.bulk`) decides officer commands with the pure rules of
:mod:`ledger.domain.history` over a compact state, and stores what the
:class:`~ledger.domain.officer.Officer` aggregate and the library's mapper would have
stored, byte for byte: the topic ``ledger.domain.officer:Officer.<Event>``, the state as the
library's JSON transcoder writes it (the event's ``timestamp`` as a ``datetime_iso``, the
registration's ``originator_topic``, then the event's fields in the order of its method's
parameters), the aggregate's id and version. tests/test_fast_paths.py compares both paths'
rows.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import eventsourcing.domain
import orjson
from eventsourcing.persistence import StoredEvent

from ledger.domain import officer as officer_module
from ledger.domain.history import RETRACTION, OfficerState, evolve, fold, instant, is_late
from ledger.write.strictjson import compact_json

OFFICER_TOPIC = "ledger.domain.officer:Officer"
_PREFIX = OFFICER_TOPIC + "."
# Fields of the stored state that are the library's, not the event's.
_LIBRARY_FIELDS = ("timestamp", "originator_topic")


def topic_of(kind: str) -> str:
    return _PREFIX + kind


def event_state(kind: str, timestamp: str, fields: dict[str, Any]) -> bytes:
    """The stored state of an officer event: what the library's mapper and transcoder write."""
    head = '{"timestamp":{"_type_":"datetime_iso","_data_":"' + timestamp + '"},'
    if kind == "OfficerRegistered":
        head += '"originator_topic":"' + OFFICER_TOPIC + '",'
    return head.encode() + compact_json(fields)[1:]


def now_iso() -> str:
    """The event's ``timestamp`` as the library takes it (its clock, looked up at each call)."""
    return eventsourcing.domain.datetime_now_with_tzinfo().isoformat()


class _RandomIds:
    """Version 4 UUIDs as ``uuid.uuid4`` makes them, from 16 random bytes each, but reading
    the system's random source once per 256 ids rather than once per id (per process)."""

    def __init__(self) -> None:
        self.pid = -1
        self.pool = b""
        self.at = 0

    def __call__(self) -> str:
        if self.at >= len(self.pool) or self.pid != os.getpid():
            self.pid, self.pool, self.at = os.getpid(), os.urandom(16 * 256), 0
        raw = bytearray(self.pool[self.at : self.at + 16])
        self.at += 16
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_random_id = _RandomIds()


def new_event_id() -> str:
    """An event id as the aggregate makes one: its module's ``uuid4`` (looked up at each call,
    so a replaced one is used), or the same kind of id from pooled random bytes."""
    make = vars(officer_module)["uuid4"]
    return _random_id() if make is uuid.uuid4 else str(make())


def log_entry(topic: str, version: int, state: bytes) -> dict[str, Any]:
    """A stored officer event as the aggregate's ``log`` holds it (type, version, its fields)."""
    body = orjson.loads(state)
    for name in _LIBRARY_FIELDS:
        body.pop(name, None)
    return {"type": topic.rpartition(".")[2], "version": version, **body}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An officer as last committed: version, state and (when known) its entity-chain head."""

    version: int
    state: OfficerState
    head: bytes | None = None


@dataclass(slots=True)
class Pending:
    """An event the batch recorded: its log entry and the library's timestamp."""

    entry: dict[str, Any]
    timestamp: str


@dataclass(slots=True)
class FastOfficer:
    """One officer in a bulk batch: the compact state, the events recorded on it, and its
    whole log only when a late command, a retraction or a correction needs it."""

    id: UUID
    officer_id: str
    version: int
    state: OfficerState
    head: bytes | None = None
    log: list[dict[str, Any]] | None = None
    pending_events: list[Pending] = field(default_factory=list)
    # (ministry, erased) as committed when the batch took the officer (None: a new officer):
    # its access row is written only when they change.
    committed_access: tuple[str | None, bool] | None = None

    @classmethod
    def loaded(cls, aggregate_id: UUID, officer_id: str, stored: list[StoredEvent]) -> FastOfficer:
        """An officer from its stored events (in version order), folded as the aggregate folds them."""
        made = cls(aggregate_id, officer_id, 0, OfficerState(officer_id), log=[])
        for s in stored:
            made.version = s.originator_version
            made._fold(log_entry(s.topic, s.originator_version, s.state))
        made.committed_access = (made.state.ministry_id, made.state.erased)
        return made

    def access_changed(self) -> bool:
        return self.committed_access != (self.state.ministry_id, self.state.erased)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.version, self.state, self.head)

    def record(self, kind: str, fields: dict[str, Any], at: datetime) -> None:
        """Record an event (``fields`` in the order of the event method's parameters;
        ``at``: its ``occurred_at``, as an instant)."""
        timestamp = now_iso()
        self.version += 1
        entry = {"type": kind, "version": self.version, **fields}
        self.pending_events.append(Pending(entry, timestamp))
        self._fold(entry, at)

    def _fold(self, entry: dict[str, Any], at: datetime | None = None) -> None:
        """What ``Officer._record`` does with an event: log it, evolve or re-fold the state."""
        if self.log is not None:
            self.log.append(entry)
        if entry["type"] == RETRACTION or is_late(self.state, instant(entry) if at is None else at):
            assert self.log is not None, "a late event or a retraction needs the officer's log"
            self.state = fold(self.log)
        else:
            self.state = evolve(self.state, entry)

    def stored_events(self) -> list[StoredEvent]:
        """The rows of the pending events, as the library's mapper makes them."""
        first = self.version - len(self.pending_events) + 1
        out = []
        for n, p in enumerate(self.pending_events):
            kind = p.entry["type"]
            fields = {k: v for k, v in p.entry.items() if k != "type" and k != "version"}
            out.append(StoredEvent(self.id, first + n, topic_of(kind), event_state(kind, p.timestamp, fields)))
        return out
