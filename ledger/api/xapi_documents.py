"""The xAPI document resources at ``/xapi``: state, activity profile, agent profile, agents, activities.

xAPI 1.0.3 Communication 2.2-2.7 and 3.1; IEEE 9274.1.1-2023 4.1.4 and 4.1.6.2-4.1.6.6. The
handlers run inside ``routes/xapi.py``'s ``endpoint`` (versions, xAPI errors); storage is
:mod:`ledger.xapi.documents` and :mod:`ledger.xapi.lookup`. Writing needs an ``lrs`` token
(each token has documents of its own); reading an ``lrs`` token (its own) or an auditor's (all).

Concurrency: ``If-Match`` / ``If-None-Match`` are honoured on every PUT, POST and DELETE of a
document (412 when they fail). A PUT without either header to an existing profile is a 409,
and to a new profile a 400 (a client MUST send one, 1.0.3 Communication 3.1); under 2.0.0
(IEEE 9274.1.1 4.1.4, which adds the State Resource) a PUT without either to an existing
state document is a 409 too, where 1.0.3 lets it replace the document.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from ledger.api.deps import Services
from ledger.api.xapi_http import READ, WRITE, XapiError, XRequest, authenticate, parse_json_body
from ledger.api.xapi_params import check_uuid, instant_us
from ledger.xapi import agents, documents, lookup, privacy
from ledger.xapi.checks import iri
from ledger.xapi.compat import agent_key
from ledger.xapi.documents import Conditions, Document, DocumentStore, Refused, Scope
from ledger.xapi.params import id_param
from ledger.xapi.store import StatementStore

Handler = Callable[[Request, Services, XRequest], Awaitable[Response]]
_READS = ("GET", "HEAD")
_WRITES = ("PUT", "POST", "DELETE")
# The parameters that key a document: each fits the database's index rows (PostgreSQL's B-tree
# takes about 2,700 bytes a row) with room for the others.
_KEYS = ("activityId", "stateId", "profileId")
MAX_KEY_BYTES = 1024


def _documents(request: Request, services: Services) -> DocumentStore:
    state = request.app.state
    if getattr(state, "documents", None) is None:
        state.documents = DocumentStore(services.ledger, services.settings.officer_homepage, services.db)
    store: DocumentStore = state.documents
    return store


def _http_date(micros: int) -> str:
    return format_datetime(datetime.fromtimestamp(micros / 1_000_000, timezone.utc), usegmt=True)


def _params(xreq: XRequest, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, str]:
    params = dict(xreq.params)
    unknown = sorted(set(params) - set(required) - set(optional))
    if unknown:
        raise XapiError(400, f"{unknown[0]}: not a parameter of {xreq.method} on this resource")
    for name in required:
        if name not in params:
            raise XapiError(400, f"{name}: required with {xreq.method} on this resource")
    for name, value in params.items():
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            raise XapiError(400, f"{name}: holds NUL or a lone surrogate")
        if name in _KEYS and len(value.encode("utf-8")) > MAX_KEY_BYTES:
            raise XapiError(400, f"{name}: longer than {MAX_KEY_BYTES} bytes")
    return params


def _agent(value: str) -> dict[str, Any]:
    """The ``agent`` parameter: JSON, an Agent or identified Group, else 400."""
    try:
        parsed = parse_json_body(value.encode("utf-8", "surrogatepass"))
    except XapiError as exc:
        raise XapiError(400, "agent: " + exc.message.removeprefix("body: ")) from None
    agents.actor(parsed, "agent")  # XapiInvalid: 400 with the property path
    if agent_key(parsed) is None:
        raise XapiError(400, "agent: an Agent or an identified Group (one inverse functional identifier)")
    assert isinstance(parsed, dict)
    return parsed


def _activity_id(value: str) -> str:
    iri(value, "activityId")
    return value


def _since(params: dict[str, str], version: str) -> int | None:
    return instant_us("since", params["since"], version) if "since" in params else None


def _doc_id(params: dict[str, str], name: str) -> str | None:
    return id_param(name, params[name]) if name in params else None


async def _who(services: Services, xreq: XRequest) -> str | None:
    """The writer whose documents the request sees (None: an auditor, every writer's)."""
    if xreq.method in _WRITES:
        return (await authenticate(services, xreq, WRITE)).name
    if xreq.method in _READS:
        who = await authenticate(services, xreq, READ)
        return who.name if who.role == "lrs" else None
    raise XapiError(405, f"{xreq.method}: not a method of this resource")


def _document_response(doc: Document | None, head: bool) -> Response:
    if doc is None:
        raise XapiError(404, "no such document")
    return Response(b"" if head else doc.content, headers={"Content-Type": doc.content_type, "ETag": doc.etag,
                                                             "Last-Modified": _http_date(doc.updated_us)})


def _ids_response(found: tuple[list[str], int | None], head: bool) -> Response:
    ids, last = found
    response = Response(b"" if head else json.dumps(ids, ensure_ascii=False), media_type="application/json")
    if last is not None:
        response.headers["Last-Modified"] = _http_date(last)
    return response


def _body(xreq: XRequest) -> tuple[bytes, str, Any]:
    """The document sent: its bytes, Content-Type and (JSON) value; JSON must parse, and a POST's
    JSON must be an object (a POST merges objects)."""
    content_type = xreq.headers.get("content-type") or "application/octet-stream"
    value: Any = None
    if documents.is_json_type(content_type):
        value = parse_json_body(xreq.body)
        try:  # a lone surrogate (an escape JSON's grammar allows) is no Unicode text
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise XapiError(400, "body: a string holds a lone surrogate (not Unicode text)") from None
        if xreq.method == "POST" and not isinstance(value, dict):
            raise XapiError(400, "body: a POST of JSON sends a JSON object (it is merged into the document)")
    return xreq.body, content_type, value


def _conditions(xreq: XRequest, kind: str) -> Conditions:
    profile = kind != documents.STATE
    return Conditions(if_match=xreq.headers.get("if-match"), if_none_match=xreq.headers.get("if-none-match"),
                      existing_needs_header=profile or xreq.is_v2, new_needs_header=profile)


async def _serve(request: Request, services: Services, xreq: XRequest, scope: Scope, doc_id: str | None,
                 writer: str | None, since: int | None) -> Response:
    store = _documents(request, services)
    try:
        if xreq.method in _READS:
            head = xreq.method == "HEAD"
            if doc_id is not None:
                return _document_response(await anyio.to_thread.run_sync(store.get, scope, doc_id, writer), head)
            return _ids_response(await anyio.to_thread.run_sync(store.ids, scope, writer, since), head)
        assert writer is not None
        conditions = _conditions(xreq, scope.kind)
        if xreq.method == "DELETE":
            await anyio.to_thread.run_sync(store.delete, scope, doc_id, writer, conditions)
            return Response(status_code=204)
        content, content_type, value = _body(xreq)
        assert doc_id is not None
        await anyio.to_thread.run_sync(lambda: store.write(scope, doc_id, writer, xreq.method, content, content_type,
                                                           value, conditions))
        return Response(status_code=204)
    except Refused as exc:
        raise XapiError(exc.status, exc.message) from None


async def state(request: Request, services: Services, xreq: XRequest) -> Response:
    writer = await _who(services, xreq)
    if xreq.method in ("PUT", "POST"):
        params = _params(xreq, ("activityId", "agent", "stateId"), ("registration",))
    else:
        params = _params(xreq, ("activityId", "agent"), ("registration", "stateId",
                                                         *(("since",) if xreq.method in _READS else ())))
    registration = check_uuid("registration", params["registration"]) if "registration" in params else ""
    scope = Scope(documents.STATE, _activity_id(params["activityId"]), _agent(params["agent"]), registration)
    return await _serve(request, services, xreq, scope, _doc_id(params, "stateId"), writer, _since(params, xreq.version))


async def activity_profile(request: Request, services: Services, xreq: XRequest) -> Response:
    writer = await _who(services, xreq)
    if xreq.method in _READS:
        params = _params(xreq, ("activityId",), ("profileId", "since"))
    else:
        params = _params(xreq, ("activityId", "profileId"), ())
    scope = Scope(documents.ACTIVITY_PROFILE, _activity_id(params["activityId"]))
    return await _serve(request, services, xreq, scope, _doc_id(params, "profileId"), writer, _since(params, xreq.version))


async def agent_profile(request: Request, services: Services, xreq: XRequest) -> Response:
    writer = await _who(services, xreq)
    if xreq.method in _READS:
        params = _params(xreq, ("agent",), ("profileId", "since"))
    else:
        params = _params(xreq, ("agent", "profileId"), ())
    scope = Scope(documents.AGENT_PROFILE, agent=_agent(params["agent"]))
    return await _serve(request, services, xreq, scope, _doc_id(params, "profileId"), writer, _since(params, xreq.version))


def _json(value: Any, head: bool) -> Response:
    return Response(b"" if head else json.dumps(value, ensure_ascii=False), media_type="application/json")


async def agents_resource(request: Request, services: Services, xreq: XRequest) -> Response:
    if xreq.method not in _READS:
        raise XapiError(405, f"agents: {xreq.method} is not a method of this resource")
    writer = await _who(services, xreq)
    agent = _agent(_params(xreq, ("agent",), ())["agent"])
    statements = StatementStore(services.ledger, services.settings, services.db)

    def unseal(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = statements.keys_for(set().union(*(privacy.persons_in(d) for d in docs)) if docs else set())
        return [privacy.unseal(d, keys, services.settings.officer_homepage) for d in docs]

    found = await anyio.to_thread.run_sync(lambda: lookup.person(services.db(), agent, writer, unseal))
    return _json(found, xreq.method == "HEAD")


async def activities_resource(request: Request, services: Services, xreq: XRequest) -> Response:
    if xreq.method not in _READS:
        raise XapiError(405, f"activities: {xreq.method} is not a method of this resource")
    writer = await _who(services, xreq)
    activity_id = _activity_id(_params(xreq, ("activityId",), ())["activityId"])
    found = await anyio.to_thread.run_sync(lambda: lookup.activity(services.db(), activity_id, writer))
    return _json(found, xreq.method == "HEAD")


# The routes ``routes/xapi.py`` adds to the ``/xapi`` application, each wrapped in its ``endpoint``.
HANDLERS: list[tuple[str, Handler]] = [
    ("/activities/state", state),
    ("/activities/profile", activity_profile),
    ("/agents/profile", agent_profile),
    ("/agents", agents_resource),
    ("/activities", activities_resource),
]
