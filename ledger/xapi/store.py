"""Storing statements: checks against what is stored, then one transaction for the lot.

A request's statements are stored together or not at all: their events (one aggregate each,
:mod:`ledger.xapi.statement`), the query index rows, new person keys and attachments all go
in the events' own transaction (the recorders' ``side_rows``). A statement id already stored
with the same content is not stored again; with different content the whole request is a
conflict. ``stored`` instants are strictly increasing, in microseconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from eventsourcing.persistence import IntegrityError, OperationalError

from ledger.config import Settings
from ledger.integrity import crypto
from ledger.store.db import Database
from ledger.write.unit import UnitOfWork
from ledger.xapi import privacy
from ledger.xapi.compat import XapiInvalid, agent_key, same_statement
from ledger.xapi.mapping import Mapper
from ledger.xapi.statement import Statement

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
RETRIES = 10
MAX_GROUP = 500  # statements in one transaction


class Conflict(Exception):
    """A statement id is stored with other content (409)."""


@dataclass
class Prepared:
    """A statement ready to store: as received (``stmt``, ids set), and what the index needs."""

    stmt: dict[str, Any]
    activities: set[tuple[str, int]] = field(default_factory=set)
    agents: set[tuple[str, int]] = field(default_factory=set)


def iso_of(micros: int) -> str:
    """An instant in microseconds as the ISO 8601 UTC text ``stored`` carries."""
    return datetime.fromtimestamp(micros / 1_000_000, timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def index_terms(stmt: dict[str, Any]) -> Prepared:
    """The activity ids and hashed agent keys a statement names (``related`` 0: object/actor)."""
    prepared = Prepared(stmt)

    def agents_of(agent: Any, related: int) -> None:
        if not isinstance(agent, dict):
            return
        key = agent_key(agent)
        if key is not None:
            prepared.agents.add((privacy.agent_ref(key), related))
        for member in privacy.members(agent):
            agents_of(member, 1)

    def activities_of(s: dict[str, Any], related: int) -> None:
        obj = s.get("object")
        if isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity" and isinstance(obj.get("id"), str):
            prepared.activities.add((obj["id"], related))
        context = s.get("context")
        if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
            for group in context["contextActivities"].values():
                for activity in group if isinstance(group, list) else [group]:
                    if isinstance(activity, dict) and isinstance(activity.get("id"), str):
                        prepared.activities.add((activity["id"], 1))

    activities_of(stmt, 0)
    obj = stmt.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
        activities_of(obj, 1)
    for container, key, main in privacy.agent_slots(stmt):
        agents_of(container[key], 0 if main else 1)
    return prepared


@dataclass
class _Request:
    """One request's statements waiting to be stored, and its answer to come."""

    statements: list[dict[str, Any]]
    writer: str
    attachments: dict[str, tuple[str, bytes]]
    done: Future[list[str]] = field(default_factory=Future)

    def names(self) -> set[str]:
        """The statement ids this request stores or refers to."""
        found = {s["id"].lower() for s in self.statements}
        return found | {t for t in (_ref(s) for s in self.statements) if t is not None}


class StatementStore:
    """Writes statements through the ledger's event store (see the module's docstring)."""

    def __init__(self, ledger: Any, settings: Settings, db: Callable[[], Database]) -> None:
        self.ledger = ledger
        self.settings = settings
        self.db = db
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._leading = False

    # ---- reading what is stored ----------------------------------------------------

    def stored_docs(self, statement_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored statements (unsealed) with these ids, by lower-case id."""
        wanted = sorted({i.lower() for i in statement_ids})
        if not wanted:
            return {}
        with self.db().reading() as c:
            c.execute(f"SELECT statement_id, doc FROM xapi_statements WHERE statement_id IN ({','.join('?' * len(wanted))})",
                      wanted)
            sealed = {str(r[0]): json.loads(r[1]) for r in c.fetchall()}
        keys = self.keys_for(set().union(*(privacy.persons_in(d) for d in sealed.values())) if sealed else set())
        return {sid: privacy.unseal(doc, keys, self.settings.officer_homepage) for sid, doc in sealed.items()}

    def keys_for(self, persons: set[str]) -> dict[str, bytes]:
        """The data keys of these persons that still exist (officers' and others')."""
        officers = {p[len(privacy.OFFICER):]: p for p in persons if p.startswith(privacy.OFFICER)}
        others = sorted(p for p in persons if p.startswith(privacy.PERSON))
        keys = {officers[o]: k for o, k in self.ledger.recorder.select_keys(list(officers)).items()}
        if others:
            with self.db().reading() as c:
                c.execute(f"SELECT person, data_key FROM xapi_person_keys WHERE person IN ({','.join('?' * len(others))})",
                          others)
                keys.update({str(r[0]): bytes(r[1]) for r in c.fetchall()})
        return keys

    # ---- storing ---------------------------------------------------------------------

    def store(self, statements: list[dict[str, Any]], writer: str,
              attachments: dict[str, tuple[str, bytes]] | None = None) -> list[str]:
        """Store statements (validated, ids set) written by token ``writer``; their ids.

        Raises Conflict, or XapiInvalid for a voiding rule broken. Concurrent requests share
        transactions (group commit): the first waiting caller commits everyone's requests that
        arrived meanwhile, each still stored whole or not at all (see ``_commit_group``).
        """
        ids = [s["id"].lower() for s in statements]
        if len(set(ids)) != len(ids):
            raise XapiInvalid("statements: the same id appears twice in one request")
        request = _Request(statements, writer, attachments or {})
        with self._lock:
            self._pending.append(request)
            lead = not self._leading
            self._leading = True
        if lead:
            self._lead()
        return request.done.result()

    def _lead(self) -> None:
        """Commit the waiting requests, a group at a time, until none is left."""
        while True:
            with self._lock:
                if not self._pending:
                    self._leading = False
                    return
                group: list[_Request] = []
                rest: list[_Request] = []
                named: set[str] = set()
                taken = 0
                for r in self._pending:
                    # A request naming a statement of the group (the same id, a StatementRef to it)
                    # waits for the next one: it must see that statement stored.
                    if group and (taken + len(r.statements) > MAX_GROUP or r.names() & named):
                        rest.append(r)
                        continue
                    group.append(r)
                    taken += len(r.statements)
                    named |= {s["id"].lower() for s in r.statements}
                self._pending = rest
            try:
                self._commit_group(group)
            except BaseException as exc:  # never leave a caller waiting
                for r in group:
                    if not r.done.done():
                        r.done.set_exception(exc)

    def _commit_group(self, group: list[_Request]) -> None:
        """One transaction for the group's requests; a request refused by its checks is answered
        alone, and a group the store refuses for another reason than a race is redone one by one."""
        for attempt in range(RETRIES):
            live: list[tuple[_Request, list[dict[str, Any]], list[str]]] = []
            for r in group:
                if r.done.done():
                    continue
                try:
                    live.append((r, *self._check(r)))
                except (Conflict, XapiInvalid) as exc:
                    r.done.set_exception(exc)
            if not live:
                return
            try:
                self._write(live)
            except (IntegrityError, OperationalError):
                if attempt < RETRIES - 1:
                    time.sleep(0.01 * (attempt + 1))
                    continue
                if len(live) == 1:
                    raise
                self._one_by_one([r for r, _, _ in live])
                return
            except Exception:
                if len(live) == 1:
                    raise
                self._one_by_one([r for r, _, _ in live])
                return
            for r, _, _ in live:
                r.done.set_result([s["id"] for s in r.statements])
            return

    def _one_by_one(self, requests: list[_Request]) -> None:
        for r in requests:
            try:
                self._commit_group([r])
            except BaseException as exc:
                if not r.done.done():
                    r.done.set_exception(exc)

    def _check(self, r: _Request) -> tuple[list[dict[str, Any]], list[str]]:
        """The request's statements not stored yet and the ids they void; Conflict or XapiInvalid."""
        existing = self.stored_docs(s["id"] for s in r.statements)
        new = []
        for stmt in r.statements:
            found = existing.get(stmt["id"].lower())
            if found is None:
                new.append(stmt)
            elif not same_statement(found, stmt):
                raise Conflict(f"statement {stmt['id']}: already stored with other content")
        return new, self._void_targets(new) if new else []

    def _write(self, live: list[tuple[_Request, list[dict[str, Any]], list[str]]]) -> None:
        """Store the new statements of these requests in one transaction, with their mapping."""
        with self.db().reading() as c:
            # Two subqueries: each max is one index probe (one query with both would scan the table).
            c.execute("SELECT (SELECT max(seq) FROM xapi_statements), (SELECT max(stored_us) FROM xapi_statements)")
            row = c.fetchone()
        seq, last_us = int(row[0] or 0), int(row[1] or 0)
        now_us = max(time.time_ns() // 1000, last_us + 1)
        persons: set[str] = set()
        statement_rows: list[list[Any]] = []
        activity_rows: list[tuple[str, int, int]] = []
        agent_rows: list[tuple[str, int, int]] = []
        person_of = self._persons()
        for r, new, _ in live:
            for stmt in new:
                seq += 1
                stmt["stored"] = iso_of(now_us)
                stmt.setdefault("timestamp", stmt["stored"])  # xAPI: a statement without one happened when stored
                prepared = index_terms(stmt)
                persons |= {person_of(a) for c_, k, _ in privacy.agent_slots(stmt) for a in _with_members(c_[k])}
                statement_rows.append([seq, stmt["id"].lower(), now_us, stmt["verb"]["id"], _registration(stmt),
                                       _ref(stmt), r.writer, stmt])
                activity_rows += [(a, seq, rel) for a, rel in prepared.activities]
                agent_rows += [(a, seq, rel) for a, rel in prepared.agents]
                now_us += 1
        keys = self.keys_for(persons)
        fresh = {p: crypto.new_data_key() for p in persons if p not in keys}
        keys.update(fresh)
        aggregates = []
        for row in statement_rows:
            stmt = row[-1]
            doc = json.dumps(privacy.seal(stmt, person_of, keys), ensure_ascii=False, separators=(",", ":"))
            row[-1] = doc
            aggregates.append(Statement(statement_id=row[1], stored=stmt["stored"], writer=row[6], doc=doc))
        attachments = {sha: part for r, _, _ in live for sha, part in r.attachments.items()}
        side = [
            ("INSERT INTO xapi_person_keys (person, data_key) VALUES (?, ?)", list(fresh.items())),
            ("INSERT INTO xapi_statements (seq, statement_id, stored_us, verb, registration, ref, writer, doc) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [tuple(r) for r in statement_rows]),
            ("INSERT INTO xapi_activities (activity_id, seq, related) VALUES (?, ?, ?)", activity_rows),
            ("INSERT INTO xapi_agents (agent, seq, related) VALUES (?, ?, ?)", agent_rows),
            ("UPDATE xapi_statements SET voided = 1 WHERE statement_id = ?", [(t,) for _, _, ts in live for t in ts]),
            ("INSERT INTO xapi_attachments (sha2, content_type, content) VALUES (?, ?, ?) ON CONFLICT (sha2) DO NOTHING",
             [(sha, ctype, content) for sha, (ctype, content) in attachments.items()]),
        ]
        rows_of = {row[1]: row for row in statement_rows}

        def work(unit: UnitOfWork) -> tuple[list[Statement], dict[str, Any]]:
            mapped: list[Any] = []
            unmapped: list[Any] = []
            for r, new, _ in live:
                mapper = Mapper(self.settings, r.writer, self._mapped_before)
                for stmt in new:
                    row = rows_of[stmt["id"].lower()]
                    mapper.apply(unit, stmt, row[0], row[2])
                mapped += mapper.mapped
                unmapped += mapper.unmapped
            rows = [*side,
                    ("INSERT INTO xapi_mapped (statement_id, writer, officer_id, versions) VALUES (?, ?, ?, ?)", mapped),
                    ("INSERT INTO xapi_unmapped (statement_id, seq, writer, verb, command, rule, stored_us) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", unmapped)]
            return aggregates, {"side_rows": [(sql, values) for sql, values in rows if values]}

        self.ledger.apply_with(work)

    def _mapped_before(self, statement_id: str) -> tuple[str, str, list[int]] | None:
        with self.db().reading() as c:
            c.execute("SELECT writer, officer_id, versions FROM xapi_mapped WHERE statement_id = ?", (statement_id,))
            row = c.fetchone()
        return None if row is None else (str(row[0]), str(row[1]), json.loads(row[2]))

    def _persons(self) -> Callable[[dict[str, Any]], str]:
        """Who seals each agent: an officer with a data key, else a person of their own."""
        homepage = self.settings.officer_homepage
        known: dict[str, bool] = {}

        def person(agent: dict[str, Any]) -> str:
            ref = privacy.person_of(agent, agent_key, homepage, lambda: json.dumps(agent, sort_keys=True))
            if ref.startswith(privacy.OFFICER):
                officer = ref[len(privacy.OFFICER):]
                if officer not in known:
                    known[officer] = self.ledger.recorder.select_key(officer) is not None
                if not known[officer]:
                    key = agent_key(agent)
                    return privacy.PERSON + privacy.agent_ref(key or officer)
            return ref

        return person

    def _void_targets(self, statements: list[dict[str, Any]]) -> list[str]:
        """The ids the voiding statements among these void; refuses voiding a voiding statement."""
        targets = [v for v in (_voids(s) for s in statements) if v is not None]
        if not targets:
            return []
        with self.db().reading() as c:
            c.execute(f"SELECT statement_id, verb FROM xapi_statements WHERE statement_id IN "
                      f"({','.join('?' * len(targets))})", targets)
            verbs = {str(r[0]): str(r[1]) for r in c.fetchall()}
        batch = {s["id"].lower(): s["verb"]["id"] for s in statements}
        for target in targets:
            if verbs.get(target, batch.get(target)) == VOIDED:
                raise XapiInvalid(f"statement {target}: a voiding statement cannot be voided")
        return targets


def _with_members(agent: Any) -> list[dict[str, Any]]:
    if not isinstance(agent, dict):
        return []
    return [agent, *(m for member in privacy.members(agent) for m in _with_members(member))]


def _registration(stmt: dict[str, Any]) -> str | None:
    context = stmt.get("context")
    reg = context.get("registration") if isinstance(context, dict) else None
    return reg.lower() if isinstance(reg, str) else None


def _ref(stmt: dict[str, Any]) -> str | None:
    """The id of the statement a StatementRef object targets, else None."""
    obj = stmt.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "StatementRef" and isinstance(obj.get("id"), str):
        return str(obj["id"]).lower()
    return None


def _voids(stmt: dict[str, Any]) -> str | None:
    """The id a voiding statement voids, else None."""
    obj = stmt.get("object")
    if stmt["verb"].get("id") == VOIDED and isinstance(obj, dict) and obj.get("objectType") == "StatementRef":
        target = obj.get("id")
        return target.lower() if isinstance(target, str) else None
    return None
