"""Statements as they arrive: JSON or multipart/mixed with attachments, checked against the spec."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from typing import Any

from ledger.api.xapi_http import XapiError, XRequest, parse_json_body
from ledger.xapi import multipart
from ledger.xapi.compat import XapiInvalid, normalise, same_statement, validate_statement

SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
_HASHES = {64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512}
_SIGNING = ("RS256", "RS384", "RS512")


def read_statements(xreq: XRequest) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    """The JSON the request carries and its attachments by SHA-2 (content type, bytes)."""
    ctype = xreq.headers.get("content-type", "").strip().lower()
    if ctype.startswith("multipart/mixed"):
        try:
            parts = multipart.parse(xreq.body, xreq.headers.get("content-type", ""))
        except XapiInvalid as exc:
            raise XapiError(400, str(exc)) from None
        if not parts or not parts[0].headers.get("content-type", "").lower().startswith("application/json"):
            raise XapiError(400, "multipart: the first part holds the statements as application/json")
        attachments: dict[str, tuple[str, bytes]] = {}
        for part in parts[1:]:
            sha2 = part.headers.get("x-experience-api-hash", "").strip().lower()
            if not sha2:
                raise XapiError(400, "multipart: every attachment part has an X-Experience-API-Hash header")
            if part.headers.get("content-transfer-encoding", "binary").strip().lower() != "binary":
                raise XapiError(400, "multipart: Content-Transfer-Encoding of an attachment must be binary")
            algorithm = _HASHES.get(len(sha2))
            if algorithm is None or algorithm(part.body).hexdigest() != sha2:
                raise XapiError(400, "multipart: an attachment's content does not match its X-Experience-API-Hash")
            attachments[sha2] = (part.headers.get("content-type", "application/octet-stream"), part.body)
        return parse_json_body(parts[0].body), attachments
    if ctype.startswith("application/json") or not ctype:
        return parse_json_body(xreq.body), {}
    raise XapiError(400, f"Content-Type: {ctype!r} is neither application/json nor multipart/mixed")


def prepare(stmt: Any, xreq: XRequest, authority: dict[str, Any]) -> dict[str, Any]:
    """A received statement validated and completed as stored (id, authority, version)."""
    try:
        validate_statement(stmt, "2.0.0" if xreq.is_v2 else "1.0.3")
    except XapiInvalid as exc:
        raise XapiError(400, str(exc)) from None
    out = normalise(stmt)
    out.setdefault("id", str(uuid.uuid4()))
    out["authority"] = authority
    out.setdefault("version", "2.0.0" if xreq.is_v2 else "1.0.0")
    out.pop("stored", None)
    return out


def check_attachments(statements: list[dict[str, Any]], attachments: dict[str, tuple[str, bytes]]) -> None:
    """Every attachment without a fileUrl has its part, every part is named by a statement;
    signatures (JWS) are well formed and sign the statement they travel with."""
    named: set[str] = set()
    for stmt in statements:
        for attachment in stmt.get("attachments") or []:
            sha2 = str(attachment.get("sha2", "")).lower()
            named.add(sha2)
            if sha2 not in attachments and "fileUrl" not in attachment:
                raise XapiError(400, f"attachments: no part with sha2 {sha2} and no fileUrl")
            if attachment.get("usageType") == SIGNATURE:
                if sha2 not in attachments:
                    raise XapiError(400, "attachments: a signature travels as a part")
                if str(attachment.get("contentType", "")).lower() != "application/octet-stream":
                    raise XapiError(400, "attachments: a signature's contentType is application/octet-stream")
                check_signature(stmt, attachments[sha2][1])
    unnamed = set(attachments) - named
    if unnamed:
        raise XapiError(400, f"multipart: the part with hash {sorted(unnamed)[0]} is no statement's attachment")


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_signature(stmt: dict[str, Any], jws: bytes) -> None:
    """A JWS (compact) whose header names an RS algorithm and whose payload is this statement."""
    try:
        header_b64, payload_b64, signature_b64 = jws.decode("ascii").strip().split(".")
        header = json.loads(_b64(header_b64))
        payload = json.loads(_b64(payload_b64))
        _b64(signature_b64)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise XapiError(400, "attachments: the signature is not a JWS in compact serialisation") from None
    if not isinstance(header, dict) or header.get("alg") not in _SIGNING:
        raise XapiError(400, f"attachments: a signature's JWS algorithm is one of {', '.join(_SIGNING)}")
    if not isinstance(payload, dict):
        raise XapiError(400, "attachments: the signature's payload is not a statement")
    original = {k: v for k, v in stmt.items() if k not in ("attachments", "authority", "version", "stored")}
    signed = {k: v for k, v in payload.items() if k not in ("attachments", "authority", "version", "stored")}
    if "id" not in signed:
        original.pop("id", None)
    if not same_statement(original, signed):
        raise XapiError(400, "attachments: the signature's payload is not the statement it travels with")
