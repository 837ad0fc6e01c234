"""Value rules shared by commands and events: identifiers, instants, financial years."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ledger.domain.errors import InvalidCommand

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
IST = timezone(timedelta(hours=5, minutes=30))


def check_id(value: object, field: str) -> str:
    """Return ``value`` if it is a valid identifier, else raise naming ``field``."""
    if not isinstance(value, str):
        raise InvalidCommand(f"{field}: must be a string identifier")
    if not ID_PATTERN.match(value):
        raise InvalidCommand(
            f"{field}: {value!r} is not a valid id (letters, digits, '.', '_', ':', '-'; "
            "starts with a letter or digit; at most 64 characters)"
        )
    return value


def parse_instant(value: object, field: str = "occurred_at") -> datetime:
    """Parse an ISO 8601 instant that carries an offset (``Z`` or ``+05:30``)."""
    if not isinstance(value, str):
        raise InvalidCommand(f"{field}: must be an ISO 8601 instant string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCommand(f"{field}: {value!r} is not an ISO 8601 instant") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidCommand(f"{field}: {value!r} has no UTC offset (add 'Z' or '+05:30')")
    return instant


def format_instant(instant: datetime) -> str:
    """Render an aware datetime as an ISO 8601 instant, keeping its offset."""
    return instant.isoformat()


def financial_year(instant: datetime) -> str:
    """The Indian financial year (April..March, in IST) of an instant, e.g. ``"2025-26"``."""
    local = instant.astimezone(IST)
    start = local.year if local.month >= 4 else local.year - 1
    return f"{start}-{(start + 1) % 100:02d}"
