"""The xAPI Learning Record Store at ``/xapi`` (DOMAIN.md "xAPI statements"): about and statements.

A sub-application of its own, so that every answer under ``/xapi`` (errors included) has the
xAPI's headers and error shape. Writing needs an ``lrs`` token; reading an ``lrs`` token (the
statements it wrote) or an auditor's (all of them).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.api import xapi_documents, xapi_params
from ledger.api.deps import Services
from ledger.api.xapi_body import check_attachments, prepare, read_statements
from ledger.api.xapi_http import (
    READ,
    VERSIONS,
    WRITE,
    XapiError,
    XRequest,
    authenticate,
    error_response,
    read_request,
    response_version,
)
from ledger.xapi import multipart, privacy, query
from ledger.xapi.compat import XapiInvalid, formatted, parse_accept_language
from ledger.xapi.store import Conflict, StatementStore

Handler = Callable[[Request, Services, XRequest], Awaitable[Response]]


def _services(request: Request) -> Services:
    services: Services = request.app.state.parent.state.services
    return services


def _store(request: Request) -> StatementStore:
    state = request.app.state
    if getattr(state, "store", None) is None:
        services = _services(request)
        state.store = StatementStore(services.ledger, services.settings, services.db)
    store: StatementStore = state.store
    return store


def endpoint(handler: Handler, needs_version: bool = True) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        version = response_version(request.headers.get("x-experience-api-version"))
        try:
            if needs_version and "method" not in request.query_params:
                # Who is calling, before a byte of the body is read (up to 16 MiB): a stranger, or a
                # token of a role with no xAPI access, costs no read. The alternate request syntax
                # carries its Authorization in the form itself, so it is checked after reading.
                await authenticate(_services(request), XRequest(request.method, dict(request.headers), {}, b""),
                                   READ)
            xreq = await read_request(request, needs_version)
            version = response_version(xreq.version)
            response = await handler(request, _services(request), xreq)
        except XapiError as exc:
            response = error_response(exc, version)
        except Conflict as exc:
            response = error_response(XapiError(409, str(exc)), version)
        except XapiInvalid as exc:
            response = error_response(XapiError(400, str(exc)), version)
        response.headers["X-Experience-API-Version"] = version
        if request.method in ("GET", "HEAD") or "method=" in request.url.query:
            response.headers.setdefault("X-Experience-API-Consistent-Through", _now())
        return response

    return run


async def about(request: Request, services: Services, xreq: XRequest) -> Response:
    if xreq.method not in ("GET", "HEAD"):
        raise XapiError(405, "about: GET only")
    body = json.dumps({"version": list(VERSIONS), "extensions": {}})
    return Response(body if xreq.method == "GET" else b"", media_type="application/json")


def _json(value: Any, status: int = 200, head: bool = False) -> Response:
    return Response(b"" if head else json.dumps(value, ensure_ascii=False), status_code=status,
                    media_type="application/json")


async def statements(request: Request, services: Services, xreq: XRequest) -> Response:
    if xreq.method in ("PUT", "POST"):
        who = await authenticate(services, xreq, WRITE)
        return await _write(request, services, xreq, who.name)
    if xreq.method in ("GET", "HEAD"):
        who = await authenticate(services, xreq, READ)
        return await _read(request, services, xreq, who.name if who.role == "lrs" else None)
    raise XapiError(405, f"statements: {xreq.method} is not a method of this resource")


def _authority(services: Services, name: str) -> dict[str, Any]:
    return {"objectType": "Agent", "account": {"homePage": f"{services.settings.officer_homepage.rstrip('/')}/xapi/tokens",
                                               "name": name}}


async def _write(request: Request, services: Services, xreq: XRequest, writer: str) -> Response:
    body, attachments = read_statements(xreq)
    authority = _authority(services, writer)
    if xreq.method == "PUT":
        sid = xreq.params.pop("statementId", None)
        if sid is None:
            raise XapiError(400, "statementId: required with PUT")
        if xreq.params:
            raise XapiError(400, f"{sorted(xreq.params)[0]}: not a parameter of PUT statements")
        sid = xapi_params.check_uuid("statementId", sid)
        if not isinstance(body, dict):
            raise XapiError(400, "body: PUT takes one statement")
        if "id" in body and str(body["id"]).lower() != sid:
            raise XapiError(400, "id: differs from the statementId parameter")
        batch = [prepare({**body, "id": body.get("id", sid)}, xreq, authority)]
    else:
        if xreq.params:
            raise XapiError(400, f"{sorted(xreq.params)[0]}: not a parameter of POST statements")
        items = body if isinstance(body, list) else [body]
        if not items:
            raise XapiError(400, "body: an empty array of statements")
        batch = [prepare(stmt, xreq, authority) for stmt in items]
    check_attachments(batch, attachments)
    ids = await anyio.to_thread.run_sync(_store(request).store, batch, writer, attachments)
    if xreq.method == "PUT":
        return Response(status_code=204)
    return _json(ids)


def _unseal(services: Services, store: StatementStore, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    persons: set[str] = set()
    for doc in docs:
        persons |= privacy.persons_in(doc)
    keys = store.keys_for(persons)
    return [privacy.unseal(doc, keys, services.settings.officer_homepage) for doc in docs]


def _now() -> str:
    """The consistent-through instant: every statement is indexed in its own transaction, so now."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _http_date(micros: int) -> str:
    return format_datetime(datetime.fromtimestamp(micros / 1_000_000, timezone.utc), usegmt=True)


async def _read(request: Request, services: Services, xreq: XRequest, writer: str | None) -> Response:
    params = dict(xreq.params)
    xapi_params.check_names(params)
    fmt, with_attachments = xapi_params.common(params)
    languages = parse_accept_language(xreq.headers.get("accept-language"))
    store = _store(request)
    head = xreq.method == "HEAD"
    headers = {"X-Experience-API-Consistent-Through": _now()}
    single = params.get("statementId") or params.get("voidedStatementId")
    if single is not None:
        sid = xapi_params.check_uuid("statementId", single)
        found = await anyio.to_thread.run_sync(query.one, services.db(), sid, "voidedStatementId" in params, writer)
        if found is None:
            raise XapiError(404, f"statement {sid}: not found")
        doc, stored_us = found
        stmt = formatted(_unseal(services, store, [doc])[0], fmt, languages)
        headers["Last-Modified"] = _http_date(stored_us)
        return _result(stmt, [stmt], with_attachments, head, headers, services)
    page = await anyio.to_thread.run_sync(query.find, services.db(), xapi_params.filters(params, writer, "2.0.0" if xreq.is_v2 else "1.0.3"))
    found_statements = [formatted(s, fmt, languages) for s in _unseal(services, store, page.docs)]
    more = ""
    if page.last_seq is not None:
        params["cursor"] = str(page.last_seq)
        more = f"{request.scope.get('root_path', '')}/statements?{urlencode(params)}"
    if page.last_stored_us is not None:
        headers["Last-Modified"] = _http_date(page.last_stored_us)
    result = {"statements": found_statements, "more": more}
    return _result(result, found_statements, with_attachments, head, headers, services)


def _result(value: Any, stmts: list[dict[str, Any]], with_attachments: bool, head: bool,
            headers: dict[str, str], services: Services) -> Response:
    if not with_attachments:
        response = _json(value, head=head)
        response.headers.update(headers)
        return response
    hashes = sorted({str(a.get("sha2", "")).lower() for s in stmts for a in s.get("attachments") or []})
    contents = query.attachments(services.db(), hashes)
    parts = [({"Content-Type": "application/json"}, json.dumps(value, ensure_ascii=False).encode())]
    for sha2, (ctype, content) in contents.items():
        parts.append(({"Content-Type": ctype, "Content-Transfer-Encoding": "binary", "X-Experience-API-Hash": sha2},
                      content))
    body, ctype = multipart.build(parts)
    return Response(b"" if head else body, media_type=ctype, headers=headers)


async def unknown(request: Request, services: Services, xreq: XRequest) -> Response:
    raise XapiError(404, f"{request.url.path}: no such xAPI resource")


def build(parent: Any) -> Starlette:
    """The ``/xapi`` application, reading the services of ``parent`` (the API)."""
    methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]
    app = Starlette(routes=[
        Route("/about", endpoint(about, needs_version=False), methods=methods),
        Route("/statements", endpoint(statements), methods=methods),
        # The document resources, /agents and /activities (ledger.api.xapi_documents).
        *(Route(path, endpoint(handler), methods=methods) for path, handler in xapi_documents.HANDLERS),
        Route("/{rest:path}", endpoint(unknown), methods=methods),
    ])
    app.state.parent = parent
    return app
