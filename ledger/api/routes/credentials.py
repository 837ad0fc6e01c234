"""Portable credentials: an officer's signed Open Badges / CLR credentials, their public status
lists, and the public issuer, served as the issuing worker stored them.

This process holds no private key and signs nothing: ``issued_credentials`` (``ledger issue``,
``ledger project``) signs each credential and status list once and stores it; here the
stored documents are read. When the worker lags the store, what it stored so far is
served, with ``Ledger-Credentials-Through`` (the store log position they were issued
through) and ``Ledger-Credentials-Lag`` (how many events the log holds beyond it).
"""

from __future__ import annotations

import logging
import re
import weakref
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Response

from ledger.api import auth
from ledger.api.auth import Principal
from ledger.api.deps import Services, ServicesDep, require_role
from ledger.api.models import ERRORS
from ledger.domain.values import ID_PATTERN

router = APIRouter(tags=["credentials"])
log = logging.getLogger("ledger.api.credentials")

# A list's number as credentials write it: decimal, no sign, no leading zero.
_LIST_NO = re.compile(r"0|[1-9][0-9]{0,15}")
THROUGH = "Ledger-Credentials-Through"
LAG = "Ledger-Credentials-Lag"
CONCURRENT_READS = 1  # credential reads on a worker thread at once, per process (each ~15-25 ms of CPU)
_READS: weakref.WeakKeyDictionary[Services, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()

CredentialReader = Annotated[
    Principal, Depends(require_role("officer", "auditor", action="read an officer's credentials"))
]


def _json(text: str, through: tuple[int, int]) -> Response:
    """Stored JSON text as it is, with how far the issuing worker has come."""
    return Response(text, media_type="application/json", headers={THROUGH: str(through[0]), LAG: str(through[1])})


def _freshness(services: ServicesDep) -> tuple[int, int]:
    """The log position the stored credentials were issued through, and the events past it."""
    from ledger.credentials.stored import PROJECTION
    from ledger.projections.runner import LOG_SOURCE

    with services.db().reading() as c:
        c.execute("SELECT next_offset FROM ledger_offsets WHERE projection = ? AND source = ? AND part = 0",
                  (PROJECTION, LOG_SOURCE))
        row = c.fetchone()
    through = 0 if row is None else int(row[0]) - 1
    head = int(services.ledger.recorder.max_notification_id() or 0)
    return through, max(head - through, 0)


@router.get("/officers/{officer_id}/credentials", response_model=list[dict[str, Any]], responses=ERRORS)
async def get_credentials(officer_id: str, who: CredentialReader, services: ServicesDep) -> Any:
    """The officer's signed credentials, as the issuing worker stored them.

    One Open Badges 3.0 AchievementCredential per current completion, then the CLR 2.0
    ClrCredential holding them, each with its `credentialStatus` (see
    `/credentials/status/{list_no}`); `[]` for an erased officer (no new credentials) or one
    with no completion. The officer (own) and `auditor` may read them. They are signed once
    by the issuing worker (`ledger issue` or `ledger project`), never here: when it lags,
    the credentials issued so far are served, and the headers `Ledger-Credentials-Through`
    (the store log position they were issued through) and `Ledger-Credentials-Lag` (events
    of the log past it) say how fresh they are.
    """
    if who.role == "officer" and who.officer_id != officer_id:
        raise HTTPException(403, "an officer token reads only its own officer")
    # A few at a time on worker threads: a flood of large reads leaves the rest of the pool,
    # and the interpreter, to every other request.
    return await anyio.to_thread.run_sync(_credentials, officer_id, who, services, limiter=_limiter(services))


def _limiter(services: Services) -> anyio.CapacityLimiter:
    found = _READS.get(services)
    if found is None:
        found = _READS[services] = anyio.CapacityLimiter(CONCURRENT_READS)
    return found


def _credentials(officer_id: str, who: Principal, services: Services) -> Response:
    from ledger.credentials.stored import stored_credential_lines

    access = None
    if ID_PATTERN.fullmatch(officer_id) is not None:
        access = services.ledger.access(officer_id)
    if access is None:
        raise HTTPException(404, f"no officer {officer_id!r} that this token may read")
    through = _freshness(services)
    lines: list[str] = []
    if not access.erased:
        with services.db().reading() as c:
            lines = stored_credential_lines(c, officer_id)
    auth.log_access(services.db(), who, officer_id, "credentials")
    return _json("[" + ",".join(lines) + "]", through)


@router.get("/credentials/status/{list_no}", response_model=dict[str, Any], responses=ERRORS)
def get_status_list(list_no: str, services: ServicesDep) -> Any:
    """A revocation status list, public: the signed W3C BitstringStatusListCredential that
    credentials name in their `credentialStatus.statusListCredential`.

    `encodedList` is `u` + base64url (no padding) of the GZIP of 131,072 bits, bit 0 the
    leftmost bit of the first byte; a set bit is a revoked credential (its completion was
    retracted, or it is a CLR that held one). Same issuer and proof as the credentials;
    `validFrom` is when the list last changed. 404 for a list that holds no credential (or
    none the issuing worker has signed yet). Served as stored, with the freshness headers
    of `/officers/{officer_id}/credentials`.
    """
    from ledger.credentials.stored import stored_list

    found = None
    if _LIST_NO.fullmatch(list_no) is not None:
        with services.db().reading() as c:
            found = stored_list(c, int(list_no))
    if found is None:
        raise HTTPException(404, f"no status list {list_no[:40]!r}")
    return _json(found, _freshness(services))


@router.get("/issuer", response_model=dict[str, Any], responses={503: {"description": "Nothing issued yet"}})
def get_issuer(services: ServicesDep) -> Any:
    """The credentials' issuer, public: its profile, verification method, public key and DID document.

    As the issuing worker stored it: this process holds no key and only reads. Before the
    worker has run (it creates the issuer key where it signs) the answer is 503.
    """
    from ledger.credentials.stored import stored_issuer

    with services.db().reading() as c:
        found = stored_issuer(c)
    if found is None:
        raise HTTPException(503, "the credential issuer has published no key yet: the issuing worker "
                                 "(`ledger issue` or `ledger project`) stores it where credentials are signed")
    return Response(found, media_type="application/json")
