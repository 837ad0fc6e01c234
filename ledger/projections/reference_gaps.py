"""Reference events are gap-checked like officer events.

An officer's document remembers the last version applied, so an officer event that
skips a version is a gap (see ``base``). Reference entities (organisations,
competencies, posts and their FRAC revisions, courses, capacity plans) have versions
too, but their rows are written idempotently by several read models, each keeping
only what it needs. So the runner keeps, per reference entity (its public type and
key), the highest version the projections were given (``ledger_reference_versions``),
in the batch's transaction, and checks each reference event against it:

- at or below it: a duplicate delivery, passed on (every reference write ignores an
  older or repeated revision);
- one above it: applied, and the version moves on;
- further above: a **version gap**: the event goes to the dead-letter table under its
  entity's key, and every later event of that entity is held back behind it, exactly
  as for an officer. ``ledger dead-letters retry`` re-applies the entity's events from
  the store and moves its version to the store's (:func:`note_versions`).

An entity never seen must start at version 1, except on a store consumed before
versions were kept (migration 0010 leaves a marker row): there the first version seen is
taken as it comes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger.events import REFERENCE_EVENTS, reference_entity, reference_key
from ledger.projections.base import select_in
from ledger.store.db import Cursor

_REFERENCE_TYPES = frozenset(REFERENCE_EVENTS)
LENIENT = ""  # the marker entity of migration 0010


def is_reference(event: dict[str, Any] | None) -> bool:
    return event is not None and event["type"] in _REFERENCE_TYPES


def sort_out(c: Cursor, items: list[Any], dead: dict[tuple[str, int, int], tuple[Any, str]]) -> list[Any]:
    """``items`` (decoded, in order) without the reference events that skip a version or are
    held back behind an earlier dead letter of their entity; those join ``dead``."""
    types = _REFERENCE_TYPES
    refs = [i for i in items if i.event["type"] in types]  # decoded items only: a dict lookup each
    if not refs:
        return items
    entities = sorted({e for e in (reference_entity(i.event) for i in refs) if e is not None})
    keys = sorted({k for k in (reference_key(i.event) for i in refs) if k is not None})
    known = {str(e): int(v) for e, v in select_in(
        c, "SELECT entity, version FROM ledger_reference_versions WHERE entity IN ({})", [LENIENT, *entities])}
    lenient = known.pop(LENIENT, None) is not None
    blocked = {str(r[0]) for r in select_in(
        c, "SELECT DISTINCT officer_id FROM ledger_dead_letters WHERE officer_id IN ({})", keys)}
    moved: dict[str, int] = {}
    kept = []
    for item in items:
        entity = reference_entity(item.event) if is_reference(item.event) else None
        if entity is None:
            kept.append(item)
            continue
        key, version = reference_key(item.event), int(item.event["version"])
        position = (item.source, item.part, item.offset)
        if key in blocked:
            dead[position] = (item, f"held back: reference entity {key} has an earlier dead letter")
            continue
        last = known.get(entity, version - 1 if lenient else 0)
        if version > last + 1:
            dead[position] = (item, f"version gap: {entity} expected {last + 1}, got {version}")
            blocked.add(str(key))
            continue
        if version == last + 1:
            known[entity] = moved[entity] = version
        kept.append(item)  # or a duplicate: every reference write ignores a repeated revision
    note(c, moved)
    return kept


def note(c: Cursor, versions: dict[str, int]) -> None:
    """Move entities' delivered versions up to these (never down), in key order."""
    c.executemany(
        "INSERT INTO ledger_reference_versions (entity, version) VALUES (?, ?) ON CONFLICT (entity) "
        "DO UPDATE SET version = excluded.version WHERE ledger_reference_versions.version < excluded.version",
        sorted(versions.items()),
    )


def note_versions(c: Cursor, events: Iterable[dict[str, Any]]) -> None:
    """After re-applying reference events from the store: their entities are at these versions."""
    versions: dict[str, int] = {}
    for event in events:
        entity = reference_entity(event) if is_reference(event) else None
        if entity is not None:
            versions[entity] = max(versions.get(entity, 0), int(event["version"]))
    note(c, versions)
