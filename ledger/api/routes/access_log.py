"""An officer's access log: who read their personal data (DPDP Act 2023, s. 11)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ledger.api import access
from ledger.api.auth import Principal
from ledger.api.deps import ServicesDep, requires
from ledger.api.models import ERRORS, AccessEntry

router = APIRouter(prefix="/officers/{officer_id}", tags=["officers"], responses=ERRORS)


def log_reader(officer_id: str, who: Annotated[Principal, Depends(requires(access.READ_ACCESS_LOG))],
               services: ServicesDep) -> Principal:
    """The caller if it may read this officer's access log (a dependency: decided before the query is read)."""
    access.check_reader(services, who, officer_id)
    return who


@router.get("/access-log", response_model=list[AccessEntry], response_model_exclude_unset=True)
def get_access_log(
    officer_id: str,
    who: Annotated[Principal, Depends(log_reader)],
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=access.MAX_ENTRIES, description="At most this many entries")] = 200,
    before: Annotated[str | None, Query(description="Only entries before this ISO 8601 instant "
                                                    "(the `at` of the last entry of the previous page)")] = None,
) -> Any:
    """Who read the officer's personal data, newest first: `at`, `role`, the reader's `ministry_id`
    (null for a role without one) and `what` was read. For the officer themself (an `officer`
    token of this id) and `auditor`s; only an auditor's answer also names each reader's token
    (`token_name`, a staff identity). Every other role is refused as on the other officer
    endpoints (403; another officer's id 403; 404 alike for an unknown id and an invalid one).
    This read is logged too (`what`: `access-log`), after the answer is taken."""
    return access.read(services, who, officer_id, limit, before)
