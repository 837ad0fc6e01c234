"""Portable credentials: an officer's signed Open Badges / CLR credentials, their public status
lists, and the public issuer."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from ledger.api import auth
from ledger.api.auth import Principal
from ledger.api.deps import ServicesDep, require_role
from ledger.api.models import ERRORS
from ledger.domain.errors import LedgerError
from ledger.domain.values import ID_PATTERN

if TYPE_CHECKING:
    from ledger.credentials.issue import CredentialIssuer
    from ledger.credentials.issuer import Issuer

router = APIRouter(tags=["credentials"])
log = logging.getLogger("ledger.api.credentials")

# A list's number as credentials write it: decimal, no sign, no leading zero.
_LIST_NO = re.compile(r"0|[1-9][0-9]{0,15}")

CredentialReader = Annotated[
    Principal, Depends(require_role("officer", "auditor", action="read an officer's credentials"))
]


@router.get("/officers/{officer_id}/credentials", response_model=list[dict[str, Any]], responses=ERRORS)
def get_credentials(officer_id: str, who: CredentialReader, services: ServicesDep) -> Any:
    """The officer's signed credentials, as `ledger credentials export --officer` writes them.

    One Open Badges 3.0 AchievementCredential per current completion, then the CLR 2.0
    ClrCredential holding them, each with its `credentialStatus` (see
    `/credentials/status/{list_no}`); `[]` for an erased officer (no new credentials) or one
    with no completion. The officer (own) and `auditor` may read them. Issued from the
    event store, so they never lag behind the read models.
    """
    if who.role == "officer" and who.officer_id != officer_id:
        raise HTTPException(403, "an officer token reads only its own officer")
    found = None
    if ID_PATTERN.fullmatch(officer_id) is not None and services.ledger.access(officer_id) is not None:
        found = _credentials(services).for_officer(officer_id)
    if found is None:
        raise HTTPException(404, f"no officer {officer_id!r} that this token may read")
    auth.log_access(services.db(), who, officer_id, "credentials")
    return found


@router.get("/credentials/status/{list_no}", response_model=dict[str, Any], responses=ERRORS)
def get_status_list(list_no: str, services: ServicesDep) -> Any:
    """A revocation status list, public: the signed W3C BitstringStatusListCredential that
    credentials name in their `credentialStatus.statusListCredential`.

    `encodedList` is `u` + base64url (no padding) of the GZIP of 131,072 bits, bit 0 the
    leftmost bit of the first byte; a set bit is a revoked credential (its completion was
    retracted, or it is a CLR that held one). Same issuer and proof as the credentials;
    `validFrom` is when the list last changed. 404 for a list that holds no credential.
    """
    found = None
    if _LIST_NO.fullmatch(list_no) is not None:
        found = _credentials(services).status_list(int(list_no))
    if found is None:
        raise HTTPException(404, f"no status list {list_no[:40]!r}")
    return found


@router.get("/issuer", response_model=dict[str, Any], responses={503: {"description": "No issuer key yet"}})
def get_issuer(services: ServicesDep) -> Any:
    """The credentials' issuer, public: its profile, verification method, public key and DID document.

    Only reads: before the issuer key exists (`ledger credentials export` creates it on
    first use) the answer is 503 and nothing is created.
    """
    from ledger.credentials.issuer import existing

    try:
        issuer = existing(services.settings)
    except LedgerError as exc:
        log.error("credential issuer unavailable: %s", exc)
        raise HTTPException(503, "the credential issuer is not available") from None
    if issuer is None:
        raise HTTPException(503, "the credential issuer has no key yet: it is created where credentials are "
                                 "signed (`ledger credentials export`), never by this endpoint")
    return issuer.public_view()


def _issuer(services: ServicesDep) -> Issuer:
    """The configured issuer, or 503 when its key file cannot be read or created (the path stays private)."""
    from ledger.credentials.issuer import for_settings

    try:
        return for_settings(services.settings)
    except LedgerError as exc:
        log.error("credential issuer unavailable: %s", exc)
        raise HTTPException(503, "the credential issuer is not available") from None


def _credentials(services: ServicesDep) -> CredentialIssuer:
    """Issuing from this thread's store handles, or 503 when misconfigured (key file, LEDGER_PUBLIC_URL)."""
    from ledger.credentials.issue import CredentialIssuer

    issuer = _issuer(services)
    try:
        return CredentialIssuer(services.ledger, issuer, services.db())
    except LedgerError as exc:
        log.error("credentials unavailable: %s", exc)
        raise HTTPException(503, "the credential issuer is not available") from None
