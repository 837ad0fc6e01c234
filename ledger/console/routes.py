"""The console's pages under /console: sign-in, officer, ministry, integrity, erasure
(retraction and detail correction: ``ledger.console.actions``).

Every page authenticates the session's token and authorizes through the API's own
rules (``ledger.console.views``); a refusal is shown with the API's status code and
message. Blocking reads run on the thread pool, as the API's sync routes do.
"""

from __future__ import annotations

import re
from importlib import resources
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger.api.auth import Principal
from ledger.api.deps import ADMINISTER, ServicesDep, principal_of
from ledger.console import actions, session, views
from ledger.console.pages import HEADERS, guarded, page, render
from ledger.console.session import SignedOut

router = APIRouter(prefix="/console", include_in_schema=False)

STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
_NEXT = re.compile(r"/console(/[A-Za-z0-9._:/?=&%+-]*)?")
_DOTS = re.compile(r"\.\.|//|%2e|%2f", re.IGNORECASE)  # no way out of /console, however it is spelled


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's own assets (shipped in the package; no CDN)."""
    if name not in STATIC:
        raise HTTPException(404, "no such asset")
    body = resources.files("ledger.console").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300",
                                                            "X-Content-Type-Options": "nosniff"})


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "") -> Response:
    token = session.pre_session_token(request) or session.new_pre_session()
    response = render(request, "sign_in.html", csrf=token, next=next, error=None)
    session.set_cookie(request, response, session.PRE_SESSION_COOKIE, token, 3600)
    return response


@router.post("/sign-in")
async def sign_in(request: Request, services: ServicesDep) -> Response:
    """Check the API token; open the session cookie for it."""
    try:
        form = await session.read_form(request, sign_in=True)
    except HTTPException as exc:
        return render(request, "error.html", exc.status_code, error=exc.detail)
    token = form.get("token", "").strip()
    target = form.get("next", "")
    try:
        await principal_of(services, token)
    except HTTPException as exc:
        return render(request, "sign_in.html", exc.status_code, csrf=session.pre_session_token(request),
                      next=target, error="That token is not valid, or it was revoked.")
    response = RedirectResponse(target if _NEXT.fullmatch(target) and not _DOTS.search(target) else "/console",
                                status_code=303)
    await session.start(request, response, services, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, services: ServicesDep) -> Response:
    """End the session (the form carries the CSRF token, so no other site can sign a reviewer out)."""
    try:
        await session.read_form(request)
    except HTTPException as exc:
        return render(request, "error.html", exc.status_code, error=exc.detail)
    response = RedirectResponse("/console/sign-in", status_code=303)
    await session.end(request, response, services)
    return response


@router.get("")
async def home(request: Request, services: ServicesDep) -> Response:
    async def build(who: Principal) -> Response:
        return render(request, "home.html", who=who)

    return await guarded(request, services, build)


@router.get("/officer")
async def find_officer(request: Request, officer_id: str = "") -> Response:
    """The home page's officer form: on to that officer's page."""
    return RedirectResponse(f"/console/officers/{quote(officer_id.strip(), safe='')}", status_code=303)


@router.get("/ministry")
async def find_ministry(request: Request, ministry_id: str = "") -> Response:
    return RedirectResponse(f"/console/ministries/{quote(ministry_id.strip(), safe='')}", status_code=303)


@router.get("/officers/{officer_id}")
async def officer(request: Request, officer_id: str, services: ServicesDep, as_of: str = "",
                  compare: str = "", known_at: str = "") -> Response:
    """The officer page (the API's officer rule: the officer, HR of its ministry, auditor)."""
    return await page(request, services, "officer.html", views.officer_page, officer_id, as_of, compare,
                      known_at)


@router.get("/ministries/{ministry_id}")
async def ministry(request: Request, ministry_id: str, services: ServicesDep) -> Response:
    return await page(request, services, "ministry.html", views.ministry_page, ministry_id)


@router.get("/ministries/{ministry_id}/gaps.csv")
async def ministry_gaps_csv(request: Request, ministry_id: str, services: ServicesDep) -> Response:
    async def build(who: Principal) -> Response:
        body = await run_in_threadpool(views.gaps_csv, services, who, ministry_id)
        return Response(body, media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="gaps-{ministry_id}.csv"', "Cache-Control": "no-store"})

    return await guarded(request, services, build)


@router.get("/integrity")
async def integrity(request: Request, services: ServicesDep) -> Response:
    return await page(request, services, "integrity.html", views.integrity_page)


@router.post("/integrity/verify")
async def integrity_verify(request: Request, services: ServicesDep) -> Response:
    """Ask for a fresh verification (at most one runs at a time; the page shows the latest)."""
    async def build(who: Principal) -> Response:
        views.VERIFY.check(who)  # before the body is read, as every form
        await session.read_form(request)
        await run_in_threadpool(views.request_verification, services, who)
        return RedirectResponse("/console/integrity", status_code=303)

    return await guarded(request, services, build)


@router.get("/integrity/status")
async def integrity_status(request: Request, services: ServicesDep) -> Response:
    """The status fragment the integrity page refreshes itself with (GET /status's rule)."""
    try:
        who = await session.principal(request, services)
    except SignedOut:
        return HTMLResponse("signed out", status_code=401, headers=HEADERS)
    try:
        fragment = await run_in_threadpool(views.status_fragment, services, who)
    except HTTPException as exc:
        return HTMLResponse(f"{exc.status_code}", status_code=exc.status_code, headers=HEADERS)
    return render(request, "status.html", who=who, status=fragment)


@router.get("/erase")
async def erase_form(request: Request, services: ServicesDep) -> Response:
    async def build(who: Principal) -> Response:
        ADMINISTER.check(who)
        return render(request, "erase.html", who=who, officer_id="", reason="", ticket="",
                      reasons=views.ERASURE_CHOICES)

    return await guarded(request, services, build)


@router.post("/erase/confirm")
async def erase_confirm(request: Request, services: ServicesDep) -> Response:
    """The confirmation step: names the consequences before anything is destroyed."""
    async def build(who: Principal) -> Response:
        ADMINISTER.check(who)  # before the body is read, as the API does
        form = await session.read_form(request)
        officer_id, reason, ticket = (form.get("officer_id", "").strip(), form.get("reason", ""),
                                      form.get("ticket", "").strip())
        views.erase_check(who, officer_id, reason, ticket)
        return render(request, "erase_confirm.html", who=who, officer_id=officer_id, reason=reason,
                      ticket=ticket, label=dict(views.ERASURE_CHOICES)[reason])

    return await guarded(request, services, build)


@router.post("/erase")
async def erase(request: Request, services: ServicesDep) -> Response:
    async def build(who: Principal) -> Response:
        ADMINISTER.check(who)
        form = await session.read_form(request)
        if form.get("confirm") != "yes":
            raise HTTPException(422, "confirm: the erasure was not confirmed")
        outcome = await run_in_threadpool(views.erase, services, who, form.get("officer_id", "").strip(),
                                          form.get("reason", ""), form.get("ticket", "").strip())
        return render(request, "erase_done.html", who=who, outcome=outcome)

    return await guarded(request, services, build)


router.include_router(actions.router)  # /console/retract and /console/correct
