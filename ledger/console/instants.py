"""Instants from the console's controls, and back.

A date means the end of that day in IST (what was true that day; the start of it where a
correction takes effect from it); a date and time without
an offset (a ``datetime-local`` control's value) is IST wall-clock time; anything else is
read as the API reads an instant (an offset is required), refused with its messages (422).
"""

from __future__ import annotations

import re
from datetime import datetime, time

from fastapi import HTTPException

from ledger.domain.errors import LedgerError
from ledger.domain.values import IST, parse_instant

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")  # a date-and-time control's value


def instant_of(text: str, field: str, day_starts: bool = False) -> datetime:
    """The instant a control's ``text`` means, else 422 naming ``field`` (``day_starts``: a date means
    the start of that day, as when a correction takes effect from it)."""
    text = text.strip()
    if _DATE.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            raise HTTPException(422, f"{field}: {text!r} is not a date") from None
        return datetime.combine(day, time.min if day_starts else time.max, IST)
    if _LOCAL.fullmatch(text):
        try:
            return datetime.fromisoformat(text).replace(tzinfo=IST)
        except ValueError:
            raise HTTPException(422, f"{field}: {text!r} is not a date and time") from None
    try:
        return parse_instant(text, field)
    except LedgerError as exc:
        raise HTTPException(422, str(exc)) from None


def local_text(instant: datetime | None) -> str | None:
    """``instant`` as a date-and-time control shows it: IST wall clock, to the millisecond (truncated,
    so it never names a later instant)."""
    if instant is None:
        return None
    wall = instant.astimezone(IST).replace(tzinfo=None)
    return wall.isoformat(timespec="milliseconds" if wall.microsecond else "seconds")


def text_of(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()
