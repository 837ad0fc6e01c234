"""Parsing and validating JSON commands at the edge.

Strict: unknown fields, missing required fields, wrong types and values out of
range are rejected with a message naming the field. Nothing here touches storage.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ledger.domain.errors import InvalidCommand
from ledger.domain.values import check_id, parse_instant

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_COMMAND_ID = 128

Check = Callable[[Any, str], Any]


def _id(value: Any, field: str) -> str:
    return check_id(value, field)


def _text(max_len: int = 200) -> Check:
    def check(value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise InvalidCommand(f"{field}: must be a string")
        if not 1 <= len(value) <= max_len:
            raise InvalidCommand(f"{field}: must be 1..{max_len} characters")
        return value

    return check


def _email(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > 254 or not EMAIL.match(value):
        raise InvalidCommand(f"{field}: must be an email address")
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


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidCommand(f"{field}: must be a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidCommand(f"{field}: must be a finite number")
    return float(value)


def _score(value: Any, field: str) -> float:
    number = _number(value, field)
    if not 0 <= number <= 100:
        raise InvalidCommand(f"{field}: must be a number 0..100")
    return number


def _duration(value: Any, field: str) -> float:
    number = _number(value, field)
    if not 0 < number <= 1000:
        raise InvalidCommand(f"{field}: must be a number > 0 and <= 1000")
    return number


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
    unknown = sorted(set(obj) - set(fields))
    if unknown:
        raise InvalidCommand(f"{prefix}{unknown[0]}: unknown field")
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


def content_hash(obj: dict[str, Any]) -> str:
    """A stable digest of a command's JSON content, for idempotency checks."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_command(obj: Any, now: datetime | None = None) -> Command:
    """Validate one decoded JSON value as a command, or raise InvalidCommand."""
    if not isinstance(obj, dict):
        raise InvalidCommand("command: must be a JSON object")
    kind = obj.get("type")
    if "type" not in obj:
        raise InvalidCommand("type: required field is missing")
    if not isinstance(kind, str) or kind not in SCHEMAS:
        raise InvalidCommand(f"type: unknown command type {kind!r}")
    command_id = obj.get("command_id")
    if "command_id" in obj and (
        not isinstance(command_id, str) or not 1 <= len(command_id) <= MAX_COMMAND_ID
    ):
        raise InvalidCommand(f"command_id: must be a string of 1..{MAX_COMMAND_ID} characters")
    body = {k: v for k, v in obj.items() if k not in ("type", "command_id")}
    fields = _check_fields(body, SCHEMAS[kind])
    if "occurred_at" not in fields:
        fields["occurred_at"] = now or datetime.now(timezone.utc)
    return Command(kind, fields, command_id, content_hash(obj))


def parse_line(line: str, now: datetime | None = None) -> Command:
    """Parse one JSON Lines line into a command; malformed JSON is InvalidCommand."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidCommand(f"json: malformed JSON ({exc.msg} at column {exc.colno})") from None
    return parse_command(obj, now)
