"""One batch of commands: the aggregates it touched, the receipts and keys it will write.

Each command gets its own answer, and nothing a failed command did survives it.
A domain error is raised before any event is triggered, so it changes nothing.
Any other exception (a bug, a value the libraries choke on) may strike after a
handler changed an aggregate; so each command keeps a savepoint of every aggregate
it touches (its version and pending-event count as the command found it), and on
failure those aggregates are rebuilt from the store plus the events that earlier
commands of the batch triggered. Only the culprit is rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import PersistenceError

from ledger.domain.errors import (
    DuplicateCommandConflict,
    LedgerError,
    NotPermitted,
    OfficerErasedError,
)
from ledger.domain.officer import Officer
from ledger.integrity import crypto
from ledger.store.receipts import Actor, Receipt
from ledger.write.commands import CORRECTION_COMMANDS, Command, parse_line
from ledger.write.handlers import HANDLERS

if TYPE_CHECKING:
    from ledger.write.application import Ledger

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger("ledger.write.application")

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
# Commands whose content includes personal data (their receipts are keyed, see Receipt).
PERSONAL_DATA_COMMANDS = frozenset({"register_officer", "correct_officer_details"})
Parsed = list[tuple[int, "Command | LedgerError"]]


@dataclass(frozen=True)
class Outcome:
    """The answer to one input line."""

    line: int
    status: str
    error: str | None = None
    reason: str | None = field(default=None, compare=False, repr=False)  # the error's class, for metrics

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "status": self.status}
        if self.error is not None:
            out["error"] = self.error
        return out


# Roles that may send corrections through the API, and roles that may send nothing else.
CORRECTORS = ("registrar", "admin")
CORRECTING_ONLY = ("registrar",)


def check_sender(command: Command) -> None:
    """Reject a command its sender's role may not send (DOMAIN.md "Who may correct")."""
    sender = command.sender
    if sender is None:  # the command line
        return
    if command.type == "retract" and sender.role == "lrs":
        return  # a voided xAPI statement retracts what its statement produced (ledger.xapi.mapping)
    if command.type in CORRECTION_COMMANDS and sender.role not in CORRECTORS:
        raise NotPermitted(f"type: a token of role {sender.role!r} may not send {command.type} "
                           "(only registrar or admin tokens, or the command line)")
    if command.type not in CORRECTION_COMMANDS and sender.role in CORRECTING_ONLY:
        raise NotPermitted(f"type: a token of role {sender.role!r} sends only corrections "
                           f"({', '.join(sorted(CORRECTION_COMMANDS))}), not {command.type}")


def internal_error(stage: str, exc: BaseException) -> LedgerError:
    """The rejection for an unexpected exception: its class, never its traceback or values."""
    return LedgerError(f"internal error while {stage} this command ({type(exc).__name__})")


def parse_all(chunk: Sequence[tuple[int, str | LedgerError | Command]]) -> Parsed:
    """Parse every line; a line that cannot be parsed becomes its own rejection."""
    parsed: Parsed = []
    for number, line in chunk:
        if isinstance(line, (LedgerError, Command)):  # not readable as a line, or parsed already
            parsed.append((number, line))
            continue
        try:
            parsed.append((number, parse_line(line)))
        except LedgerError as exc:
            parsed.append((number, exc))
        except Exception as exc:  # the one boundary per line: a parser bug is this line's alone
            log.exception("line %d could not be read; rejected", number)
            parsed.append((number, internal_error("reading", exc)))
    return parsed


class _Before(NamedTuple):
    """An aggregate as a command first touched it."""

    in_batch: bool  # the batch held it already (else: loaded or created by this command)
    version: int
    pending: int  # events that the batch's earlier commands triggered on it


@dataclass
class _Savepoint:
    """What one command found before it ran: enough to undo it."""

    touched: dict[UUID, _Before] = field(default_factory=dict)
    # officer id -> the key it replaced (None: there was none)
    keys: list[tuple[str, bytes | None]] = field(default_factory=list)


class UnitOfWork:
    """One batch: the aggregates it touched, the receipts and keys it will write."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.aggregates: dict[UUID, Aggregate] = {}
        self.receipts: dict[str, Receipt] = {}
        self.keys: dict[str, bytes] = {}
        self.actors: list[Actor] = []
        self._stored_receipts: dict[str, Receipt] = {}
        self._absent: set[UUID] = set()
        self._savepoint = _Savepoint()

    def handle_all(self, parsed: Parsed) -> list[Outcome]:
        """Fetch known receipts in one query, then apply the commands in order."""
        ids = [c.command_id for _, c in parsed if isinstance(c, Command) and c.command_id]
        recorder: Any = self.ledger.recorder
        self._stored_receipts = recorder.select_receipts(ids) if ids else {}
        # The batch's officers, loaded together (one query, not one per officer).
        self._absent = self.ledger.preload(
            Officer.create_id(c.officer_id) for _, c in parsed if isinstance(c, Command) and c.officer_id
        )
        return [self.handle(number, command) for number, command in parsed]

    def handle(self, number: int, command: Command | LedgerError) -> Outcome:
        """Apply one parsed command (or report its parse error); never raises for the command's sake."""
        if isinstance(command, LedgerError):
            return Outcome(number, REJECTED, str(command), type(command).__name__)
        self._savepoint = _Savepoint()
        try:
            if command.command_id is not None:
                known = self._receipt(command.command_id)
                if known is not None:
                    if self._same_content(known, command):
                        return Outcome(number, DUPLICATE)
                    raise DuplicateCommandConflict(
                        f"command_id: {command.command_id!r} was already accepted "
                        "with different content"
                    )
            handler = HANDLERS.get(command.type)
            if handler is None:  # parse_command only admits known types
                raise LedgerError(f"type: unknown command type {command.type!r}")
            check_sender(command)
            handler(self, command.fields)
            if command.type in CORRECTION_COMMANDS:
                self._record_actor(command)
        except PersistenceError:
            raise  # the store, not this command: the batch is retried or fails as a whole
        except LedgerError as exc:
            if self._changed():
                log.warning("line %d was rejected (%s) after changing state; undone", number, exc)
                self._undo()
            return Outcome(number, REJECTED, str(exc), type(exc).__name__)
        except Exception as exc:  # the one boundary per command
            log.exception("line %d failed with an internal error; rejected and undone", number)
            self._undo()
            return Outcome(number, REJECTED, str(internal_error("applying", exc)), "InternalError")
        if command.command_id is not None:
            self.receipts[command.command_id] = self._new_receipt(command)
        return Outcome(number, ACCEPTED)

    def _record_actor(self, command: Command) -> None:
        """Who made a correction, written beside its event (for the auditors)."""
        officer_id = command.fields["officer_id"]
        officer = self.aggregates[Officer.create_id(officer_id)]
        sender = command.sender
        self.actors.append(Actor(officer_id, officer.version, "cli" if sender is None else sender.role,
                                 None if sender is None else sender.name))

    def _new_receipt(self, command: Command) -> Receipt:
        """The receipt of an accepted command; keyed when the command carried personal data."""
        if command.type in PERSONAL_DATA_COMMANDS:
            officer_id = command.fields["officer_id"]
            key = self.key_of(officer_id)
            assert key is not None  # the command was just applied under it
            return Receipt(crypto.keyed_digest(key, command.content_hash), officer_id)
        return Receipt(command.content_hash)

    def _same_content(self, known: Receipt, command: Command) -> bool:
        """Whether a resent command is the one the receipt was made for.

        Once the officer a personal-data receipt is keyed to was erased, there is
        nothing to compare with: every resend gets the same answer, whatever name or
        email it carries, so the answer confirms no guess. Receipts from before keyed
        receipts existed get that answer too when they name an erased officer.
        """
        officer_id = known.officer_id
        if officer_id is None and command.type in PERSONAL_DATA_COMMANDS:
            officer_id = command.fields["officer_id"] if self._erased(command.fields["officer_id"]) else None
        if officer_id is None:
            return known.digest == command.content_hash
        key = self.key_of(officer_id)
        if key is None or self._erased(officer_id):
            raise OfficerErasedError(
                f"command_id: {command.command_id!r} was accepted for an officer whose personal data "
                "has since been erased; it cannot be compared or applied again"
            )
        return bool(known.digest == crypto.keyed_digest(key, command.content_hash))

    def _erased(self, officer_id: str) -> bool:
        officer = self.get(Officer, Officer.create_id(officer_id))
        return officer is not None and officer.erased

    def _receipt(self, command_id: str) -> Receipt | None:
        if command_id in self.receipts:
            return self.receipts[command_id]
        return self._stored_receipts.get(command_id)

    # ---- what handlers use ----------------------------------------------------

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate as this batch has it (loaded once), or None when it does not exist."""
        found = self.aggregates.get(aggregate_id)
        if found is None:
            if aggregate_id in self._absent:
                return None  # not in the store when the batch began (see handle_all)
            found = self.ledger.load(cls, aggregate_id)
            if found is None:
                return None
            self._touch(aggregate_id, found, in_batch=False)
            self.aggregates[aggregate_id] = found
        else:
            self._touch(aggregate_id, found, in_batch=True)
        assert isinstance(found, cls)
        return found

    def add(self, aggregate: Aggregate) -> None:
        """A new aggregate, saved with the batch."""
        existing = self.aggregates.get(aggregate.id)
        if existing is None:
            self._savepoint.touched.setdefault(aggregate.id, _Before(False, 0, 0))
        else:
            self._touch(aggregate.id, existing, in_batch=True)
        self.aggregates[aggregate.id] = aggregate

    def key_of(self, officer_id: str) -> bytes | None:
        """The officer's data key: written in this batch, or stored (None once erased)."""
        found: bytes | None = self.keys.get(officer_id) or self.ledger.recorder.select_key(officer_id)  # type: ignore[attr-defined]
        return found

    def add_key(self, officer_id: str, key: bytes) -> None:
        """An officer's data key, written in the batch's transaction."""
        self._savepoint.keys.append((officer_id, self.keys.get(officer_id)))
        self.keys[officer_id] = key

    # ---- savepoints -----------------------------------------------------------

    def _touch(self, aggregate_id: UUID, aggregate: Aggregate, in_batch: bool) -> None:
        touched = self._savepoint.touched
        if aggregate_id not in touched:
            touched[aggregate_id] = _Before(
                in_batch, aggregate.version, len(aggregate.pending_events)
            )

    def _changed(self) -> bool:
        """Whether the current command left any trace (a domain error should leave none)."""
        if self._savepoint.keys:
            return True
        for aggregate_id, before in self._savepoint.touched.items():
            now = self.aggregates.get(aggregate_id)
            if now is None or (now.version, len(now.pending_events)) != before[1:]:
                return True
        return False

    def _undo(self) -> None:
        """Put back every aggregate and key the current command touched."""
        for officer_id, previous in reversed(self._savepoint.keys):
            if previous is None:
                self.keys.pop(officer_id, None)
            else:
                self.keys[officer_id] = previous
        for aggregate_id, before in self._savepoint.touched.items():
            # The cached object may be the one the command mutated in place.
            self.ledger.forget(aggregate_id)
            current = self.aggregates.get(aggregate_id)
            if not before.in_batch or current is None:
                self.aggregates.pop(aggregate_id, None)  # new to the batch: reloaded when needed
                continue
            earlier = list(current.pending_events[: before.pending])  # the earlier commands' events
            # Replaced in place, so the batch still saves its aggregates in the same order.
            stored_version = before.version - before.pending
            self.aggregates[aggregate_id] = self._rebuild(aggregate_id, stored_version, earlier)

    def _rebuild(self, aggregate_id: UUID, stored_version: int, events: list[Any]) -> Aggregate:
        """The aggregate at ``stored_version`` in the store, then ``events`` still pending."""
        base: Aggregate | None = None
        if stored_version > 0:
            base = self.ledger.repository.get(aggregate_id, version=stored_version)
        rebuilt = project_aggregate(base, events)
        assert isinstance(rebuilt, Aggregate)
        rebuilt.pending_events.extend(events)
        return rebuilt

    def commit(self) -> None:
        """Write every pending event, receipt and key in one transaction."""
        has_events = any(a.pending_events for a in self.aggregates.values())
        if not (has_events or self.receipts or self.keys):
            return
        self.ledger.save(*self.aggregates.values(), receipts=self.receipts, keys=self.keys, actors=self.actors)
