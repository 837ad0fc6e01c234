"""Request bodies: read only after authorization, size-limited while they stream in, strict JSON.

One limit for every endpoint that takes a body. The bytes are counted as they
arrive (also with chunked transfer encoding, where no Content-Length announces
them), so an oversized body is refused at the first chunk past the limit instead
of being held in memory whole. Parsing never raises anything but an HTTPException:
bodies nested deeper than a fixed limit are refused before the recursive JSON
parser sees them (RFC 8259, section 9, lets a parser limit depth and numbers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from ledger.write.strictjson import nesting_depth, repeated_key

MAX_BODY = 1024 * 1024
# The deepest command nests 8 levels inside a request's array. The command parser has
# its own, lower limit and names the field; this one only keeps the request parser far
# below Python's recursion limit whatever the body holds.
MAX_DEPTH = 100

M = TypeVar("M", bound=BaseModel)

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def too_large(limit: int = MAX_BODY) -> HTTPException:
    return HTTPException(413, f"body: larger than {limit} bytes")


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, or 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    # isascii: str.isdigit() also accepts digits int() refuses; 15 digits is already petabytes.
    if declared.isascii() and declared.isdigit() and (len(declared) > 15 or int(declared) > limit):
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # The client went away mid-body: nothing of it is applied, and this is no
        # server error (no traceback in the log); the answer reaches no one.
        raise HTTPException(400, "body: the client disconnected before sending all of it") from None
    return b"".join(chunks)


def safe_text(text: str) -> str:
    """``text`` with lone surrogates written out as ``\\udXXX``, so it can be sent as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def validation_message(errors: Sequence[Any]) -> str:
    """The first pydantic error as ``field: message`` (``body`` when no field is named)."""
    first = errors[0] if errors else {"loc": ["body"], "msg": "invalid"}
    field = ".".join(str(part) for part in first.get("loc", []) if part != "body") or "body"
    return safe_text(f"{field}: {first.get('msg')}")


def _text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(
            400, f"body: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})"
        ) from None
    text = text.removeprefix("\ufeff")  # RFC 8259 lets a parser ignore a byte order mark
    # Counting brackets bounds the depth cheaply; only a body with more of them than the
    # limit needs the exact (linear, non-recursive) scan.
    if text.count("[") + text.count("{") > MAX_DEPTH and nesting_depth(text) > MAX_DEPTH:
        raise HTTPException(400, f"body: JSON nested more than {MAX_DEPTH} levels deep")
    return text


class _NotJson(ValueError):
    """A JSON decoding hook refused a value that json.loads would otherwise accept."""


def _not_json(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON; numbers must be finite")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _NotJson(f"an object repeats key {repeated_key(pairs)!r}")
    return obj


_STRICT = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_not_json)


def parse_json(raw: bytes) -> Any:
    """The body as JSON: 400 when it is not JSON (or not within the parser's limits)."""
    try:
        return _STRICT.decode(_text(raw))
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"body: malformed JSON ({exc})") from None
    except _NotJson as exc:
        raise HTTPException(400, safe_text(f"body: malformed JSON ({exc})")) from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise HTTPException(400, "body: malformed JSON (a number has too many digits)") from None


async def read_model(request: Request, model: type[M]) -> M:
    """The body validated as ``model``: 413, 400 (not JSON) or 422 (field named) otherwise."""
    raw = await read_body(request)
    if not raw.strip():
        raise HTTPException(422, "body: Field required")
    try:
        return model.model_validate(parse_json(raw))
    except ValidationError as exc:
        raise HTTPException(422, validation_message(exc.errors())) from None


class _Object:
    """What the splitting decoder makes of any JSON object: only its kind matters there."""


def _any_object(pairs: list[tuple[str, Any]]) -> _Object:
    return _OBJECT


def _keep(text: str) -> str:
    return text


_OBJECT = _Object()
# Splits without judging: no number is converted (no digit limit applies) and keys may
# repeat; the command parser is the one place that decides what a command may hold.
_SPLITTER = json.JSONDecoder(
    object_pairs_hook=_any_object, parse_int=_keep, parse_float=_keep, parse_constant=_keep
)


def _skip_whitespace(text: str, pos: int) -> int:
    found = _WHITESPACE.match(text, pos)
    return pos if found is None else found.end()


def _split(text: str) -> list[tuple[Any, str]]:
    """The top-level value(s) of a body and their exact texts: an array's items, or the one value."""
    pos = _skip_whitespace(text, 0)
    items: list[tuple[Any, str]] = []
    if not text.startswith("[", pos):
        value, end = _SPLITTER.raw_decode(text, pos)
        items.append((value, text[pos:end]))
    else:
        end = _skip_whitespace(text, pos + 1)
        closed = text.startswith("]", end)
        while not closed:
            value, after = _SPLITTER.raw_decode(text, end)
            items.append((value, text[end:after]))
            end = _skip_whitespace(text, after)
            if text.startswith(",", end):
                end = _skip_whitespace(text, end + 1)
            elif text.startswith("]", end):
                closed = True
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
        end += 1
    rest = _skip_whitespace(text, end)
    if rest != len(text):
        raise json.JSONDecodeError("Extra data", text, rest)
    return items


def split_commands(raw: bytes, max_commands: int) -> list[str]:
    """The exact text of each command in a body holding one command or an array of them.

    Each text goes to the command parser unchanged, so a command sent over HTTP is
    judged exactly as the same command on a line of a file (repeated keys, numbers and all).
    """
    text = _text(raw)
    try:
        items = _split(text)
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"body: malformed JSON ({exc})") from None
    if not 1 <= len(items) <= max_commands:
        raise HTTPException(422, f"body: send 1..{max_commands} commands")
    # In an array, an element that is not an object is that command's own rejection
    # (the parser says so); a lone body that is not an object is no command at all.
    if not text.lstrip(" \t\r\n").startswith("[") and items[0][0] is not _OBJECT:
        raise HTTPException(422, "body: each command must be a JSON object")
    return [text for _, text in items]
