"""Credential status (DOMAIN.md "Portable credentials", Revocation): each credential's place in
a revocation list, assigned once in log order, and whether it is revoked.

Which credentials an officer's events create and revoke is a pure rule (:func:`step`), the
same for this projection and for the issuer (:func:`entries_of`):

- a ``CourseCompleted`` creates the completion's AchievementCredential, then the officer's
  new ClrCredential (the set of current completions changed);
- an ``EventsRetracted`` that retracts completions revokes their AchievementCredentials and
  every ClrCredential that held one of them (each created at or after the first of them,
  in the officer's version order), then creates the officer's new ClrCredential without
  them, when any completion is left;
- nothing else creates or revokes anything (erasure neither: the credentials hold no
  personal data).

A credential is known by the officer, the version of the event that created it and its
kind. Its index is the next free one when that event is applied: indexes are dense, in
log order, so the same log gives the same indexes, also after ``ledger rebuild`` (which
folds this projection in log order). List ``n`` holds indexes ``n * LIST_SIZE`` to
``(n + 1) * LIST_SIZE - 1``.

The projection follows the store's notification log, never a topic: the order across
officers is the log's (see ``Runner``). It keeps three tables, each read by its key:

- ``rm_credential_status``: per credential (officer, version, kind): index, the creating
  event's id, when it was revoked (the retraction's ``recorded_at``);
- ``rm_credential_revoked``: the revoked indexes (a list's set bits);
- ``rm_credential_lists``: per list, how many indexes are assigned and when it last
  changed (``recorded_at`` of its first assignment, then of each revocation in it).

Only completions and retractions cost anything: a batch without them reads and writes
nothing; one with them reads the last list's row and those officers' credentials (by key),
so an event delivered again (positions lost) is recognised and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.projections.base import Gap, Projection, select_in
from ledger.projections.business import RETRACTION
from ledger.store.db import Cursor

ACHIEVEMENT = "AchievementCredential"
CLR = "ClrCredential"
COMPLETED = "CourseCompleted"
# Entries per list: the specification's minimum (16 KB of bits), for herd privacy.
LIST_SIZE = 131_072
STATUS = "rm_credential_status"
REVOKED = "rm_credential_revoked"
LISTS = "rm_credential_lists"


@dataclass
class Entry:
    """One credential's status: created by the officer's event ``version`` (``event_id``)."""

    officer_id: str
    version: int
    kind: str
    event_id: str
    index: int = -1  # assigned by the projection
    revoked_at: str | None = None

    @property
    def key(self) -> tuple[int, str]:
        return self.version, self.kind


def step(held: Sequence[Entry], event: dict[str, Any]) -> tuple[list[Entry], list[Entry]]:
    """The credentials ``event`` creates and those it revokes, given the officer's before it
    (``held``, in version order, revoked ones included)."""
    kind = event["type"]
    officer_id, version, event_id = event["officer_id"], event["version"], str(event["event_id"])
    if kind == COMPLETED:
        return [Entry(officer_id, version, ACHIEVEMENT, event_id), Entry(officer_id, version, CLR, event_id)], []
    if kind != RETRACTION:
        return [], []
    versions = set(event["versions"])
    live = [e for e in held if e.revoked_at is None]
    gone = [e for e in live if e.kind == ACHIEVEMENT and e.version in versions]
    if not gone:
        return [], []
    first = min(e.version for e in gone)
    revoked = [*gone, *(e for e in live if e.kind == CLR and e.version >= first)]
    left = any(e.kind == ACHIEVEMENT and e.version not in versions for e in live)
    return ([Entry(officer_id, version, CLR, event_id)] if left else []), revoked


def entries_of(events: Iterable[dict[str, Any]]) -> list[Entry]:
    """Every credential an officer's events (versions ascending) created, in order, those
    revoked marked (``revoked_at`` of the retraction); indexes are not known here."""
    held: list[Entry] = []
    for event in events:
        created, revoked = step(held, event)
        for entry in revoked:
            entry.revoked_at = event["recorded_at"]
        held.extend(created)
    return held


@dataclass
class _Batch:
    """One batch's changes: entries by officer (loaded for officers with a retraction), the
    next free index, and what to write."""

    next_index: int
    held: dict[str, list[Entry]] = field(default_factory=dict)
    new: list[Entry] = field(default_factory=list)
    revoked: list[Entry] = field(default_factory=list)
    created_at: dict[int, str] = field(default_factory=dict)  # new lists: their first assignment
    changed_at: dict[int, str] = field(default_factory=dict)  # lists with a revocation: the last one

    def apply(self, event: dict[str, Any]) -> None:
        held = self.held.setdefault(event["officer_id"], [])
        if any(e.version == event["version"] for e in held):
            return  # delivered before (a replay without positions): its credentials are there
        created, revoked = step(held, event)
        at = event["recorded_at"]
        for entry in created:
            entry.index = self.next_index
            self.next_index += 1
            self.created_at.setdefault(entry.index // LIST_SIZE, at)
        for entry in revoked:
            entry.revoked_at = at
            self.changed_at[entry.index // LIST_SIZE] = at
        held.extend(created)
        self.new.extend(created)
        self.revoked.extend(revoked)


class CredentialStatusProjection(Projection):
    """The credentials' status list indexes and revocations, in log order."""

    name = "credential_status"
    follows_log = True
    log_types = (COMPLETED, RETRACTION)

    def tables(self) -> list[str]:
        return [STATUS, REVOKED, LISTS]

    def apply_batch(self, c: Cursor, events: list[dict[str, Any]], suffix: str = "", cache: Any = None) -> list[Gap]:
        relevant = [e for e in events if e["type"] in (COMPLETED, RETRACTION)]
        if not relevant:
            return []
        batch = _Batch(next_index(c, suffix))
        first_new_list = -(-batch.next_index // LIST_SIZE)  # lists from here have no entry yet
        # Their credentials so far: what a retraction revokes, and what was delivered before.
        for entry in officer_entries(c, sorted({e["officer_id"] for e in relevant}), suffix):
            batch.held.setdefault(entry.officer_id, []).append(entry)
        for event in relevant:
            batch.apply(event)
        _write(c, batch, first_new_list, suffix)
        return []


def next_index(c: Cursor, suffix: str = "") -> int:
    """The first index not assigned yet (lists fill in order)."""
    c.execute(f"SELECT list_no, entries FROM {LISTS}{suffix} ORDER BY list_no DESC LIMIT 1")
    row = c.fetchone()
    return 0 if row is None else int(row[0]) * LIST_SIZE + int(row[1])


def officer_entries(c: Cursor, officer_ids: Sequence[str], suffix: str = "") -> list[Entry]:
    """The officers' credentials, in version order (then achievement before CLR)."""
    rows = select_in(c, f"SELECT officer_id, version, kind, event_id, idx, revoked_at FROM {STATUS}{suffix} "
                        "WHERE officer_id IN ({})", officer_ids)
    entries = [Entry(r[0], int(r[1]), r[2], r[3], int(r[4]), r[5]) for r in rows]
    return sorted(entries, key=lambda e: (e.officer_id, e.index))


def _write(c: Cursor, batch: _Batch, first_new_list: int, suffix: str) -> None:
    fresh = {id(e) for e in batch.new}
    c.executemany(
        f"INSERT INTO {STATUS}{suffix} (officer_id, version, kind, event_id, idx, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(e.officer_id, e.version, e.kind, e.event_id, e.index, e.revoked_at) for e in batch.new],
    )
    updated = [(e.revoked_at, e.officer_id, e.version, e.kind) for e in batch.revoked if id(e) not in fresh]
    if updated:
        c.executemany(f"UPDATE {STATUS}{suffix} SET revoked_at = ? WHERE officer_id = ? AND version = ? AND kind = ?",
                      updated)
    if batch.revoked:
        c.executemany(f"INSERT INTO {REVOKED}{suffix} (idx, revoked_at) VALUES (?, ?)",
                      sorted((e.index, e.revoked_at) for e in batch.revoked))
    _write_lists(c, batch, first_new_list, suffix)


def _write_lists(c: Cursor, batch: _Batch, first_new_list: int, suffix: str) -> None:
    """Each touched list's assigned count (the last list, and any new ones) and when it changed."""
    last = batch.next_index - 1
    grown = {e.index // LIST_SIZE for e in batch.new}
    for n in sorted(grown):
        entries = min(last - n * LIST_SIZE + 1, LIST_SIZE)
        if n >= first_new_list:
            at = batch.changed_at.get(n, batch.created_at[n])
            c.execute(f"INSERT INTO {LISTS}{suffix} (list_no, entries, valid_from) VALUES (?, ?, ?)", (n, entries, at))
        else:
            c.execute(f"UPDATE {LISTS}{suffix} SET entries = ? WHERE list_no = ?", (entries, n))
    changed = [(at, n) for n, at in sorted(batch.changed_at.items()) if n < first_new_list]
    if changed:
        c.executemany(f"UPDATE {LISTS}{suffix} SET valid_from = ? WHERE list_no = ?", changed)


# ---- queries -----------------------------------------------------------------


def list_state(c: Cursor, list_no: int) -> tuple[str, list[int]] | None:
    """List ``list_no``: when it last changed and its revoked positions (None when it has no entry)."""
    c.execute(f"SELECT valid_from FROM {LISTS} WHERE list_no = ?", (list_no,))
    row = c.fetchone()
    if row is None:
        return None
    start = list_no * LIST_SIZE
    c.execute(f"SELECT idx FROM {REVOKED} WHERE idx >= ? AND idx < ? ORDER BY idx", (start, start + LIST_SIZE))
    return str(row[0]), [int(r[0]) - start for r in c.fetchall()]


def list_numbers(c: Cursor) -> list[int]:
    """The lists that hold at least one entry."""
    c.execute(f"SELECT list_no FROM {LISTS} ORDER BY list_no")
    return [int(r[0]) for r in c.fetchall()]
