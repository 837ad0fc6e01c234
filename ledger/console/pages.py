"""How every console page is answered: rendered from its template, guarded by the session.

``guarded`` signs the reviewer in again when there is no valid session and shows a
refusal (an ``HTTPException`` from the API's own rules) with its status and message;
``page`` runs a blocking view on the thread pool and renders what it returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool

from ledger.api.auth import Principal
from ledger.console import session
from ledger.console.session import SignedOut

_env = Environment(loader=PackageLoader("ledger.console", "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["path"] = lambda value: quote(str(value), safe="")

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Build = Callable[[Principal], Awaitable[Response]]


def render(request: Request, name: str, status_code: int = 200, who: Principal | None = None,
           csrf: str | None = None, **context: Any) -> HTMLResponse:
    """A page of the console, every value escaped by the template engine (``csrf``: the session's by default)."""
    csrf = session.csrf_token(request) if csrf is None else csrf
    html = _env.get_template(name).render(who=who, csrf=csrf, status_code=status_code, **context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def _sign_in_again(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/console/sign-in?next={quote(target, safe='')}", status_code=303)
    session.forget(request, response)
    return response


async def guarded(request: Request, services: Any, build: Build) -> Response:
    """``build``'s page for the signed-in reviewer; sign-in when there is none; refusals as the API's."""
    try:
        who = await session.principal(request, services)
    except SignedOut:
        return _sign_in_again(request)
    except HTTPException as exc:
        return render(request, "error.html", exc.status_code, error=exc.detail)
    try:
        return await build(who)
    except HTTPException as exc:
        return render(request, "error.html", exc.status_code, who=who, error=exc.detail)


async def page(request: Request, services: Any, template: str, view: Callable[..., dict[str, Any]],
               *args: Any) -> Response:
    """``template`` filled with what ``view(services, who, *args)`` returns (on the thread pool), guarded."""
    async def build(who: Principal) -> Response:
        found = await run_in_threadpool(view, services, who, *args)
        return render(request, template, who=who, **found)

    return await guarded(request, services, build)
