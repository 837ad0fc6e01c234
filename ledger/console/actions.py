"""The console's correction pages: retract events and correct an officer's details (``admin``,
``registrar``), each as form -> confirmation restating what will happen -> outcome.

As on the erasure pages, the role is checked before the form is read (so a token that may not
correct is refused whatever it sends), every form carries the session's CSRF token, and
nothing is sent before the confirmation. What is sent, and how, is ``ledger.console.correcting``.
A rejection is the form again with the ledger's message (422); nothing was recorded.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ledger.api.auth import Principal
from ledger.api.body import safe_text
from ledger.api.deps import ServicesDep
from ledger.console import correcting, session
from ledger.console.correcting import CORRECT, CORRECT_DETAILS, RETRACT, Kind
from ledger.console.pages import guarded, render
from ledger.write.application import DUPLICATE, REJECTED

router = APIRouter()


def _form(request: Request, who: Principal, kind: Kind, values: dict[str, str], error: str | None = None,
          status_code: int = 200) -> Response:
    return render(request, kind.form, status_code, who=who, values=values, error=error,
                  reasons=correcting.REASONS)


async def _show_form(request: Request, services: ServicesDep, kind: Kind) -> Response:
    async def build(who: Principal) -> Response:
        CORRECT.check(who)
        return _form(request, who, kind, kind.values({}))

    return await guarded(request, services, build)


async def _confirm(request: Request, services: ServicesDep, kind: Kind) -> Response:
    """The confirmation step: the command checked, restated, and nothing sent yet."""
    async def build(who: Principal) -> Response:
        CORRECT.check(who)  # before the body is read, as the API does
        values = kind.values(await session.read_form(request))
        try:
            command = correcting.command_of(kind, values)
        except HTTPException as exc:
            return _form(request, who, kind, values, str(exc.detail), exc.status_code)
        return render(request, kind.confirm, who=who, values=values, command=command,
                      command_id=correcting.new_command_id(), reasons=dict(correcting.REASONS))

    return await guarded(request, services, build)


async def _apply(request: Request, services: ServicesDep, kind: Kind) -> Response:
    """The confirmed form: its command through the group committer with the session's sender."""
    async def build(who: Principal) -> Response:
        CORRECT.check(who)
        form = await session.read_form(request)
        if form.get("confirm") != "yes":
            raise HTTPException(422, f"confirm: the {kind.noun} was not confirmed")
        values = kind.values(form)
        try:
            command = correcting.command_of(kind, values, form.get("command_id", ""))
        except HTTPException as exc:
            return _form(request, who, kind, values, str(exc.detail), exc.status_code)
        sent = command  # as the reviewer confirmed it (a correction's registration instant is not shown)
        outcome = await correcting.submit(services, who, await run_in_threadpool(
            correcting.from_registration, services, command))
        if outcome.status == REJECTED:
            return _form(request, who, kind, values, "The ledger rejected this "
                         f"{kind.noun} and recorded nothing: {safe_text(outcome.error or '')}", 422)
        return render(request, "correction_done.html", who=who, kind=kind.name, values=values, command=sent,
                      duplicate=outcome.status == DUPLICATE, reasons=dict(correcting.REASONS))

    return await guarded(request, services, build)


@router.get("/retract")
async def retract_form(request: Request, services: ServicesDep) -> Response:
    return await _show_form(request, services, RETRACT)


@router.post("/retract/confirm")
async def retract_confirm(request: Request, services: ServicesDep) -> Response:
    return await _confirm(request, services, RETRACT)


@router.post("/retract")
async def retract(request: Request, services: ServicesDep) -> Response:
    return await _apply(request, services, RETRACT)


@router.get("/correct")
async def correct_form(request: Request, services: ServicesDep) -> Response:
    return await _show_form(request, services, CORRECT_DETAILS)


@router.post("/correct/confirm")
async def correct_confirm(request: Request, services: ServicesDep) -> Response:
    return await _confirm(request, services, CORRECT_DETAILS)


@router.post("/correct")
async def correct(request: Request, services: ServicesDep) -> Response:
    return await _apply(request, services, CORRECT_DETAILS)
