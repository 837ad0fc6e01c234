"""The ledger application: load -> call the aggregate -> save, in batches.

Many commands share one transaction for speed, yet each keeps its own answer:
a command that is rejected triggers no event, so it writes nothing. A batch that
loses an optimistic-concurrency race (another process wrote the same officer)
is retried from fresh state; receipts of accepted command ids are written in the
same transaction as the events, so a resend after a crash answers ``duplicate``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, OperationalError

from ledger import crypto, schema
from ledger.commands import Command, parse_line
from ledger.config import Settings
from ledger.domain.errors import AlreadyExists, DuplicateCommandConflict, LedgerError, NotFound
from ledger.domain.officer import Officer
from ledger.domain.reference import Competency, Course, Organisation, Post, already_defined
from ledger.events import to_public
from ledger.projections import record as record_fold

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger("ledger.application")

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
MAX_RETRIES = 20


@dataclass(frozen=True)
class Outcome:
    """The answer to one input line."""

    line: int
    status: str
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "status": self.status}
        if self.error is not None:
            out["error"] = self.error
        return out


class Ledger(Application[UUID]):
    """The event-sourced system of record."""

    name = "Ledger"

    def __init__(self, settings: Settings, cache_size: int = 200_000) -> None:
        self.settings = settings
        schema.ensure_store(settings)  # the library's recorders expect the tables to exist
        super().__init__(env=settings.eventsourcing_env())
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._cache_size = cache_size
        # One writer at a time per process: the aggregate cache and the cached
        # aggregates are mutated by writes (the API's committer thread and an
        # erasure request may otherwise race).
        self._write_lock = threading.RLock()

    # ---- writing ------------------------------------------------------------

    def ingest(self, lines: Iterable[str], batch_size: int = 500) -> Iterator[Outcome]:
        """Apply JSON Lines in order; yields one outcome per non-blank line."""
        chunk: list[tuple[int, str]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            chunk.append((number, line))
            if len(chunk) >= batch_size:
                yield from self._apply_batch(chunk)
                chunk = []
        if chunk:
            yield from self._apply_batch(chunk)

    def execute(self, command: dict[str, Any] | str) -> Outcome:
        """Apply a single command (a dict or one JSON line)."""
        import json

        line = command if isinstance(command, str) else json.dumps(command)
        return next(iter(self._apply_batch([(1, line)])))

    def _apply_batch(self, chunk: list[tuple[int, str]]) -> list[Outcome]:
        with self._write_lock:
            return self._apply_batch_locked(chunk)

    def _apply_batch_locked(self, chunk: list[tuple[int, str]]) -> list[Outcome]:
        for attempt in range(MAX_RETRIES):
            unit = UnitOfWork(self)
            outcomes = unit.handle_all(chunk)
            try:
                unit.commit()
            except (IntegrityError, OperationalError):
                # Another writer got there first (or the database was briefly
                # locked): forget everything cached and redo the batch from the
                # store's current state.
                self._cache.clear()
                if attempt == MAX_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
                continue
            except BaseException:
                self._cache.clear()
                raise
            for aggregate in unit.aggregates.values():
                self._remember(aggregate)
            return outcomes
        raise AssertionError("unreachable")

    def _remember(self, aggregate: Aggregate) -> None:
        self._cache[aggregate.id] = aggregate
        self._cache.move_to_end(aggregate.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

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

    def erase(self, officer_id: str, reason: str) -> bool:
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
                officer.erase(reason, datetime.now(timezone.utc))
                try:
                    self.save(officer, destroy_keys=[officer_id])
                except (IntegrityError, OperationalError):
                    self._cache.clear()
                    if attempt == MAX_RETRIES - 1:
                        raise
                    continue
                except BaseException:
                    self._cache.clear()
                    raise
                self._remember(officer)
                break
            try:
                self.recorder.scrub()  # type: ignore[attr-defined]
            except Exception as exc:
                log.warning("officer %s erased, but scrubbing the database files failed: %s", officer_id, exc)
                return False
            return True

    # ---- reading ------------------------------------------------------------

    def read_log(
        self, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` events after notification id ``after``, as (id, public event)."""
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [(n.id, to_public(self.mapper.to_domain_event(n))) for n in notifications]

    def iter_log(self, after: int = 0, page: int = 1000) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every event after ``after``, in notification order, one page at a time."""
        while True:
            batch = self.read_log(after, page)
            if not batch:
                return
            yield from batch
            after = batch[-1][0]

    def verify(self, officer_id: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Recompute hash chains (one officer's, or every aggregate's).

        Returns how many aggregates were checked and every break found, each with
        the entity it belongs to, the version, and what is wrong.
        """
        from ledger.chain import verify_chain

        recorder: Any = self.recorder
        if officer_id is not None:
            originators = [Officer.create_id(officer_id).hex]
        else:
            originators = sorted(recorder.originators())
        breaks: list[dict[str, Any]] = []
        for originator in originators:
            stored = recorder.select_events(UUID(originator))
            found = verify_chain(
                ((s.originator_version, s.state) for s in stored), recorder.select_chain(originator), originator
            )
            if not found:
                continue
            entity = officer_id or self._entity_of(stored) or originator
            breaks += [{"entity": entity, "version": b.version, "problem": b.problem} for b in found]
        return len(originators), breaks

    def _entity_of(self, stored: list[Any]) -> str | None:
        for s in stored:
            try:
                event = to_public(self.mapper.to_domain_event(s))
            except Exception:  # an altered event may not even decode
                continue
            for field in ("officer_id", "post_id", "course_id", "competency_id", "org_id"):
                if event.get(field):
                    return f"{field}={event[field]}"
        return None

    def event_counts(self) -> dict[str, int]:
        """How many events of each type the store holds."""
        counts: dict[str, int] = {}
        for _, event in self.iter_log():
            counts[event["type"]] = counts.get(event["type"], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def officer_events(self, officer_id: str) -> list[dict[str, Any]]:
        """The officer's events in order, in the public shape."""
        return [to_public(e) for e in self.events.get(Officer.create_id(officer_id))]

    def decrypter(self, officer_id: str) -> record_fold.Decrypt:
        """A function that decrypts this officer's personal fields (None once erased)."""
        key = self.recorder.select_key(officer_id)  # type: ignore[attr-defined]

        def decrypt(field: str, token: str) -> str | None:
            return crypto.decrypt(key, officer_id, field, token)

        return decrypt

    def history(self, officer_id: str) -> list[dict[str, Any]]:
        """History for reviewers: every event, personal fields decrypted while possible."""
        decrypt = self.decrypter(officer_id)
        out = []
        for event in self.officer_events(officer_id):
            if event["type"] == "OfficerRegistered":
                event = dict(event)
                event["name"] = decrypt("name", event.pop("name_ct"))
                event["email"] = decrypt("email", event.pop("email_ct"))
            out.append(event)
        return out

    def record(self, officer_id: str, as_of: datetime | None = None) -> dict[str, Any] | None:
        """The learning record folded from the officer's events (up to ``as_of``)."""
        events = self.officer_events(officer_id)
        if not events:
            return None
        return record_fold.fold(officer_id, events, self.decrypter(officer_id), as_of)


class UnitOfWork:
    """One batch: the aggregates it touched, the receipts and keys it will write."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.aggregates: dict[UUID, Aggregate] = {}
        self.receipts: dict[str, str] = {}
        self.keys: dict[str, bytes] = {}
        self._stored_receipts: dict[str, str] = {}

    def handle_all(self, chunk: list[tuple[int, str]]) -> list[Outcome]:
        """Parse every line, fetch known receipts in one query, then apply in order."""
        parsed: list[tuple[int, Command | LedgerError]] = []
        for number, line in chunk:
            try:
                parsed.append((number, parse_line(line)))
            except LedgerError as exc:
                parsed.append((number, exc))
        ids = [c.command_id for _, c in parsed if isinstance(c, Command) and c.command_id]
        recorder: Any = self.ledger.recorder
        self._stored_receipts = recorder.select_receipts(ids) if ids else {}
        return [self.handle(number, command) for number, command in parsed]

    def handle(self, number: int, command: Command | LedgerError) -> Outcome:
        """Apply one parsed command (or report its parse error)."""
        if isinstance(command, LedgerError):
            return Outcome(number, REJECTED, str(command))
        try:
            if command.command_id is not None:
                known = self._receipt(command.command_id)
                if known is not None:
                    if known == command.content_hash:
                        return Outcome(number, DUPLICATE)
                    raise DuplicateCommandConflict(
                        f"command_id: {command.command_id!r} was already accepted "
                        "with different content"
                    )
            self.dispatch(command)
        except LedgerError as exc:
            return Outcome(number, REJECTED, str(exc))
        if command.command_id is not None:
            self.receipts[command.command_id] = command.content_hash
        return Outcome(number, ACCEPTED)

    def _receipt(self, command_id: str) -> str | None:
        if command_id in self.receipts:
            return self.receipts[command_id]
        return self._stored_receipts.get(command_id)

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        found = self.aggregates.get(aggregate_id)
        if found is None:
            found = self.ledger.load(cls, aggregate_id)
            if found is not None:
                self.aggregates[aggregate_id] = found
        assert found is None or isinstance(found, cls)
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate

    def org(self, org_id: str) -> Organisation:
        org = self.get(Organisation, Organisation.create_id(org_id))
        if org is None:
            raise NotFound(f"org_id: organisation {org_id!r} is not defined")
        return org

    def post(self, post_id: str | None) -> Post | None:
        return None if post_id is None else self.get(Post, Post.create_id(post_id))

    def course(self, course_id: str) -> Course:
        course = self.get(Course, Course.create_id(course_id))
        if course is None:
            raise NotFound(f"course_id: course {course_id!r} is not published")
        return course

    def officer(self, officer_id: str) -> Officer:
        officer = self.get(Officer, Officer.create_id(officer_id))
        if officer is None:
            raise NotFound(f"officer_id: officer {officer_id!r} is not registered")
        return officer

    def dispatch(self, command: Command) -> None:
        f = command.fields
        at: datetime = f["occurred_at"]
        stamp = at.isoformat()
        kind = command.type
        if kind == "define_organisation":
            if self.get(Organisation, Organisation.create_id(f["org_id"])) is not None:
                raise already_defined("organisation", "org_id", f["org_id"])
            parent_id = f.get("parent_id")
            parent = (
                None if parent_id is None else self.get(Organisation, Organisation.create_id(parent_id))
            )
            self.add(
                Organisation.define(f["org_id"], f["name"], f["kind"], parent, parent_id, stamp)
            )
        elif kind == "define_competency":
            if self.get(Competency, Competency.create_id(f["competency_id"])) is not None:
                raise already_defined("competency", "competency_id", f["competency_id"])
            self.add(Competency.define(f["competency_id"], f["name"], f["kind"], stamp))
        elif kind == "define_post":
            self.org(f["org_id"])
            for r, role in enumerate(f["roles"]):
                for a, activity in enumerate(role["activities"]):
                    for c, need in enumerate(activity["competencies"]):
                        self._competency(
                            need["competency_id"],
                            f"roles[{r}].activities[{a}].competencies[{c}].competency_id",
                        )
            existing = self.get(Post, Post.create_id(f["post_id"]))
            if existing is None:
                self.add(Post.define(f["post_id"], f["org_id"], f["title"], f["roles"], stamp))
            else:
                existing.revise(f["org_id"], f["title"], f["roles"], stamp)
        elif kind == "publish_course":
            if self.get(Course, Course.create_id(f["course_id"])) is not None:
                raise AlreadyExists(f"course_id: course {f['course_id']!r} is already published")
            needs = f.get("competencies", [])
            for c, need in enumerate(needs):
                self._competency(need["competency_id"], f"competencies[{c}].competency_id")
            self.add(
                Course.publish(
                    f["course_id"],
                    f["title"],
                    f["provider"],
                    f["duration_hours"],
                    needs,
                    f.get("assessment"),
                    stamp,
                )
            )
        elif kind == "register_officer":
            officer_id = f["officer_id"]
            if self.get(Officer, Officer.create_id(officer_id)) is not None:
                raise AlreadyExists(f"officer_id: officer {officer_id!r} is already registered")
            org = self.org(f["org_id"])
            post_id = f.get("post_id")
            post = self.post(post_id)
            key = crypto.new_data_key()
            officer = Officer.register(
                officer_id,
                crypto.encrypt(key, officer_id, "name", f["name"]),
                crypto.encrypt(key, officer_id, "email", f["email"]),
                org,
                post,
                post_id,
                at,
            )
            self.keys[officer_id] = key
            self.add(officer)
        else:
            self._officer_command(kind, f, at)

    def _competency(self, competency_id: str, field: str) -> None:
        if self.get(Competency, Competency.create_id(competency_id)) is None:
            raise NotFound(f"{field}: competency {competency_id!r} is not defined")

    def _officer_command(self, kind: str, f: dict[str, Any], at: datetime) -> None:
        officer = self.officer(f["officer_id"])
        if kind == "transfer_officer":
            org = self.org(f["org_id"])
            post_id = f.get("post_id")
            officer.transfer(org, self.post(post_id), post_id, at)
        elif kind == "enrol":
            officer.enrol(self.course(f["course_id"]), at)
        elif kind == "record_progress":
            officer.record_progress(f["course_id"], f["percent"], at)
        elif kind == "attempt_assessment":
            officer.attempt_assessment(self.course(f["course_id"]), f["score"], at)
        elif kind == "complete_course":
            officer.complete(self.course(f["course_id"]), at)
        elif kind == "withdraw":
            officer.withdraw(f["course_id"], at)
        else:  # pragma: no cover - parse_command only admits known types
            raise LedgerError(f"type: unknown command type {kind!r}")

    def commit(self) -> None:
        """Write every pending event, receipt and key in one transaction."""
        has_events = any(a.pending_events for a in self.aggregates.values())
        if not (has_events or self.receipts or self.keys):
            return
        self.ledger.save(*self.aggregates.values(), receipts=self.receipts, keys=self.keys)
