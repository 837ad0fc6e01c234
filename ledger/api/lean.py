"""``POST /commands`` and ``GET /healthz`` without the framework: plain ASGI in front of the FastAPI app.

The online write path answers thousands of requests a second, so it skips what
FastAPI does for every route: routing through the whole route table, dependency
solving, validation of a body the strict command parser reads anyway, and response
models. What it keeps is the same as the declared route's (``routes.commands``, which
stays in the OpenAPI document and answers when this path is not taken):

- authentication first: the bearer token from ``TokenCache`` (a cached token costs no
  query; a lookup runs on a worker thread, never on the loop), 401 without a valid
  token, 403 for a role that may not send commands, before any byte of the body is read;
- the body read with the same limit (413 as soon as it is known to be too large, also
  chunked) and split by the same strict splitter (``body.split_commands``);
- each command judged by the group committer with the sender's role (``Sender``);
- the same answers and status codes, the errors as ``{"detail": ...}``, serialised by orjson;
- request ids and HTTP metrics, by wrapping this handler in ``observe.Observe``.

``GET /healthz`` (liveness, no token) is answered here too, with the same body as its
declared route: a probe that runs every second should cost the server next to nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from starlette.exceptions import HTTPException

from ledger.api.body import MAX_BODY, safe_text, split_commands, too_large
from ledger.api.deps import SEND_COMMANDS, principal_of
from ledger.api.models import MAX_COMMANDS
from ledger.ops.metrics import AUTH_FAILURES, GROUP_COMMIT_WAIT
from ledger.write.commands import Sender

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from ledger.api.deps import Services

_JSON = (b"content-type", b"application/json")
_ALIVE = b'{"ok":true}'


class Template:
    """What ``Observe`` labels a request with: the route's template (here, its path)."""

    def __init__(self, path: str) -> None:
        self.path = path


COMMANDS = Template("/commands")
HEALTHZ = Template("/healthz")


def lean_path(scope: Scope) -> str | None:
    """``"/commands"`` for ``POST /commands``, ``"/healthz"`` for ``GET /healthz``: the requests answered here."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    method = scope["method"]
    if (method == "POST" and path == "/commands") or (method == "GET" and path == "/healthz"):
        return path
    return None


async def get_healthz(scope: Scope, receive: Receive, send: Send) -> None:
    """Liveness: the process answers (no authentication)."""
    scope["route"] = HEALTHZ
    await _respond(send, 200, _ALIVE)


async def post_commands(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ``POST /commands`` (an ASGI app; the services are the FastAPI app's)."""
    scope["route"] = COMMANDS
    services: Services = scope["app"].state.services
    try:
        who = await principal_of(services, _bearer(scope))
        SEND_COMMANDS.check(who)
        lines = split_commands(await _read_body(scope, receive), MAX_COMMANDS)
        submitted = time.perf_counter()
        try:
            outcomes = await services.committer.submit_async(lines, Sender(who.role, who.name))
        except Exception as exc:
            raise HTTPException(503, f"the event store is unavailable: {type(exc).__name__}") from None
        GROUP_COMMIT_WAIT.observe(time.perf_counter() - submitted)
    except HTTPException as exc:
        await _error(send, exc)
        return
    answer = [{"index": i, "status": o.status, "error": None if o.error is None else safe_text(o.error)}
              for i, o in enumerate(outcomes)]
    await _respond(send, 200, orjson.dumps(answer))


def _bearer(scope: Scope) -> str:
    """The bearer token of the first Authorization header (401 without one), as FastAPI's HTTPBearer reads it."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").partition(" ")
            credentials = credentials.strip()
            if scheme and credentials and scheme.lower() == "bearer":
                return credentials
            break
    AUTH_FAILURES.labels("missing").inc()
    raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})


async def _read_body(scope: Scope, receive: Receive, limit: int = MAX_BODY) -> bytes:
    """The body, counted as it arrives: 413 past ``limit``, 400 if the client goes away first."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            # As body.read_body: only plain digits count; 15 of them are already petabytes.
            if value.isdigit() and (len(value) > 15 or int(value) > limit):
                raise too_large(limit)
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(400, "body: the client disconnected before sending all of it")
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _error(send: Send, exc: HTTPException) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
    await _respond(send, exc.status_code, orjson.dumps({"detail": safe_text(str(exc.detail))}), headers)


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode("ascii"))]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
