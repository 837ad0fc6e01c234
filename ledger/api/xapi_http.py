"""The xAPI resources' HTTP plumbing: the request as xAPI sees it, versions, authentication, errors.

Every answer under ``/xapi`` carries ``X-Experience-API-Version``. A POST with a ``method``
query parameter is the alternate request syntax of xAPI 1.0.x (refused under 2.0): the form
holds the headers, the ``content`` and the query parameters of the request it stands for.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ledger.api.auth import Principal
from ledger.api.body import read_body, safe_text
from ledger.api.deps import Services, principal_of
from ledger.ops.metrics import AUTH_FAILURES

# Statements with attachments may be larger than a command body.
MAX_XAPI_BODY = 16 * 1024 * 1024
VERSIONS = ("2.0.0", "1.0.3")
_VERSION = re.compile(r"^(1\.0(\.[0-9])?|2\.0(\.[0-9])?)$")
FORM_HEADERS = ("authorization", "x-experience-api-version", "content-type", "content-length", "if-match",
                "if-none-match")
WRITE, READ = ("lrs",), ("lrs", "auditor")


class XapiError(Exception):
    """An answer other than success: status, message and any extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class XRequest:
    """The request as xAPI reads it (after the alternate request syntax, if used)."""

    method: str
    headers: dict[str, str]
    params: dict[str, str]
    body: bytes
    version: str = VERSIONS[0]
    who: Principal | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_v2(self) -> bool:
        return self.version.startswith("2")


def response_version(requested: str | None) -> str:
    return "1.0.3" if requested and requested.startswith("1") else "2.0.0"


def error_response(exc: XapiError, version: str) -> Response:
    return Response(json.dumps({"error": safe_text(exc.message)}), status_code=exc.status,
                    media_type="application/json",
                    headers={**exc.headers, "X-Experience-API-Version": version})


def _single_params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in params:
            raise XapiError(400, f"{name}: given more than once")
        params[name] = value
    return params


async def read_request(request: Request, needs_version: bool = True) -> XRequest:
    """The xAPI request: alternate syntax unfolded, the version header checked."""
    params = _single_params(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        body = await read_body(request, MAX_XAPI_BODY)
    except HTTPException as exc:
        raise XapiError(exc.status_code, str(exc.detail)) from None
    method = request.method
    if "method" in params:
        if method != "POST":
            raise XapiError(400, "method: the alternate request syntax is a POST")
        wanted = params.pop("method").upper()
        if params:
            raise XapiError(400, "the alternate request syntax takes no query parameters besides method")
        version = headers.get("x-experience-api-version", "")
        if not headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
            raise XapiError(400, "Content-Type: the alternate request syntax sends a form "
                                 "(application/x-www-form-urlencoded)")
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError):
            raise XapiError(400, "body: not a URL-encoded form") from None
        version = form.get("X-Experience-API-Version", version)
        if version.startswith("2"):
            raise XapiError(400, "method: xAPI 2.0 has no alternate request syntax")
        if wanted not in ("GET", "PUT", "POST", "DELETE", "HEAD"):
            raise XapiError(400, f"method: {wanted!r} is not an HTTP method of the xAPI")
        for name in list(form):
            if name.lower() in FORM_HEADERS:
                headers[name.lower()] = form.pop(name)
        content = form.pop("content", None)
        if content is None and wanted in ("PUT", "POST"):
            raise XapiError(400, "content: the alternate request syntax sends the body as the form's content")
        body = (content or "").encode("utf-8")
        if headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
            headers["content-type"] = "application/json"  # the form named no Content-Type of its own
        method, params = wanted, form
    xreq = XRequest(method, headers, params, body)
    given = headers.get("x-experience-api-version")
    if given is None:
        if needs_version:
            raise XapiError(400, "X-Experience-API-Version: required")
    elif not _VERSION.match(given.strip()):
        raise XapiError(400, f"X-Experience-API-Version: {given!r} is not a version this LRS speaks "
                             f"({', '.join(VERSIONS)})")
    else:
        xreq.version = given.strip()
    return xreq


async def authenticate(services: Services, xreq: XRequest, roles: tuple[str, ...]) -> Principal:
    """The caller (HTTP Basic: the token's name and the token; or the token as a Bearer), else 401/403."""
    challenge = {"WWW-Authenticate": 'Basic realm="xAPI"'}
    header = xreq.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    user: str | None = None
    if scheme.lower() == "basic":
        try:
            user, colon, token = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            colon = ""
        if not colon:
            AUTH_FAILURES.labels("invalid").inc()
            raise XapiError(401, "Authorization: Basic credentials are the token's name and the token", challenge)
    elif scheme.lower() == "bearer" and value.strip():
        token = value.strip()
    else:
        AUTH_FAILURES.labels("missing").inc()
        raise XapiError(401, "Authorization: required (HTTP Basic or a Bearer token)", challenge)
    try:
        who = await principal_of(services, token)
    except HTTPException:
        raise XapiError(401, "the token is not valid or was revoked", challenge) from None
    if user and user != who.name:
        AUTH_FAILURES.labels("invalid").inc()
        raise XapiError(401, "the user name is not the token's name", challenge)
    if who.role not in roles:
        AUTH_FAILURES.labels("forbidden").inc()
        raise XapiError(403, f"role {who.role}: may not {'write' if roles == WRITE else 'read'} xAPI statements")
    xreq.who = who
    return who


def parse_json_body(body: bytes) -> Any:
    """The body as strict JSON (the battery of POST /commands), else 400."""
    from ledger.api.body import parse_json

    try:
        return parse_json(body)
    except HTTPException as exc:
        raise XapiError(400, str(exc.detail)) from None
