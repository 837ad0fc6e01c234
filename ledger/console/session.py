"""The console's session cookie and its CSRF tokens.

The session cookie holds the API token the reviewer signed in with (HttpOnly, so no
script reads it; SameSite=Strict, so no other site's page sends it; Secure when the
console is served over TLS). Every request authenticates it again through the API's
own token cache, so a revoked token ends the session within the cache's TTL, and
signing out deletes the cookie. Nothing about sessions is kept on the server, so
any number of ``ledger serve`` workers share them.

CSRF: a signed-in form carries an HMAC of the session's token, which a page on
another origin cannot compute (it cannot read the cookie). The sign-in form, before
there is a session, uses a random double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request, Response

from ledger.api.auth import Principal
from ledger.api.body import read_body
from ledger.api.deps import Services, principal_of

SESSION_COOKIE = "ledger_console"
PRE_SESSION_COOKIE = "ledger_console_csrf"
PATH = "/console"
SESSION_SECONDS = 8 * 3600  # a working day; the token's own revocation ends it sooner
MAX_FORM = 64 * 1024


class SignedOut(Exception):
    """No session, or its token is no longer valid: the reviewer signs in again."""


def is_tls(request: Request) -> bool:
    """Whether the page was asked for over TLS (uvicorn ``--ssl-*`` or a trusted proxy)."""
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True,
                        secure=is_tls(request), samesite="strict")


def start(request: Request, response: Response, token: str) -> None:
    """Open the session for ``token`` (already checked) and drop the sign-in's CSRF cookie."""
    set_cookie(request, response, SESSION_COOKIE, token, SESSION_SECONDS)
    end_pre_session(request, response)


def end(request: Request, response: Response) -> None:
    """Sign out: the browser forgets the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, secure=is_tls(request), samesite="strict")


def end_pre_session(request: Request, response: Response) -> None:
    response.delete_cookie(PRE_SESSION_COOKIE, path=PATH, httponly=True, secure=is_tls(request),
                           samesite="strict")


async def principal(request: Request, services: Services) -> Principal:
    """The signed-in reviewer, authenticated as the API authenticates a bearer token."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignedOut()
    try:
        return await principal_of(services, token)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise SignedOut() from None
        raise


def csrf_token(request: Request) -> str:
    """The CSRF token for forms of this session ("" without one)."""
    token = request.cookies.get(SESSION_COOKIE)
    return hmac.new(token.encode(), b"ledger-console-csrf", hashlib.sha256).hexdigest() if token else ""


def pre_session_token(request: Request) -> str:
    """The sign-in form's CSRF token: its double-submit cookie ("" without one)."""
    return request.cookies.get(PRE_SESSION_COOKIE) or ""


def new_pre_session() -> str:
    return secrets.token_urlsafe(32)


async def read_form(request: Request, sign_in: bool = False) -> dict[str, str]:
    """A posted form (URL-encoded, at most 64 KiB), after its CSRF token was checked (else 403).

    ``sign_in``: the sign-in form, checked against its double-submit cookie (whether or
    not a session is open: a reviewer may sign in again with another token).
    """
    raw = await read_body(request, MAX_FORM)
    try:
        fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "form: not a URL-encoded form") from None
    expected = pre_session_token(request) if sign_in else csrf_token(request)
    given = fields.pop("csrf", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise HTTPException(403, "csrf: the form's CSRF token is missing or wrong; reload the page and retry")
    return fields
