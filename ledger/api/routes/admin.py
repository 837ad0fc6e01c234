"""Administration: DPDP erasure and API tokens (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ledger.api import auth
from ledger.api.body import read_model
from ledger.api.deps import Admin, Services, ServicesDep, apply_erasure
from ledger.api.models import (
    ERRORS,
    Erased,
    EraseRequest,
    Error,
    Health,
    NewToken,
    TokenRequest,
    request_body,
)
from ledger.domain.errors import AlreadyExists, LedgerError
from ledger.domain.values import unsafe_character

router = APIRouter(tags=["admin"], responses=ERRORS)

# The bodies are read in the route, after the Admin dependency has authorized the
# caller; the blocking work then runs on the thread pool, as a sync route would.


@router.post("/officers/{officer_id}/erase", response_model=Erased, openapi_extra=request_body(EraseRequest))
async def erase_officer(officer_id: str, request: Request, who: Admin, services: ServicesDep) -> Any:
    """DPDP erasure: destroy the officer's data key and record OfficerErased with the reason, a code
    (`data_principal_request`, `purpose_served`, `legal_order` or `other`), and an optional `ticket` id.
    Anything else in the body is 422 naming the field, and nothing is erased."""
    body = await read_model(request, EraseRequest)
    return await run_in_threadpool(apply_erasure, services, officer_id, body.reason, body.ticket)


@router.post("/tokens", response_model=NewToken, openapi_extra=request_body(TokenRequest),
             responses={409: {"model": Error, "description": "A token by that name exists"}})
async def post_token(request: Request, who: Admin, services: ServicesDep) -> Any:
    """Create a token (shown once in this response)."""
    body = await read_model(request, TokenRequest)
    return await run_in_threadpool(_create_token, services, body)


def _create_token(services: Services, body: TokenRequest) -> dict[str, Any]:
    try:
        token = auth.create_token(services.db(), body.name, body.role, body.ministry_id, body.officer_id)
    except AlreadyExists:  # also when a simultaneous request took the name first
        raise HTTPException(409, f"name: a token named {body.name!r} already exists") from None
    except LedgerError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"name": body.name, "role": body.role, "token": token}


@router.delete("/tokens/{name}", response_model=Health)
def delete_token(name: str, who: Admin, services: ServicesDep) -> Any:
    """Revoke a token by name."""
    if len(name) > 100 or unsafe_character(name):  # no token can be named so
        raise HTTPException(404, f"NAME: no token named {name!r}")
    try:
        auth.revoke_token(services.db(), name)
    except LedgerError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"ok": True}
