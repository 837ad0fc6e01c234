"""Stored events to the public dicts the projections fold, without building event objects.

``Ledger.read_log`` turns each stored event into a domain event object (the library's
mapper) and that into the public dict (``ledger.events.to_public``). A rebuild reads
the whole history, so :class:`Decoder` goes from the stored JSON to the same dict
directly, and leaves to the mapper whatever it does not read itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from ledger.domain.officer import Officer
from ledger.events import OFFICER_EVENTS, public_type, to_public

# Keys of the stored state that the public shape leaves out (see ledger.events.to_public).
_NOT_PUBLIC = ("timestamp", "originator_topic", "originator_id", "originator_version", "class_version")
# orjson reads an integer beyond 64 bits as a float, where the library's json gives the
# int: any run of 19 digits (a number that wide, or a string with one) takes the mapper.
_DIGITS = bytes(48 if 48 <= i <= 57 else i for i in range(256))
_WIDE = b"0" * 19


def officer_topics(kinds: Iterable[str]) -> list[str]:
    """The stored topics of these officer event types (e.g. ``CourseCompleted``)."""
    return sorted({get_topic(getattr(Officer, kind)) for kind in kinds})


class Decoder:
    """Stored events to exactly the dicts ``to_public(mapper.to_domain_event(...))`` gives.

    Without the event objects: the stored JSON is parsed with orjson and the recording
    time taken from its one tagged value. Anything else (another tagged value, a cipher
    or compressor, an upcast class, JSON orjson refuses or reads differently) goes
    through the mapper.
    """

    def __init__(self, mapper: Any) -> None:
        self._mapper = mapper
        stamp = getattr(mapper.transcoder, "names", {}).get("datetime_iso")
        self._plain = mapper.cipher is None and mapper.compressor is None and type(stamp) is DatetimeAsISO
        # topic -> (public type, stored JSON is the state as it is, officer event)
        self.kinds: dict[str, tuple[str, bool, bool]] = {}

    def kind(self, topic: str) -> tuple[str, bool, bool]:
        kind = self.kinds.get(topic)
        if kind is None:
            cls = resolve_topic(topic)
            name = public_type(object.__new__(cls))
            kind = (name, self._plain and getattr(cls, "class_version", 1) == 1, name in OFFICER_EVENTS)
            self.kinds[topic] = kind
        return kind

    def is_officer(self, topic: str) -> bool:
        return self.kind(topic)[2]

    def __call__(self, entity: str, version: int, topic: str, state: bytes) -> dict[str, Any]:
        name, as_is, _ = self.kinds.get(topic) or self.kind(topic)
        if as_is and state.count(b'"_type_"') == 1 and state.translate(_DIGITS).find(_WIDE) < 0:
            try:
                body = orjson.loads(state)
            except orjson.JSONDecodeError:
                body = None
            stamp = body.get("timestamp") if type(body) is dict else None
            if type(stamp) is dict and len(stamp) == 2 and stamp.get("_type_") == "datetime_iso":
                data = stamp["_data_"]
                if type(data) is str:
                    public: dict[str, Any] = {"type": name, "version": version, "recorded_at": _isoformat(data)}
                    assert body is not None
                    for key in _NOT_PUBLIC:
                        body.pop(key, None)
                    public.update(body)
                    return public
        stored = StoredEvent(originator_id=UUID(entity), originator_version=version, topic=topic, state=state)
        return to_public(self._mapper.to_domain_event(stored))


def _isoformat(data: str) -> str:
    """``datetime.fromisoformat(data).isoformat()``, without formatting again a string that
    is already that (an aware UTC time with microseconds, as the library stores them)."""
    instant = datetime.fromisoformat(data)
    if (
        len(data) == 32 and data[19] == "." and data[10] == "T" and data[26:] == "+00:00"
        and data[20:26] != "000000" and data[4] == data[7] == "-" and data[13] == data[16] == ":"
    ):
        return data
    return instant.isoformat()
