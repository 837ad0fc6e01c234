"""Watching the API: request durations by route template, request ids, and ``GET /metrics``.

``Observe`` is plain ASGI middleware (no buffering, nothing between a client that goes
away and the route): it times each request, labels it with the route's template
(``/officers/{officer_id}/record``, never the officer's id; ``unmatched`` for paths no
route has, so made-up paths cannot grow the label set), and gives it a request id: the
caller's ``X-Request-ID`` when it is a plain token, else a new one, answered in the
response's ``X-Request-ID`` and stamped on the logs written meanwhile.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.ops.logs import request_id
from ledger.ops.metrics import HTTP_DURATION, REGISTRY

PLAIN_ID = re.compile(rb"[A-Za-z0-9._\-]{1,64}")

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (no token: counts, positions and route templates only)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


# A new request id: this process's random prefix and a count (as unique as a random
# one, without asking the system for random bytes on every request).
_PROCESS = secrets.token_hex(8)
_COUNT = itertools.count(1)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and PLAIN_ID.fullmatch(value):
            return str(value.decode("ascii"))
    return f"{_PROCESS}{next(_COUNT):016x}"


# The duration histogram's series by (route, method, status), so a request costs no
# label lookup (the set is bounded: route templates, methods, status codes).
_SERIES: dict[tuple[str, str, int], Any] = {}


def _series(template: str, method: str, status: int) -> Any:
    key = (template, method, status)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = HTTP_DURATION.labels(template, method, str(status))
    return found


class Observe:
    """Times every HTTP request and gives it a request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = _request_id(scope)
        token = request_id.set(rid)
        status = 500  # if the app raises before answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
            route: Any = scope.get("route")
            template = str(getattr(route, "path", None) or "unmatched")
            _series(template, scope["method"], status).observe(time.perf_counter() - started)
