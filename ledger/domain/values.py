"""Value rules shared by commands and events: identifiers, text, instants, financial years."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from ledger.domain.errors import InvalidCommand

# \A and \Z (not ^ and $, whose $ also matches before a final "\n") so that the
# pattern means "the whole string" whether it is used with match, fullmatch or search.
ID_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
IST = timezone(timedelta(hours=5, minutes=30))
# Why an officer's personal data was erased: a code, never free text (free text could
# hold the very personal data the erasure removes). The CLI, the API and the console
# accept only these; OfficerErased's Avro schema documents the same list.
ERASURE_REASONS = ("data_principal_request", "purpose_served", "legal_order", "other")

# Characters no stored text may hold: C0 and C1 controls (NUL among them: PostgreSQL
# refuses it in text), the Unicode line and paragraph separators (they break every
# line-oriented output), and lone surrogates (a str holding one cannot be encoded as
# UTF-8, so it could be neither stored nor answered), and the explicit bidirectional
# embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069): one in a name
# reverses whatever is printed after it on the same line of a page or a report
# (right-to-left scripts need none of them; the implicit algorithm orders them).
UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# An instant is printable ASCII with no space at either end (datetime.fromisoformat
# alone accepts a trailing NUL and non-ASCII characters in some places).
_INSTANT_TEXT = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_SHOWN_CHARS = 60


def describe(value: object) -> str:
    """A short, printable rendering of an input value for an error message.

    Strings are quoted with their unprintable characters escaped and cut to a few
    dozen characters; anything else is named by its JSON type, never rendered (a
    value can be a million characters long or nested thousands deep).
    """
    if isinstance(value, str):
        if len(value) <= _SHOWN_CHARS:
            return repr(value)
        return f"{value[:_SHOWN_CHARS]!r}... ({len(value):,} characters)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def unsafe_character(text: str) -> str:
    """Why ``text`` cannot be stored as text (its first unsafe character), or ""."""
    found = UNSAFE_TEXT.search(text)
    if found is None:
        return ""
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"contains a lone surrogate (U+{code:04X}), which is not valid Unicode text"
    if code in (0x2028, 0x2029):
        return f"contains a line or paragraph separator (U+{code:04X})"
    if 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return f"contains a bidirectional control character (U+{code:04X}), which reorders the text shown after it"
    return f"contains a control character (U+{code:04X})"


def text_check(max_len: int = 200) -> Callable[[object, str], str]:
    """A check that a value is 1..max_len characters of storable text (one call per value)."""

    def check(value: object, field: str) -> str:
        if not isinstance(value, str):
            raise InvalidCommand(f"{field}: must be a string")
        if not 1 <= len(value) <= max_len:
            raise InvalidCommand(f"{field}: must be 1..{max_len} characters")
        if UNSAFE_TEXT.search(value) is not None:
            raise InvalidCommand(f"{field}: {unsafe_character(value)}")
        return value

    return check


def check_id(value: object, field: str) -> str:
    """Return ``value`` if it is a valid identifier, else raise naming ``field``."""
    if not isinstance(value, str):
        raise InvalidCommand(f"{field}: must be a string identifier")
    if ID_PATTERN.fullmatch(value) is None:
        raise InvalidCommand(
            f"{field}: {describe(value)} is not a valid id (letters, digits, '.', '_', ':', '-'; "
            "starts with a letter or digit; at most 64 characters)"
        )
    return value


def parse_instant(value: object, field: str = "occurred_at") -> datetime:
    """Parse an ISO 8601 instant that carries an offset (``Z`` or ``+05:30``)."""
    if not isinstance(value, str):
        raise InvalidCommand(f"{field}: must be an ISO 8601 instant string")
    if _INSTANT_TEXT.fullmatch(value) is None:
        raise InvalidCommand(f"{field}: {describe(value)} is not an ISO 8601 instant")
    text = value
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCommand(f"{field}: {describe(value)} is not an ISO 8601 instant") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidCommand(f"{field}: {describe(value)} has no UTC offset (add 'Z' or '+05:30')")
    if not 1 < instant.year < 9999:
        try:
            # Every instant is later compared in UTC and filed under an IST financial
            # year; one that cannot be shown in both (only possible in year 1 or 9999)
            # is refused here rather than failing later.
            instant.astimezone(timezone.utc)
            instant.astimezone(IST)
        except OverflowError:
            raise InvalidCommand(f"{field}: {describe(value)} is out of range") from None
    return instant


def format_instant(instant: datetime) -> str:
    """Render an aware datetime as an ISO 8601 instant, keeping its offset."""
    return instant.isoformat()


def financial_year(instant: datetime) -> str:
    """The Indian financial year (April..March, in IST) of an instant, e.g. ``"2025-26"``."""
    local = instant.astimezone(IST)
    start = local.year if local.month >= 4 else local.year - 1
    return f"{start}-{(start + 1) % 100:02d}"
