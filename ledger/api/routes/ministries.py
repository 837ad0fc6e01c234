"""A ministry's aggregates, its capacity-building plans and its competency-gap report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ledger.api.deps import CommissionReader, MinistryReader, ServicesDep, check_ministry_scope
from ledger.api.models import ERRORS, Gaps, Ministry, Plan
from ledger.projections.gaps import to_csv

router = APIRouter(tags=["ministries"], responses=ERRORS)


@router.get("/ministries/{ministry_id}", response_model=Ministry)
def get_ministry(ministry_id: str, who: MinistryReader, services: ServicesDep) -> Any:
    """Headcount and per-financial-year aggregates of a ministry."""
    _check_scope(who, ministry_id)
    found = services.reads().ministry(ministry_id)
    if found is None:
        raise HTTPException(404, f"ministry {ministry_id!r} is not in the read model")
    return found


def wants_csv(request: Request) -> bool:
    """Whether the client asked for CSV (``Accept: text/csv``) rather than JSON."""
    return "text/csv" in request.headers.get("accept", "")


_check_scope = check_ministry_scope  # shared with the console (ledger.api.deps)


_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"}
}


@router.get("/ministries/{ministry_id}/plans/{fy}", response_model=Plan)
def get_plan(ministry_id: str, fy: str, who: MinistryReader, services: ServicesDep) -> Any:
    """The ministry's Annual Capacity Building Plan for a financial year, against what happened."""
    _check_scope(who, ministry_id)
    found = services.reads().plan(ministry_id, fy)
    if found is None:
        raise HTTPException(404, f"no capacity-building plan of {ministry_id!r} for {fy!r}")
    return found


@router.get("/ministries/{ministry_id}/gaps", response_model=Gaps, responses=_CSV)
def get_gaps(ministry_id: str, request: Request, who: MinistryReader, services: ServicesDep) -> Any:
    """The ministry's competency-gap report (what its HR cell sends the Commission)."""
    _check_scope(who, ministry_id)
    found = services.reads().gap_report(ministry_id)
    if found is None:
        raise HTTPException(404, f"ministry {ministry_id!r} is not in the read model")
    if wants_csv(request):
        return Response(to_csv([found]), media_type="text/csv")
    return found


@router.get("/gaps", response_model=list[Gaps], responses=_CSV)
def get_all_gaps(request: Request, who: CommissionReader, services: ServicesDep) -> Any:
    """Every ministry's competency-gap report (the Commission's view)."""
    reports = services.reads().gap_reports()
    if wants_csv(request):
        return Response(to_csv(reports), media_type="text/csv")
    return reports
