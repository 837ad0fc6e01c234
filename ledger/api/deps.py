"""Dependencies of the routes: the app's services, who is calling, and what they may do.

Authorization is a dependency, so it runs before a route reads its body: a request
without a valid token answers 401, and one outside its role 403, whatever it sends.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.api import auth
from ledger.api.auth import Principal
from ledger.api.committer import GroupCommitter
from ledger.config import Settings
from ledger.domain.errors import LedgerError, NotFound
from ledger.domain.values import ID_PATTERN
from ledger.monitor.collector import CachedStatus
from ledger.ops.metrics import AUTH_FAILURES
from ledger.store import schema
from ledger.store.db import Database


class Services:
    """Per-process resources: the ledger and its audit reads, thread-local database handles, the committer."""

    def __init__(self, settings: Settings, project: bool, token_ttl: float = 2.0) -> None:
        from ledger.read.audit import AuditReader
        from ledger.write.application import Ledger

        self.settings = settings
        self.ledger = Ledger(settings)
        self.audit = AuditReader(self.ledger)
        self._local = threading.local()
        self._schema_checked = False
        # The store's schema is current: an empty store is created by running the
        # migrations, one at another version is refused (ledger.store.schema).
        schema.ensure(self.db())
        self._schema_checked = True
        self.tokens = auth.TokenCache(self.db, token_ttl)
        self.committer = GroupCommitter(self.ledger)
        # What the console's integrity page polls: one report for every open page, at
        # most one computation every two seconds (GET /status computes its own).
        self.status = CachedStatus(self.ledger, settings, min_interval=2.0)
        self.follower: Any = None
        if project:
            from ledger.consumers.log import LogFollower
            from ledger.projections.runner import Runner

            self.follower = LogFollower(self.ledger, Runner(Database(settings)), poll_interval=0.1)
            threading.Thread(target=self.follower.run, name="projections", daemon=True).start()

    def db(self) -> Database:
        """This thread's database handle (routes run on a thread pool)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = Database(self.settings)
            # The schema was checked once at start; checking it again on each new thread
            # would take the store's write lock before that thread's first read.
            db.schema_checked = self._schema_checked
        return db

    def reads(self) -> Any:
        """This thread's read models."""
        from ledger.read.models import ReadModels

        reads = getattr(self._local, "reads", None)
        if reads is None:
            reads = self._local.reads = ReadModels(self.db(), self.ledger)
        return reads

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop.set()
        self.committer.close()


async def get_services(request: Request) -> Services:
    """The services the app's lifespan built (async: no trip to the thread pool)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

bearer = HTTPBearer(auto_error=False)


async def current_principal(
    services: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller named by a valid bearer token, else 401."""
    if creds is None or creds.scheme.lower() != "bearer":
        AUTH_FAILURES.labels("missing").inc()
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return await principal_of(services, creds.credentials)


async def principal_of(services: Services, token: str) -> Principal:
    """The caller named by ``token`` if it is valid, else 401 (the API's and the console's check)."""
    found = await services.tokens.judge(token)  # a reading of the table runs on a worker thread
    if found is None:
        AUTH_FAILURES.labels("invalid").inc()
        raise HTTPException(401, "the token is not valid or was revoked", headers={"WWW-Authenticate": "Bearer"})
    return found


@dataclass(frozen=True)
class Rule:
    """Which roles may do what: one rule per kind of request, shared by the API and the console."""

    roles: tuple[str, ...]
    action: str

    def check(self, who: Principal) -> Principal:
        """``who`` if its role is one of ``roles``, else 403: may not ``action``."""
        if who.role not in self.roles:
            AUTH_FAILURES.labels("forbidden").inc()
            raise HTTPException(403, f"role {who.role} may not {self.action}")
        return who


# Which commands each of these roles may send is decided per command (ledger.write.unit).
SEND_COMMANDS = Rule(("ingest", "registrar", "admin"), "send commands")
READ_OFFICERS = Rule(("officer", "ministry_hr", "auditor"), "read officers")
READ_MINISTRIES = Rule(("ministry_hr", "cbc", "auditor"), "read ministry aggregates")
READ_ALL_GAPS = Rule(("cbc", "auditor"), "read every ministry's gap report")
READ_STATUS = Rule(("auditor", "admin"), "read status")
ADMINISTER = Rule(("admin",), "administer the ledger")


def require_role(*roles: str, action: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers with one of ``roles`` (else 403: may not ``action``)."""
    rule = Rule(roles, action)

    async def has_role(who: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return rule.check(who)

    return has_role


def requires(rule: Rule) -> Callable[..., Awaitable[Principal]]:
    """The dependency enforcing ``rule``."""
    return require_role(*rule.roles, action=rule.action)


Ingester = Annotated[Principal, Depends(requires(SEND_COMMANDS))]
OfficerReader = Annotated[Principal, Depends(requires(READ_OFFICERS))]
MinistryReader = Annotated[Principal, Depends(requires(READ_MINISTRIES))]
CommissionReader = Annotated[Principal, Depends(requires(READ_ALL_GAPS))]
StatusReader = Annotated[Principal, Depends(requires(READ_STATUS))]
Admin = Annotated[Principal, Depends(requires(ADMINISTER))]


def check_ministry_scope(who: Principal, ministry_id: str) -> None:
    """A ministry HR token reads only its own ministry (403); an id that cannot exist is 422."""
    if who.role == "ministry_hr" and who.ministry_id != ministry_id:
        AUTH_FAILURES.labels("forbidden").inc()
        raise HTTPException(403, f"a ministry_hr token reads only ministry {who.ministry_id}")
    if ID_PATTERN.fullmatch(ministry_id) is None:
        raise HTTPException(422, f"ministry_id: {ministry_id!r} is not a valid id")


@dataclass(frozen=True)
class ReadableOfficer:
    """An officer the caller may read, with the officer's current learning record."""

    officer_id: str
    record: dict[str, Any]
    reader: Principal


def readable_officer(officer_id: str, who: OfficerReader, services: ServicesDep) -> ReadableOfficer:
    """The officer if ``who`` may read it, decided from the store's own state.

    Which ministry an officer is posted under comes from ``officer_access``, written in
    the same transaction as the events: an HR cell loses access the instant a transfer
    out is accepted, and the new ministry gains it, however far the read models lag.
    A ministry HR token gets the same 404 for an officer of another ministry as for an
    unknown one, so it cannot learn who exists. An id that is not a valid id in full
    answers 404 too: nothing by that name can exist, and it never reaches a query.
    """
    if who.role == "officer" and who.officer_id != officer_id:
        AUTH_FAILURES.labels("forbidden").inc()
        raise HTTPException(403, "an officer token reads only its own officer")
    access = None
    if ID_PATTERN.fullmatch(officer_id) is not None:
        access = services.ledger.access(officer_id)
    if access is None or (who.role == "ministry_hr" and access.ministry_id != who.ministry_id):
        raise HTTPException(404, f"no officer {officer_id!r} that this token may read")
    current = services.reads().record(officer_id)
    if current is None:
        raise HTTPException(404, f"officer {officer_id!r} is registered but not projected yet; retry shortly")
    return ReadableOfficer(officer_id, current, who)


Officer = Annotated[ReadableOfficer, Depends(readable_officer)]


def apply_erasure(services: Services, officer_id: str, reason: str, ticket: str | None = None) -> dict[str, Any]:
    """Erase an officer for the API and the console alike: 404 for an id nothing can have.

    ``reason`` and ``ticket`` come validated (``ledger.api.models.EraseRequest``: a code, an id).
    """
    if ID_PATTERN.fullmatch(officer_id) is None:  # nothing by that name can be registered
        raise HTTPException(404, f"officer_id: officer {officer_id!r} is not registered")
    try:
        scrubbed = services.ledger.erase(officer_id, reason, ticket)
    except LedgerError as exc:
        raise HTTPException(404 if isinstance(exc, NotFound) else 422, str(exc)) from None
    return {"officer_id": officer_id, "erased": True, "scrubbed": scrubbed}
