"""Reading the store for reviewers: history, a record as of an instant, chain checks, counts.

These read the event store itself (not the read models), so they answer from the
system of record even when projections lag. Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain.history import late_versions, retracted_by
from ledger.domain.officer import Officer
from ledger.events import to_public
from ledger.integrity.chain import verify_chain
from ledger.projections import record as record_fold
from ledger.store.db import Database
from ledger.store.receipts import ACTORS, Actor
from ledger.write.application import Ledger

_ENTITY_FIELDS = ("officer_id", "post_id", "course_id", "competency_id", "org_id")


def correction_actors(db: Database, officer_id: str) -> dict[int, Actor]:
    """Who made each of the officer's retractions and detail corrections, by the event's version:
    a token's role and name, or ``cli`` without a name (for auditors: token names are staff identities)."""
    with db.reading() as c:
        c.execute(f"SELECT officer_id, version, role, token_name FROM {ACTORS} WHERE officer_id = ?", (officer_id,))
        rows = c.fetchall()
    return {int(version): Actor(officer, int(version), role, name) for officer, version, role, name in rows}


class AuditReader:
    """Audit queries over one ledger's event store."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def history(self, officer_id: str) -> list[dict[str, Any]]:
        """History for reviewers: every event, retracted ones included, in version order.

        Personal fields are decrypted while possible. A retracted event carries
        ``retracted_by`` (the retraction's version); an event whose occurred_at is earlier
        than that of an event with a lower version carries ``late: true``.
        """
        decrypt = self.ledger.decrypter(officer_id)
        events = self.ledger.officer_events(officer_id)
        retracted = retracted_by(events)
        late = late_versions(events)
        out = []
        for event in events:
            event = dict(event)
            for field in ("name", "email"):
                if f"{field}_ct" in event:
                    ciphertext = event.pop(f"{field}_ct")
                    if event["type"] == "OfficerRegistered" or ciphertext is not None:
                        event[field] = None if ciphertext is None else decrypt(field, ciphertext)
            if event["version"] in retracted:
                event["retracted_by"] = retracted[event["version"]]
            if event["version"] in late:
                event["late"] = True
            out.append(event)
        return out

    def record(self, officer_id: str, as_of: datetime | None = None,
               known_at: datetime | None = None) -> dict[str, Any] | None:
        """The learning record folded from the officer's business history as the ledger
        knew it at ``known_at`` (default now), up to business time ``as_of`` (default all)."""
        events = self.ledger.officer_events(officer_id)
        if not events:
            return None
        return record_fold.fold(officer_id, events, self.ledger.decrypter(officer_id), as_of, known_at)

    def event_counts(self) -> dict[str, int]:
        """How many events of each type the store holds."""
        counts: dict[str, int] = {}
        for _, event in self.ledger.iter_log():
            counts[event["type"]] = counts.get(event["type"], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def verify(self, officer_id: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Recompute hash chains: one officer's, or every entity's and the whole log's.

        Returns how many aggregates were checked and every break found, each with
        the entity it belongs to, the version, and what is wrong (and, for a break
        of the log chain, the log position).
        """
        recorder: Any = self.ledger.recorder
        if officer_id is not None:
            originators = [Officer.create_id(officer_id).hex]
        else:
            originators = sorted(recorder.originators())
        breaks: list[dict[str, Any]] = []
        for originator in originators:
            stored = recorder.select_events(UUID(originator))
            found = verify_chain(stored, recorder.select_chain(originator), originator)
            if not found:
                continue
            entity = officer_id or self._entity_of(stored) or originator
            breaks += [
                {"entity": entity, "version": b.version, "problem": b.problem} for b in found
            ]
        if officer_id is None:
            from ledger.integrity.checkpoint import verify_log

            _, log_breaks = verify_log(recorder)
            names: dict[str, str] = {}
            for b in log_breaks:
                if b.originator not in names:
                    names[b.originator] = (
                        self._entity_of(self._stored(b.originator)) or b.originator
                    )
                breaks.append(
                    {
                        "entity": names[b.originator],
                        "version": b.version,
                        "problem": b.problem,
                        "position": b.position,
                    }
                )
        return len(originators), breaks

    def _stored(self, originator: str) -> list[Any]:
        try:
            return list(self.ledger.recorder.select_events(UUID(originator)))
        except ValueError:
            return []

    def _entity_of(self, stored: list[Any]) -> str | None:
        for s in stored:
            try:
                event = to_public(self.ledger.mapper.to_domain_event(s))
            except Exception:  # an altered event may not even decode
                continue
            for field in _ENTITY_FIELDS:
                if event.get(field):
                    return f"{field}={event[field]}"
        return None
