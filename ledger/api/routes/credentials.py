"""Portable credentials: an officer's signed Open Badges / CLR credentials, and the public issuer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from ledger.api import auth
from ledger.api.auth import Principal
from ledger.api.deps import ServicesDep, require_role
from ledger.api.models import ERRORS
from ledger.domain.errors import LedgerError
from ledger.domain.values import ID_PATTERN

if TYPE_CHECKING:
    from ledger.credentials.issuer import Issuer

router = APIRouter(tags=["credentials"])
log = logging.getLogger("ledger.api.credentials")

CredentialReader = Annotated[
    Principal, Depends(require_role("officer", "auditor", action="read an officer's credentials"))
]


@router.get("/officers/{officer_id}/credentials", response_model=list[dict[str, Any]], responses=ERRORS)
def get_credentials(officer_id: str, who: CredentialReader, services: ServicesDep) -> Any:
    """The officer's signed credentials, as `ledger credentials export --officer` writes them.

    One Open Badges 3.0 AchievementCredential per completed course, then the CLR 2.0
    ClrCredential holding them; `[]` for an erased officer (no new credentials) or one
    with no completion. The officer (own) and `auditor` may read them. Issued from the
    event store, so they never lag behind the read models.
    """
    from ledger.credentials.issue import CredentialIssuer

    if who.role == "officer" and who.officer_id != officer_id:
        raise HTTPException(403, "an officer token reads only its own officer")
    found = None
    if ID_PATTERN.fullmatch(officer_id) is not None and services.ledger.access(officer_id) is not None:
        found = CredentialIssuer(services.ledger, _issuer(services)).for_officer(officer_id)
    if found is None:
        raise HTTPException(404, f"no officer {officer_id!r} that this token may read")
    auth.log_access(services.db(), who, officer_id, "credentials")
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
