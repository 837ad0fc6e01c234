"""POST /commands: the online write path (group commit)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, HTTPException, Request

from ledger.api.body import read_body, safe_text, split_commands
from ledger.api.deps import Ingester, ServicesDep
from ledger.api.models import (
    COMMANDS_SCHEMA,
    ERRORS,
    MAX_COMMANDS,
    CommandResult,
    Error,
    request_body,
)
from ledger.ops.metrics import GROUP_COMMIT_WAIT
from ledger.write.commands import Sender

router = APIRouter(tags=["commands"])


@router.post("/commands", response_model=list[CommandResult], responses={**ERRORS, 503: {"model": Error}},
             summary="Apply one command or an array of commands", openapi_extra=request_body(COMMANDS_SCHEMA))
async def post_commands(request: Request, who: Ingester, services: ServicesDep) -> list[CommandResult]:
    """Each command is answered accepted, duplicate or rejected (with the field named).

    The `command_id` is the idempotency key. The answer comes once the commands are
    durable; concurrent requests share transactions (group commit).
    """
    lines = split_commands(await read_body(request), MAX_COMMANDS)
    submitted = time.perf_counter()
    try:
        outcomes = await asyncio.wrap_future(services.committer.submit(lines, Sender(who.role, who.name)))
    except Exception as exc:
        raise HTTPException(503, f"the event store is unavailable: {type(exc).__name__}") from None
    GROUP_COMMIT_WAIT.observe(time.perf_counter() - submitted)
    return [CommandResult(index=i, status=o.status, error=None if o.error is None else safe_text(o.error))
            for i, o in enumerate(outcomes)]
