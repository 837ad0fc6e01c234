"""Issuing from the event store: an officer's signed credentials, or everyone's, in a stable order.

Reads the store, and of the read models only ``credential_status`` (each credential's
place in a status list, assigned in the log's order and brought up to date from the log
first), so the output depends on the events alone and is the same before and after
``ledger rebuild``. Order: officers by id; for each, one AchievementCredential per current
completion in business order, then the current ClrCredential holding them. An erased
officer gets nothing new. ``status_list`` signs a status list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

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


def digest(document: Mapping[str, Any]) -> str:
    """The sha256 of a document's one serialisation (what a signature is remembered by)."""
    return hashlib.sha256(json_line(document).encode("utf-8")).hexdigest()


def sign_credential(unsigned: dict[str, Any], issuer: Issuer) -> dict[str, Any]:
    """``unsigned`` signed by ``issuer``, after the same shape checks as the verifier's (rules)."""
    rules.check_credential(unsigned)
    return proof.sign(unsigned, issuer.private, issuer.verification_method, unsigned["validFrom"])


class Indexes(Protocol):
    """Where each credential's status list index comes from (the ``credential_status`` read model)."""

    def indexes(self, officer_id: str, needed: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]: ...


class CredentialIssuer:
    """Signs credentials for officers from the events of one ledger.

    ``status``: where indexes are read (default: the read model, brought up to date from
    the log). ``signatures``: signed documents by the digest of the unsigned one, reused
    instead of signing again (Ed25519 is deterministic, so a reused one is the same bytes).
    """

    def __init__(self, ledger: Ledger, issuer: Issuer, db: Database | None = None,
                 status: Indexes | None = None, signatures: dict[str, dict[str, Any]] | None = None) -> None:
        self.ledger = ledger
        self.issuer = issuer
        self.base = ledger.settings.public_base  # where the status lists are published
        self.lists = StatusLists(ledger, db) if status is None else None
        self.status: Indexes = status if status is not None else self.lists  # type: ignore[assignment]
        self.signatures = signatures
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

    def for_officer(self, officer_id: str, events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]] | None:
        """The officer's signed credentials ([] when erased or nothing completed; None when unknown).

        ``events``: the officer's events to issue from (default: all the store holds).
        """
        if events is None:
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
        if self.signatures is None:
            return sign_credential(unsigned, self.issuer)
        key = digest(unsigned)
        signed = self.signatures.get(key)
        if signed is None:
            signed = self.signatures[key] = sign_credential(unsigned, self.issuer)
        return signed

    def officer_ids(self) -> list[str]:
        """Every registered officer, sorted (from the store's log)."""
        return sorted({e["officer_id"] for _, e in self.ledger.iter_log(page=5000) if e["type"] == "OfficerRegistered"})

    def export(self) -> Iterator[dict[str, Any]]:
        """Every officer's credentials, officers in id order."""
        if self.lists is not None:
            self.lists.catch_up()  # once, rather than for the first officer of each later write
        for officer_id in self.officer_ids():
            yield from self.for_officer(officer_id) or []

    def status_list(self, list_no: int) -> dict[str, Any] | None:
        """Status list ``list_no``, signed (None when no credential has a place in it)."""
        if self.lists is None:
            raise proof.CredentialError("status lists are read from the read model: this issuer has none")
        state = self.lists.state(list_no)
        if state is None:
            return None
        valid_from, revoked = state
        return self.sign_list(list_no, valid_from, revoked)

    def unsigned_list(self, list_no: int, valid_from: str, revoked: list[int]) -> dict[str, Any]:
        return list_credential(self.base, list_no, valid_from, revoked, self.issuer.profile())

    def sign_list(self, list_no: int, valid_from: str, revoked: list[int]) -> dict[str, Any]:
        """Status list ``list_no`` in the given state, signed."""
        return self._sign(self.unsigned_list(list_no, valid_from, revoked))
