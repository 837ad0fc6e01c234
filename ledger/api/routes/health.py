"""Liveness (anyone) and the lag and health of relay and projections (auditor, admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ledger.api.deps import ServicesDep, StatusReader
from ledger.api.models import ERRORS, Health

router = APIRouter(tags=["health"])


@router.get("/status", response_model=dict[str, Any], responses=ERRORS)
def get_status(who: StatusReader, services: ServicesDep) -> Any:
    """Lag and health of the relay and projections."""
    from ledger.monitor.status import collect

    return collect(services.ledger, services.settings)


@router.get("/healthz", response_model=Health)
def healthz() -> Any:
    """Liveness: the process answers (no authentication)."""
    return {"ok": True}
