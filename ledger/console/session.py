"""The console's sessions and their CSRF tokens.

Signing in with an API token opens a session on the server (``console_sessions``: the
hash of a random session id, the token it was opened for, its expiry and its end); the
cookie holds only the session id (HttpOnly, so no script reads it; SameSite=Strict, so
no other site's page sends it; Secure when the console is served over TLS). Every
request looks the session up with its token in one read: an ended or expired session,
or a revoked token, sends the reviewer back to sign-in at once. Signing out ends the
session on the server, so a copy of the cookie is worthless; the cookie never holds
anything that works as an API token. Sessions live in the store's database, so any
number of ``ledger serve`` workers share them.

CSRF: a signed-in form carries an HMAC of the session id, which a page on another
origin cannot compute (it cannot read the cookie). The sign-in form, before there is a
session, uses a random double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger.api import auth
from ledger.api.auth import Principal
from ledger.api.body import read_body
from ledger.api.deps import Services
from ledger.store.db import Database

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


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")  # one fixed width: compared as text


def open_session(db: Database, token: str) -> str:
    """A new session for ``token`` (already checked); returns its id (shown only in the cookie)."""
    token_id = auth.token_id_of(token)
    if token_id is None:
        raise SignedOut()
    session_id = secrets.token_urlsafe(32)
    now = _now()
    with db.transaction() as c:
        c.execute("DELETE FROM console_sessions WHERE expires_at < ?", (_stamp(now),))  # keep the table small
        c.execute("INSERT INTO console_sessions (session_hash, token_id, created_at, expires_at, ended_at) "
                  "VALUES (?, ?, ?, ?, NULL)",
                  (_hash(session_id), token_id, _stamp(now), _stamp(now + timedelta(seconds=SESSION_SECONDS))))
    return session_id


def session_principal(db: Database, session_id: str) -> Principal | None:
    """The reviewer of a session that is open, unexpired and whose token is not revoked, else None."""
    with db.reading() as c:
        c.execute("SELECT t.name, t.role, t.ministry_id, t.officer_id FROM console_sessions s "
                  "JOIN api_tokens t ON t.token_id = s.token_id WHERE s.session_hash = ? "
                  "AND s.ended_at IS NULL AND s.expires_at > ? AND t.revoked_at IS NULL",
                  (_hash(session_id), _stamp(_now())))
        row = c.fetchone()
    return None if row is None else Principal(row[0], row[1], row[2], row[3])


def end_session(db: Database, session_id: str) -> None:
    with db.transaction() as c:
        c.execute("UPDATE console_sessions SET ended_at = ? WHERE session_hash = ? AND ended_at IS NULL",
                  (_stamp(_now()), _hash(session_id)))


async def start(request: Request, response: Response, services: Services, token: str) -> None:
    """Open a session for ``token`` (already checked) and drop the sign-in's CSRF cookie."""
    session_id = await run_in_threadpool(open_session, services.db(), token)
    set_cookie(request, response, SESSION_COOKIE, session_id, SESSION_SECONDS)
    end_pre_session(request, response)


async def end(request: Request, response: Response, services: Services | None = None) -> None:
    """Sign out: the session ends on the server (when given), and the browser forgets the cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if services is not None and session_id:
        await run_in_threadpool(end_session, services.db(), session_id)
    forget(request, response)


def forget(request: Request, response: Response) -> None:
    """The browser drops the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, secure=is_tls(request), samesite="strict")


def end_pre_session(request: Request, response: Response) -> None:
    response.delete_cookie(PRE_SESSION_COOKIE, path=PATH, httponly=True, secure=is_tls(request),
                           samesite="strict")


async def principal(request: Request, services: Services) -> Principal:
    """The signed-in reviewer: the session's, if it is open and its token still valid."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 100:
        raise SignedOut()
    found = await run_in_threadpool(session_principal, services.db(), session_id)
    if found is None:
        raise SignedOut()
    return found


def csrf_token(request: Request) -> str:
    """The CSRF token for forms of this session ("" without one)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    return hmac.new(session_id.encode(), b"ledger-console-csrf", hashlib.sha256).hexdigest() if session_id else ""


def pre_session_token(request: Request) -> str:
    """The sign-in form's CSRF token: its double-submit cookie ("" without one)."""
    return request.cookies.get(PRE_SESSION_COOKIE) or ""


def new_pre_session() -> str:
    return secrets.token_urlsafe(32)


async def read_form(request: Request, sign_in: bool = False) -> dict[str, str]:
    """A posted form (URL-encoded UTF-8, at most 64 KiB), after its CSRF token was checked (else 403).

    ``sign_in``: the sign-in form, checked against its double-submit cookie (whether or
    not a session is open: a reviewer may sign in again with another token).
    """
    raw = await read_body(request, MAX_FORM)
    try:
        # errors="strict": a percent-escape that is not UTF-8 (a lone surrogate, a stray byte) is
        # refused, never silently replaced with U+FFFD and then recorded.
        fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                encoding="utf-8", errors="strict", max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "form: not a URL-encoded form") from None
    expected = pre_session_token(request) if sign_in else csrf_token(request)
    given = fields.pop("csrf", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise HTTPException(403, "csrf: the form's CSRF token is missing or wrong; reload the page and retry")
    return fields
