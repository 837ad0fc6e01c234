"""The business history as the projections see it (DOMAIN.md "Late facts, corrections and
retractions"): an officer's events in business order, and what a document remembers to
know when an event changes that history before its end.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from ledger.domain.history import business_history

# In every officer document: the latest occurred_at (epoch seconds) of the events applied
# to it. An event earlier than that, or a retraction, changes the business history
# before its end: the document is folded again (see ``OfficerDocProjection.refold``).
LAST_AT = "_at"
RETRACTION = "EventsRetracted"


@functools.lru_cache(maxsize=65536)
def epoch(instant: str) -> float:
    """An ISO 8601 instant as epoch seconds (instants compare, text does not)."""
    return datetime.fromisoformat(instant).timestamp()


def business_order(events: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """An officer's events (versions ascending) in business order: as given when nothing
    is late or retracted, which is the usual case and costs one pass."""
    last = float("-inf")
    for event in events:
        at = epoch(event["occurred_at"])
        if event["type"] == RETRACTION or at < last:
            return cast(list[dict[str, Any]], business_history(events))
        last = at
    return events


def mark(doc: dict[str, Any], events: Sequence[dict[str, Any]]) -> None:
    """Record in ``doc`` the latest occurred_at of ``events`` (see ``LAST_AT``)."""
    latest = doc.get(LAST_AT, float("-inf"))
    for event in events:
        if event["type"] != RETRACTION:
            latest = max(latest, epoch(event["occurred_at"]))
    if latest != float("-inf"):
        doc[LAST_AT] = latest


class HistoryUnavailable(Exception):
    """A document must be folded again and no reader of the store's history was given."""


def add_into(into: dict[Any, Any], values: dict[Any, Any], sign: int) -> None:
    """``into += sign * values``, key by key (a value is a number or a list of numbers)."""
    for key, value in values.items():
        if isinstance(value, list):
            into[key] = [a + sign * b for a, b in zip(into.get(key) or [0] * len(value), value, strict=True)]
        else:
            into[key] = into.get(key, 0) + sign * value
