"""Strict JSON for commands: what json.loads accepts but a system of record must not.

UTF-8 only (no BOM), no repeated keys, no NaN or Infinity, bounded nesting and size,
huge integers refused with a message: every hostile text becomes an InvalidCommand
naming the problem, never another exception.
"""

from __future__ import annotations

import json
import re
import sys
from itertools import accumulate
from typing import Any

import orjson

from ledger.domain.errors import InvalidCommand
from ledger.domain.values import describe
from ledger.write.lines import MAX_LINE_BYTES, decode_line, too_long

# Deep enough for any real command (a FRAC post nests 7 levels), far below the
# recursion limit and orjson's 1024.
MAX_DEPTH = 64
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def field_name(key: object) -> str:
    """A key as it appears at the start of a message: bare if plain, else quoted."""
    if isinstance(key, str) and _PLAIN_NAME.fullmatch(key):
        return key
    return describe(key)


# A JSON string (escapes included; an unterminated one runs to the end, where JSON
# parsing stops anyway), then anything that is not a bracket: what the depth scan
# removes to leave only the brackets that nest. Possessive quantifiers and a pattern
# that cannot fail once it has seen '"' keep the scan linear on any input.
_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+(?:"|\\?\Z)')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text``.

    For malformed text: at least as deep as a JSON parser gets before it fails.

    No recursion and no Python-level loop per character: strings are cut out, the
    brackets left are mapped to +1/-1 and the running sum's maximum is the depth.
    """
    skeleton = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, skeleton)), default=0)


def repeated_key(pairs: list[tuple[str, Any]]) -> str | None:
    """The first key that an object's pairs repeat, else None."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise InvalidCommand(
            f"{field_name(repeated_key(pairs))}: the key is repeated in one object "
            "(which value was meant is ambiguous)"
        )
    return obj


def _not_json(name: str) -> Any:
    raise InvalidCommand(f"json: {name} is not valid JSON (numbers must be finite)")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_repeated_keys, parse_constant=_not_json)


def _quick_object(text: str) -> dict[str, Any] | None:
    """The object ``text`` holds when decoding it fast gives what the strict decoder gives,
    else None (then the strict decoder runs, and names any problem).

    orjson refuses what the strict decoder refuses (NaN, Infinity, control characters in
    strings, malformed text) except repeated keys, which it resolves silently. So this
    takes only a flat object (no value is an object) written without any backslash (no
    key can be spelt two ways) in which each key's quoted text occurs once.
    """
    if "\\" in text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict:
        return None
    for key, item in value.items():
        if type(item) is dict or text.count(f'"{key}"') != 1:
            return None
        if type(item) is list and any(type(element) in (dict, list) for element in item):
            return None
    return value


def decode_json(
    data: str | bytes, *, max_bytes: int = MAX_LINE_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Decode one JSON text strictly, or raise InvalidCommand saying what is wrong.

    Stricter than json.loads: bytes must be UTF-8 (no BOM, no other encodings), an
    object may not repeat a key, NaN and Infinity are not JSON, nesting deeper than
    ``max_depth`` and texts longer than ``max_bytes`` (characters, for a str) are
    refused before parsing. Never raises anything else, whatever ``data`` holds.
    """
    if len(data) > max_bytes:
        raise too_long(max_bytes)
    if isinstance(data, str):
        text = data
    else:
        decoded = decode_line(data)
        if isinstance(decoded, InvalidCommand):
            raise decoded
        text = decoded
    if text.startswith("\ufeff"):
        raise InvalidCommand(
            "json: starts with a byte order mark (U+FEFF), which is not JSON; "
            "save it as UTF-8 without BOM"
        )
    # Counting brackets is a cheap bound on the depth; only a line with more
    # brackets than the limit needs the exact scan.
    if text.count("{") + text.count("[") > max_depth and nesting_depth(text) > max_depth:
        raise InvalidCommand(f"json: nested more than {max_depth} levels deep")
    quick = _quick_object(text)
    if quick is not None:
        return quick
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidCommand(f"json: malformed JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError:
        # int() refuses more than sys.get_int_max_str_digits() digits (4300 by default).
        raise InvalidCommand(
            f"json: a number has more than {sys.get_int_max_str_digits():,} digits"
        ) from None


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_COMPACT_SORTED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _orjson_agrees(value: Any) -> bool:
    """Whether orjson writes ``value`` as the standard encoder does: it escapes every string
    alike, but writes some floats differently (``1e-7`` for ``1e-07``, ``null`` for NaN) and
    knows types the standard encoder refuses."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return repr(value) == orjson.dumps(value).decode()
    if kind is dict:
        return all(type(k) is str and _orjson_agrees(v) for k, v in value.items())
    if kind is list:
        return all(_orjson_agrees(v) for v in value)
    return False


def compact_json(value: Any, sort_keys: bool = False) -> bytes:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False[, sort_keys=True])`` as
    UTF-8, byte for byte (stored bytes and digests depend on it), by orjson where it agrees."""
    if _orjson_agrees(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate
            pass
    return (_COMPACT_SORTED if sort_keys else _COMPACT).encode(value).encode("utf-8")
