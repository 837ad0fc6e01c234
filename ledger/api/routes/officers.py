"""An officer's learning record, competency profile and history, by role and scope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from ledger.api import auth
from ledger.api.deps import Officer, ServicesDep
from ledger.api.models import ERRORS, Competencies, Record
from ledger.domain.errors import LedgerError
from ledger.domain.values import parse_instant

router = APIRouter(prefix="/officers/{officer_id}", tags=["officers"], responses=ERRORS)


@router.get("/record", response_model=Record)
def get_record(officer: Officer, services: ServicesDep, as_of: str | None = None,
               known_at: str | None = None) -> Any:
    """The learning record: now, or folded from the business history as the ledger knew it
    at `known_at` (default now) up to business time `as_of` (default all), ISO 8601 instants."""
    result: dict[str, Any] | None = officer.record
    if as_of is not None or known_at is not None:
        try:
            when = None if as_of is None else parse_instant(as_of, "as_of")
            known = None if known_at is None else parse_instant(known_at, "known_at")
        except LedgerError as exc:
            raise HTTPException(422, str(exc)) from None
        result = services.audit.record(officer.officer_id, when, known)
        if result is None:
            raise HTTPException(404, f"officer {officer.officer_id!r} was not registered as of {as_of}"
                                if known_at is None else
                                f"officer {officer.officer_id!r} was not registered as known at {known_at}")
    auth.log_access(services.db(), officer.reader, officer.officer_id, "record")
    return result


@router.get("/competencies", response_model=Competencies)
def get_competencies(officer: Officer, services: ServicesDep) -> Any:
    """The competency profile against the current post's FRAC needs."""
    profile = services.reads().competency_profile(officer.officer_id)
    if profile is None:
        raise HTTPException(404, f"officer {officer.officer_id!r} is not in the read model")
    auth.log_access(services.db(), officer.reader, officer.officer_id, "competencies")
    return profile


@router.get("/history", response_model=list[dict[str, Any]])
def get_history(officer: Officer, services: ServicesDep) -> Any:
    """The officer's events in order, with business and recorded time."""
    events = services.audit.history(officer.officer_id)
    auth.log_access(services.db(), officer.reader, officer.officer_id, "history")
    return events
