"""An officer's access log (DPDP Act 2023, s. 11): who read their personal data, for them and for auditors.

The officer reads their own log, an auditor any officer's; nobody else. The officer
sees when, by which role, from which ministry (the reader's, for a role that has one)
and what was read; only an auditor also sees the token names, which identify staff.

Reading the access log is itself logged (``endpoint`` ``access-log``), for the officer
as for an auditor. Which staff handled an officer's data is information about that
officer, and an auditor's look at it is one more processing of their data that the
officer has the right to learn of; logging the officer's own reads as well keeps the
rule of the other officer endpoints (every successful read leaves one entry) with no
exception to explain. The entry is appended after the log is read, so an answer never
holds its own read (the next one does) and reading can never feed on itself.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import HTTPException

from ledger.api import auth
from ledger.api.auth import Principal
from ledger.api.deps import Rule, Services
from ledger.domain.errors import LedgerError
from ledger.domain.values import ID_PATTERN, parse_instant
from ledger.ops.metrics import AUTH_FAILURES
from ledger.store.db import Database

READ_ACCESS_LOG = Rule(("officer", "auditor"), "read an officer's access log")
ENDPOINT = "access-log"
MAX_ENTRIES = 1000
# What each logged endpoint read, in words for the officer (an endpoint not listed is shown as it was logged).
_WHAT = {"console:officer": "record, competencies and history (console)"}
# Only a ministry HR token is scoped to a ministry; any other role's token names none.
_MINISTRY_ROLES = ("ministry_hr",)


def check_reader(services: Services, who: Principal, officer_id: str) -> None:
    """Refuse as the other officer endpoints do: 403 outside the roles (before any lookup, so it
    reveals nothing) or for another officer's token, 404 alike for an unknown id and one that
    cannot be an id."""
    READ_ACCESS_LOG.check(who)
    if who.role == "officer" and who.officer_id != officer_id:
        AUTH_FAILURES.labels("forbidden").inc()
        raise HTTPException(403, "an officer token reads only its own officer")
    if ID_PATTERN.fullmatch(officer_id) is None or services.ledger.access(officer_id) is None:
        raise HTTPException(404, f"no officer {officer_id!r} that this token may read")


def entries(db: Database, officer_id: str, names: bool, limit: int = MAX_ENTRIES,
            before: datetime | None = None) -> list[dict[str, Any]]:
    """The officer's access log, newest first: ``at``, ``role``, ``ministry_id``, ``what``
    (and ``token_name`` when ``names``), at most ``limit`` entries, only those before ``before``.

    The reader's ministry is the one its token was created for: token names are unique
    and a token's scope never changes, so the token row still names it after revocation.
    """
    limit = max(1, min(int(limit), MAX_ENTRIES))
    where, params = "a.officer_id = ?", [officer_id]
    if before is not None:
        # Stored instants are UTC isoformat texts, which sort as the instants do.
        where += " AND a.at < ?"
        params.append(before.astimezone(timezone.utc).isoformat())
    with db.reading() as c:
        c.execute("SELECT a.at, a.role, t.ministry_id, a.endpoint, a.token_name FROM access_log a "
                  f"LEFT JOIN api_tokens t ON t.name = a.token_name WHERE {where} "
                  f"ORDER BY a.at DESC LIMIT {limit}", tuple(params))
        rows = c.fetchall()
    found = []
    for at, role, ministry_id, endpoint, token_name in rows:
        entry = {"at": at, "role": role, "ministry_id": ministry_id if role in _MINISTRY_ROLES else None,
                 "what": _WHAT.get(endpoint, endpoint)}
        if names:
            entry["token_name"] = token_name
        found.append(entry)
    return found


def read(services: Services, who: Principal, officer_id: str, limit: int = MAX_ENTRIES,
         before: str | None = None) -> list[dict[str, Any]]:
    """The access log as ``who`` may see it, once ``check_reader`` admitted ``who``; this read
    is logged after it. ``before``: an ISO 8601 instant (422 naming ``before`` otherwise)."""
    try:
        when = None if before is None else parse_instant(before, "before")
    except LedgerError as exc:
        raise HTTPException(422, str(exc)) from None
    db = services.db()
    found = entries(db, officer_id, names=who.role == "auditor", limit=limit, before=when)
    auth.log_access(db, who, officer_id, ENDPOINT)
    return found
