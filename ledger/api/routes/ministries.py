"""A ministry's headcount and per-financial-year aggregates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from ledger.api.deps import MinistryReader, ServicesDep
from ledger.api.models import ERRORS, Ministry
from ledger.domain.values import ID_PATTERN

router = APIRouter(tags=["ministries"], responses=ERRORS)


@router.get("/ministries/{ministry_id}", response_model=Ministry)
def get_ministry(ministry_id: str, who: MinistryReader, services: ServicesDep) -> Any:
    """Headcount and per-financial-year aggregates of a ministry."""
    if who.role == "ministry_hr" and who.ministry_id != ministry_id:
        raise HTTPException(403, f"a ministry_hr token reads only ministry {who.ministry_id}")
    if ID_PATTERN.fullmatch(ministry_id) is None:
        raise HTTPException(422, f"ministry_id: {ministry_id!r} is not a valid id")
    found = services.reads().ministry(ministry_id)
    if found is None:
        raise HTTPException(404, f"ministry {ministry_id!r} is not in the read model")
    return found
