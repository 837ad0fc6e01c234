"""Parsing and validating JSON commands at the edge.

Strict: unknown fields, missing required fields, wrong types and values out of
range are rejected with a message naming the field. The JSON itself is decoded
strictly too (``decode_json``): whatever the bytes, the answer is a Command or an
InvalidCommand, never another exception. Nothing here touches storage.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from ledger.domain.errors import InvalidCommand
from ledger.domain.values import (
    UNSAFE_TEXT,
    check_id,
    describe,
    parse_instant,
    text_check,
    unsafe_character,
)
from ledger.write.strictjson import MAX_DEPTH, compact_json, decode_json, field_name

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_COMMAND_ID = 128
__all__ = ["MAX_DEPTH", "SCHEMAS", "Command", "content_hash", "decode_json", "parse_command", "parse_line"]

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


RETRACTION_REASONS = ("recorded_in_error", "duplicate", "wrong_officer", "withdrawn_by_provider", "other")
MAX_RETRACTED = 100


def _code(codes: tuple[str, ...]) -> Check:
    """One of a fixed set of codes (never free text: a code cannot hold personal data)."""

    def check(value: Any, field: str) -> str:
        if not isinstance(value, str) or value not in codes:
            raise InvalidCommand(f"{field}: must be one of {', '.join(codes)}")
        return value

    return check


def _versions(value: Any, field: str) -> list[int]:
    """1..100 distinct event versions (positive integers), as given."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RETRACTED:
        raise InvalidCommand(f"{field}: must be a list of 1..{MAX_RETRACTED} versions")
    versions = [_int_range(1, 2**62)(v, f"{field}[{i}]") for i, v in enumerate(value)]
    if len(set(versions)) != len(versions):
        raise InvalidCommand(f"{field}: a version is listed twice")
    return versions


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
    "correct_officer_details": {
        "officer_id": _OFFICER,
        "name": (_text(200), False),
        "email": (_email, False),
        "occurred_at": _OCCURRED,
    },
    "retract": {
        "officer_id": _OFFICER,
        "versions": (_versions, True),
        "reason": (_code(RETRACTION_REASONS), True),
        "ticket": (_nullable(_id), False),
        "occurred_at": _OCCURRED_OPTIONAL,
    },
    "declare_capacity_plan": {
        "ministry_id": (_id, True),
        "fy": (_fy, True),
        "min_learning_hours": (_hours, True),
        "targets": (_targets, True),
        "occurred_at": _OCCURRED_OPTIONAL,
    },
}

class Sender(NamedTuple):
    """Who sent a command through the API: the token's role and name. Commands read from
    the command line have no sender."""

    role: str
    name: str


@dataclass(frozen=True)
class Command:
    """A validated command: its type, checked fields, and idempotency identity."""

    type: str
    fields: dict[str, Any]
    command_id: str | None
    content_hash: str
    sender: Sender | None = dataclass_field(default=None, compare=False)

    @property
    def officer_id(self) -> str | None:
        value = self.fields.get("officer_id")
        return value if isinstance(value, str) else None


def content_hash(obj: dict[str, Any]) -> str:
    """A stable digest of a command's JSON content, for idempotency checks: of exactly what
    json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes
    (stored receipts hold digests of this text)."""
    return hashlib.sha256(compact_json(obj, sort_keys=True)).hexdigest()


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
    if kind == "correct_officer_details" and "name" not in fields and "email" not in fields:
        raise InvalidCommand("name: give the corrected name and/or email (neither was given)")
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

# Corrections change what the ledger says happened: only the command line and tokens of
# role registrar or admin may send them (DOMAIN.md "Who may correct").
CORRECTION_COMMANDS = frozenset({"retract", "correct_officer_details"})
