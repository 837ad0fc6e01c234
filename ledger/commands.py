"""Parsing and validating JSON commands at the edge.

Strict: unknown fields, missing required fields, wrong types and values out of
range are rejected with a message naming the field. The JSON itself is decoded
strictly too (``decode_json``): whatever the bytes, the answer is a Command or an
InvalidCommand, never another exception. Nothing here touches storage.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import accumulate
from typing import Any

from ledger.domain.errors import InvalidCommand
from ledger.domain.values import (
    UNSAFE_TEXT,
    check_id,
    describe,
    parse_instant,
    text_check,
    unsafe_character,
)
from ledger.lines import MAX_LINE_BYTES, decode_line, too_long

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_COMMAND_ID = 128
# The deepest valid command (define_post: roles -> activities -> competencies) nests
# 7 levels, 8 inside a request's array. 64 leaves room for any future command while
# staying far below both Python's recursion limit (~1000 frames, which json.loads
# hits on deep input) and orjson's 1024.
MAX_DEPTH = 64
# A field name shown bare in a message; anything else is shown quoted and escaped.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

Check = Callable[[Any, str], Any]


def _id(value: Any, field: str) -> str:
    return check_id(value, field)


def _text(max_len: int = 200) -> Check:
    return text_check(max_len)


def _email(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > 254 or not EMAIL.fullmatch(value):
        raise InvalidCommand(f"{field}: must be an email address")
    if UNSAFE_TEXT.search(value) is not None:
        raise InvalidCommand(f"{field}: {unsafe_character(value)}")
    return value


def _instant(value: Any, field: str) -> datetime:
    return parse_instant(value, field)


def _int_range(low: int, high: int) -> Check:
    def check(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidCommand(f"{field}: must be an integer {low}..{high}")
        if not low <= value <= high:
            raise InvalidCommand(f"{field}: must be an integer {low}..{high}")
        return value

    return check


def _number(value: Any, field: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidCommand(f"{field}: must be a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidCommand(f"{field}: must be a finite number")
    # Not float() yet: an integer of 309 digits or more overflows it. The range
    # checks below compare ints and floats exactly.
    return value


def _score(value: Any, field: str) -> float:
    number = _number(value, field)
    if not 0 <= number <= 100:
        raise InvalidCommand(f"{field}: must be a number 0..100")
    return float(number)


def _duration(value: Any, field: str) -> float:
    number = _number(value, field)
    if not 0 < number <= 1000:
        raise InvalidCommand(f"{field}: must be a number > 0 and <= 1000")
    return float(number)


def _nullable(check: Check) -> Check:
    def nullable(value: Any, field: str) -> Any:
        return None if value is None else check(value, field)

    return nullable


def _object(fields: dict[str, tuple[Check, bool]]) -> Check:
    """A nested JSON object with exactly these fields (name -> (check, required))."""

    def check(value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InvalidCommand(f"{field}: must be an object")
        return _check_fields(value, fields, prefix=f"{field}.")

    return check


def _list(item: Check) -> Check:
    def check(value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise InvalidCommand(f"{field}: must be a list")
        return [item(element, f"{field}[{i}]") for i, element in enumerate(value)]

    return check


def field_name(key: object) -> str:
    """A key as it appears at the start of a message: bare if plain, else quoted."""
    if isinstance(key, str) and _PLAIN_NAME.fullmatch(key):
        return key
    return describe(key)


def _check_fields(
    obj: dict[str, Any], fields: dict[str, tuple[Check, bool]], prefix: str = ""
) -> dict[str, Any]:
    unknown = [key for key in obj if key not in fields]
    if unknown:
        # A dict built in Python (not decoded JSON) may have keys that are not strings.
        names = [key for key in unknown if isinstance(key, str)]
        if len(names) < len(unknown):
            raise InvalidCommand(f"{prefix.rstrip('.') or 'command'}: field names must be strings")
        raise InvalidCommand(f"{prefix}{field_name(min(names))}: unknown field")
    out: dict[str, Any] = {}
    for name, (check, required) in fields.items():
        if name not in obj:
            if required:
                raise InvalidCommand(f"{prefix}{name}: required field is missing")
            continue
        out[name] = check(obj[name], f"{prefix}{name}")
    return out


_LEVEL = _int_range(1, 5)
_NEED = _object({"competency_id": (_id, True), "level": (_LEVEL, True)})
_ROLE = _object(
    {
        "name": (_text(), True),
        "activities": (
            _list(_object({"name": (_text(), True), "competencies": (_list(_NEED), True)})),
            True,
        ),
    }
)
_ASSESSMENT = _object(
    {"pass_mark": (_int_range(0, 100), True), "max_attempts": (_int_range(1, 10**6), True)}
)
_TARGET = _object({"competency_id": (_id, True), "level": (_LEVEL, True),
                   "officers": (_int_range(1, 10**9), True)})
_FY = re.compile(r"[0-9]{4}-[0-9]{2}")


def _fy(value: Any, field: str) -> str:
    """A financial year label: ``"2025-26"``, the second part the next year's last two digits."""
    if not isinstance(value, str) or _FY.fullmatch(value) is None or (int(value[:4]) + 1) % 100 != int(value[5:]):
        raise InvalidCommand(f"{field}: must be a financial year like \"2025-26\" (four digits, a hyphen, "
                             "the next year's last two digits)")
    return value


def _hours(value: Any, field: str) -> float:
    number = _number(value, field)
    if not 0 <= number <= 1000:
        raise InvalidCommand(f"{field}: must be a number 0..1000")
    return number


def _targets(value: Any, field: str) -> list[Any]:
    if isinstance(value, list) and len(value) > 200:
        raise InvalidCommand(f"{field}: at most 200 targets")
    checked: list[Any] = _list(_TARGET)(value, field)
    return checked


_OCCURRED_OPTIONAL = (_instant, False)
_OCCURRED = (_instant, True)
_OFFICER = (_id, True)
_COURSE = (_id, True)

SCHEMAS: dict[str, dict[str, tuple[Check, bool]]] = {
    "define_organisation": {
        "org_id": (_id, True),
        "name": (_text(), True),
        "kind": (_text(32), True),
        "parent_id": (_nullable(_id), False),
        "occurred_at": _OCCURRED_OPTIONAL,
    },
    "define_competency": {
        "competency_id": (_id, True),
        "name": (_text(), True),
        "kind": (_text(32), True),
        "occurred_at": _OCCURRED_OPTIONAL,
    },
    "define_post": {
        "post_id": (_id, True),
        "org_id": (_id, True),
        "title": (_text(), True),
        "roles": (_list(_ROLE), True),
        "occurred_at": _OCCURRED_OPTIONAL,
    },
    "publish_course": {
        "course_id": _COURSE,
        "title": (_text(), True),
        "provider": (_text(), True),
        "duration_hours": (_duration, True),
        "competencies": (_list(_NEED), False),
        "assessment": (_nullable(_ASSESSMENT), False),
        "occurred_at": _OCCURRED_OPTIONAL,
    },
    "register_officer": {
        "officer_id": _OFFICER,
        "name": (_text(200), True),
        "email": (_email, True),
        "org_id": (_id, True),
        "post_id": (_nullable(_id), False),
        "occurred_at": _OCCURRED,
    },
    "transfer_officer": {
        "officer_id": _OFFICER,
        "org_id": (_id, True),
        "post_id": (_nullable(_id), False),
        "occurred_at": _OCCURRED,
    },
    "enrol": {"officer_id": _OFFICER, "course_id": _COURSE, "occurred_at": _OCCURRED},
    "record_progress": {
        "officer_id": _OFFICER,
        "course_id": _COURSE,
        "percent": (_int_range(0, 100), True),
        "occurred_at": _OCCURRED,
    },
    "attempt_assessment": {
        "officer_id": _OFFICER,
        "course_id": _COURSE,
        "score": (_score, True),
        "occurred_at": _OCCURRED,
    },
    "complete_course": {"officer_id": _OFFICER, "course_id": _COURSE, "occurred_at": _OCCURRED},
    "withdraw": {"officer_id": _OFFICER, "course_id": _COURSE, "occurred_at": _OCCURRED},
    "declare_capacity_plan": {
        "ministry_id": (_id, True),
        "fy": (_fy, True),
        "min_learning_hours": (_hours, True),
        "targets": (_targets, True),
        "occurred_at": _OCCURRED_OPTIONAL,
    },
}

OFFICER_COMMANDS = frozenset(t for t, fields in SCHEMAS.items() if "officer_id" in fields)


@dataclass(frozen=True)
class Command:
    """A validated command: its type, checked fields, and idempotency identity."""

    type: str
    fields: dict[str, Any]
    command_id: str | None
    content_hash: str

    @property
    def officer_id(self) -> str | None:
        value = self.fields.get("officer_id")
        return value if isinstance(value, str) else None


# Exactly what json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# uses, built once instead of per call: stored receipts hold digests of this text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(obj: dict[str, Any]) -> str:
    """A stable digest of a command's JSON content, for idempotency checks."""
    return hashlib.sha256(_CANONICAL.encode(obj).encode("utf-8")).hexdigest()


def parse_command(obj: Any, now: datetime | None = None) -> Command:
    """Validate one decoded JSON value as a command, or raise InvalidCommand."""
    if not isinstance(obj, dict):
        raise InvalidCommand("command: must be a JSON object")
    kind = obj.get("type")
    if "type" not in obj:
        raise InvalidCommand("type: required field is missing")
    if not isinstance(kind, str):
        raise InvalidCommand(f"type: must be a string naming a command, not {describe(kind)}")
    if kind not in SCHEMAS:
        raise InvalidCommand(f"type: unknown command type {describe(kind)}")
    command_id = obj.get("command_id")
    if "command_id" in obj:
        _check_command_id(command_id)
    body = {k: v for k, v in obj.items() if k not in ("type", "command_id")}
    fields = _check_fields(body, SCHEMAS[kind])
    if "occurred_at" not in fields:
        fields["occurred_at"] = now or datetime.now(timezone.utc)
    return Command(kind, fields, command_id, content_hash(obj))


def _check_command_id(value: Any) -> None:
    # Any text an idempotency key may be, but it is stored and echoed: no controls,
    # no NUL, no lone surrogates (the rules for every stored text).
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_COMMAND_ID:
        raise InvalidCommand(f"command_id: must be a string of 1..{MAX_COMMAND_ID} characters")
    if UNSAFE_TEXT.search(value) is not None:
        raise InvalidCommand(f"command_id: {unsafe_character(value)}")


def parse_line(line: str | bytes, now: datetime | None = None) -> Command:
    """Parse one JSON Lines line into a command; anything malformed is InvalidCommand."""
    return parse_command(decode_json(line), now)


# ---- strict JSON ----------------------------------------------------------------

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


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidCommand(
                    f"{field_name(key)}: the key is repeated in one object "
                    "(which value was meant is ambiguous)"
                )
            seen.add(key)
    return obj


def _not_json(name: str) -> Any:
    raise InvalidCommand(f"json: {name} is not valid JSON (numbers must be finite)")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_repeated_keys, parse_constant=_not_json)


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
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidCommand(f"json: malformed JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError:
        # int() refuses more than sys.get_int_max_str_digits() digits (4300 by default).
        raise InvalidCommand(
            f"json: a number has more than {sys.get_int_max_str_digits():,} digits"
        ) from None
