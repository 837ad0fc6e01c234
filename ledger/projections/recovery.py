"""Recovering from dead letters: re-apply what was held back, from the event store.

A dead letter holds back every later event of its officer (see ``runner``). Once the
cause is gone (a codec fixed, a store repaired, or a rebuild done), ``retry`` brings
each such officer's documents up to the store and deletes its dead letters.

The events come from the store, the system of record, never from the dead-letter
rows: in embedded mode a row's position is a notification id, in Kafka mode a topic
offset, and only an undecodable Kafka message keeps its raw bytes (``payload``,
base64); a held-back or gapped event keeps nothing. So for each officer the whole
stream is read from the store and handed to every projection's normal
``apply_batch``, exactly as a rebuild would fold it. Each document remembers its last
applied version, so only the events after it change anything, and the cross-officer
aggregates (headcount, per-year counts, distinct completers) count every event
exactly once.

One officer is one read-model transaction, under the runner's read-model lock: the
store is read only once the lock is held, and the consumer writes dead letters only
under that lock, after reading their events from the store (embedded) or from a
topic that only ever carries stored events (Kafka). So every event behind every dead
letter being cleared is in what was read. The live consumer then finds the
document at the store's version, is no longer blocked, and skips as duplicates the
events it delivers again. Positions are left alone. Applying an officer's events
ahead of the consumer is safe: the aggregates are sums and sets, whatever the order
across officers.

A projection that follows the log (credential status) is left alone: it took every
event of the store's log, in order, dead letters or not.

Nothing is changed for an officer whose stream in the store skips a version (the
cause persists: ``ledger verify`` tells more), or whose document is ahead of the
store (events vanished from the store); its dead letters stay.

Dead letters not under a registered officer:

- A key naming a reference entity (an undecodable message on the reference topic
  carries the post, course, competency or organisation id, or a plan's ``ministry:fy``,
  as its key), or a reference event that skipped a version or was held back: that entity's
  events are read from the store and applied again. Reference changes are idempotent
  (a post keeps its highest FRAC revision, a course its first publication, a
  ministry is a row), so this is harmless when nothing was missing. The same is done
  for any key that names both an officer and a reference entity.
- No key, or a key under which the store holds nothing: no stored event stands
  behind the message (the relay keys every message by its entity), so there is
  nothing to re-apply. Such dead letters are kept and reported as ``unmatched``, for
  a person to judge; they hold back no real officer.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from ledger.domain.ids import aggregate_id
from ledger.events import to_public
from ledger.projections import reference_gaps
from ledger.projections.base import OfficerDocProjection
from ledger.projections.runner import Runner
from ledger.store.db import Cursor

log = logging.getLogger("ledger.projections")

# The aggregate kinds a reference message's key can name (see ledger.kafka.client.route).
REFERENCE_KINDS = ("post", "course", "competency", "org", "plan")


@dataclass(frozen=True)
class Retried:
    """What a retry did for one officer (or message key) with dead letters."""

    officer_id: str | None
    kind: str  # "officer", "reference" or "unmatched"
    dead_letters: int
    applied: int  # officer events newly applied to at least one projection
    reapplied_reference: int  # reference events applied again (idempotent)
    cleared: bool
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Unrecoverable(Exception):
    """Raised inside the officer's transaction to roll back everything it did."""


def retry(ledger: Any, runner: Runner, officer_id: str | None = None) -> list[Retried]:
    """Re-apply the held-back events of every officer with dead letters (or only ``officer_id``).

    Returns one result per officer or message key; running it again once everything
    was recovered finds nothing to do and changes nothing.
    """
    with runner.db.reading() as c:
        keys = runner.dead_letter_counts(c, officer_id)
    return [_retry_one(ledger, runner, key) for key in keys]


def _retry_one(ledger: Any, runner: Runner, key: str | None) -> Retried:
    if key is None:
        with runner.db.reading() as c:
            count = runner.dead_letter_counts(c).get(None, 0)
        return Retried(None, "unmatched", count, 0, 0, False,
                       "the message has no key: no event in the store stands behind it (kept)")
    try:
        with runner.db.transaction() as c:
            runner.lock(c)
            result = _recover(c, ledger, runner, key)
    except _Unrecoverable as exc:
        with runner.db.reading() as c:
            count = runner.dead_letter_counts(c, key).get(key, 0)
        log.warning("dead letters of %s kept: %s", key, exc)
        return Retried(key, "officer", count, 0, 0, False, str(exc))
    if result.cleared:
        log.info("dead letters of %s cleared: %d events applied", key, result.applied)
    return result


def _recover(c: Cursor, ledger: Any, runner: Runner, key: str) -> Retried:
    """Inside the locked transaction: fold the store into the documents, then clear."""
    count = runner.dead_letter_counts(c, key).get(key, 0)
    if count == 0:  # another retry got there first
        return Retried(key, "officer", 0, 0, 0, True)
    # Read only now, under the lock: see the module docstring.
    events = ledger.officer_events(key)
    reference = [to_public(e) for kind in REFERENCE_KINDS for e in ledger.events.get(aggregate_id(kind, key))]
    if not events and not reference:
        return Retried(key, "unmatched", count, 0, 0, False,
                       f"the store holds no officer or reference entity {key!r}: nothing to re-apply (kept)")
    applied = _fold_officer(c, runner, key, events) if events else 0
    if reference:
        for projection in runner.projections:
            if not projection.follows_log:  # it took every event of the log, dead letters or not
                projection.apply_batch(c, reference)
        reference_gaps.note_versions(c, reference)  # the entity is at the store's version now
    runner.clear_dead_letters(c, key)
    return Retried(key, "officer" if events else "reference", count, applied, len(reference), True)


def _fold_officer(c: Cursor, runner: Runner, officer_id: str, events: list[dict[str, Any]]) -> int:
    """Apply the officer's stored events after each document's version; returns how many were new."""
    for expected, event in enumerate(events, start=1):
        if event["version"] != expected:
            raise _Unrecoverable(
                f"the store's events skip a version (expected {expected}, got {event['version']}): "
                "the cause persists, see `ledger verify`"
            )
    last = len(events)
    before = [
        projection.load_docs(c, [officer_id]).get(officer_id, (0, None))[0]
        for projection in runner.projections
        if isinstance(projection, OfficerDocProjection)
    ]
    if max(before, default=0) > last:
        raise _Unrecoverable(
            f"a read model is at version {max(before)} but the store holds only {last} events: "
            "events are missing from the store, see `ledger verify`"
        )
    for projection in runner.projections:
        # The normal path: versions at or below the document's are skipped, so each
        # event reaches the aggregates once, whatever this projection had applied.
        if not projection.follows_log and projection.apply_batch(c, events):
            raise _Unrecoverable(f"projection {projection.name} refused the store's events")
    return last - min(before, default=0)
