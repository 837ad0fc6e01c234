"""Issuing from the event store: an officer's signed credentials, or everyone's, in a stable order.

Reads the store, and of the read models only ``credential_status`` (each credential's
place in a status list, assigned in the log's order and brought up to date from the log
first), so the output depends on the events alone and is the same before and after
``ledger rebuild``. Order: officers by id; for each, one AchievementCredential per current
completion in business order, then the current ClrCredential holding them. An erased
officer gets nothing new. ``status_list`` signs a status list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ledger.credentials import build, proof, rules
from ledger.credentials.issuer import Issuer
from ledger.credentials.status import StatusLists, list_credential, status_entry
from ledger.domain.reference import Competency, Course
from ledger.events import to_public
from ledger.projections.credential_status import ACHIEVEMENT, CLR, Entry, entries_of
from ledger.store.db import Database
from ledger.write.application import Ledger


def json_line(credential: Mapping[str, Any]) -> str:
    """The one serialisation of a credential: compact, UTF-8, keys in the order built."""
    return json.dumps(credential, ensure_ascii=False, separators=(",", ":"))


def sign_credential(unsigned: dict[str, Any], issuer: Issuer) -> dict[str, Any]:
    """``unsigned`` signed by ``issuer``, after the same shape checks as the verifier's (rules)."""
    rules.check_credential(unsigned)
    return proof.sign(unsigned, issuer.private, issuer.verification_method, unsigned["validFrom"])


class CredentialIssuer:
    """Signs credentials for officers from the events of one ledger."""

    def __init__(self, ledger: Ledger, issuer: Issuer, db: Database | None = None) -> None:
        self.ledger = ledger
        self.issuer = issuer
        self.base = ledger.settings.public_base  # where the status lists are published
        self.status = StatusLists(ledger, db)
        self._reference: dict[tuple[str, str], dict[str, Any]] = {}

    def _first_event(self, kind: str, business_id: str) -> dict[str, Any]:
        """A course's or competency's defining event (neither is ever revised)."""
        key = (kind, business_id)
        if key not in self._reference:
            create_id = Course.create_id if kind == "course" else Competency.create_id
            events = self.ledger.events.get(create_id(business_id), lte=1)
            found = [to_public(e) for e in events]
            if not found:
                raise proof.CredentialError(f"{kind} {business_id!r} is not defined in the store")
            self._reference[key] = found[0]
        return self._reference[key]

    def course(self, course_id: str) -> dict[str, Any]:
        return self._first_event("course", course_id)

    def competency(self, competency_id: str) -> dict[str, Any]:
        return self._first_event("competency", competency_id)

    def for_officer(self, officer_id: str) -> list[dict[str, Any]] | None:
        """The officer's signed credentials ([] when erased or nothing completed; None when unknown)."""
        events = self.ledger.officer_events(officer_id)
        facts = build.officer_facts(officer_id, events)
        if facts is None:
            return None
        if facts.erased or not facts.completions:
            return []
        achievements, clr = self._current(facts, events)
        indexes = self.status.indexes(officer_id, [e.key for e in (*achievements.values(), clr)])
        profile = self.issuer.profile()
        signed = []
        for completion in facts.completions:
            status = status_entry(self.base, indexes[achievements[completion.event_id].key])
            unsigned = build.achievement_credential(
                facts, completion, profile, self.course(completion.course_id), self.competency, status=status
            )
            signed.append(self._sign(unsigned))
        clr_status = status_entry(self.base, indexes[clr.key])
        return [*signed, self._sign(build.clr_credential(facts, profile, signed, created_by=clr.event_id,
                                                         status=clr_status))]

    @staticmethod
    def _current(facts: build.OfficerFacts, events: list[dict[str, Any]]) -> tuple[dict[str, Entry], Entry]:
        """The officer's current AchievementCredentials (by completion event id) and ClrCredential."""
        live = [e for e in entries_of(events) if e.revoked_at is None]
        achievements = {e.event_id: e for e in live if e.kind == ACHIEVEMENT}
        clrs = [e for e in live if e.kind == CLR]
        if set(achievements) != {c.event_id for c in facts.completions} or not clrs:
            raise proof.CredentialError(f"{facts.officer_id}: the current credentials do not follow the "
                                        "business history's completions")
        return achievements, clrs[-1]

    def _sign(self, unsigned: dict[str, Any]) -> dict[str, Any]:
        return sign_credential(unsigned, self.issuer)

    def officer_ids(self) -> list[str]:
        """Every registered officer, sorted (from the store's log)."""
        return sorted({e["officer_id"] for _, e in self.ledger.iter_log(page=5000) if e["type"] == "OfficerRegistered"})

    def export(self) -> Iterator[dict[str, Any]]:
        """Every officer's credentials, officers in id order."""
        self.status.catch_up()  # once, rather than for the first officer of each later write
        for officer_id in self.officer_ids():
            yield from self.for_officer(officer_id) or []

    def status_list(self, list_no: int) -> dict[str, Any] | None:
        """Status list ``list_no``, signed (None when no credential has a place in it)."""
        state = self.status.state(list_no)
        if state is None:
            return None
        valid_from, revoked = state
        return self._sign(list_credential(self.base, list_no, valid_from, revoked, self.issuer.profile()))
