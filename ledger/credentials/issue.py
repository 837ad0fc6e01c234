"""Issuing from the event store: an officer's signed credentials, or everyone's, in a stable order.

Reads the store only (never a read model), so the output depends on the events alone
and is the same before and after ``ledger rebuild``. Order: officers by id; for each,
one AchievementCredential per completion in the order of the officer's events, then
the ClrCredential holding them. An erased officer gets nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ledger.credentials import build, proof, rules
from ledger.credentials.issuer import Issuer
from ledger.domain.reference import Competency, Course
from ledger.events import to_public
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

    def __init__(self, ledger: Ledger, issuer: Issuer) -> None:
        self.ledger = ledger
        self.issuer = issuer
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
        facts = build.officer_facts(officer_id, self.ledger.officer_events(officer_id))
        if facts is None:
            return None
        if facts.erased or not facts.completions:
            return []
        profile = self.issuer.profile()
        signed = []
        for completion in facts.completions:
            unsigned = build.achievement_credential(
                facts, completion, profile, self.course(completion.course_id), self.competency
            )
            signed.append(self._sign(unsigned))
        return [*signed, self._sign(build.clr_credential(facts, profile, signed))]

    def _sign(self, unsigned: dict[str, Any]) -> dict[str, Any]:
        return sign_credential(unsigned, self.issuer)

    def officer_ids(self) -> list[str]:
        """Every registered officer, sorted (from the store's log)."""
        return sorted({e["officer_id"] for _, e in self.ledger.iter_log(page=5000) if e["type"] == "OfficerRegistered"})

    def export(self) -> Iterator[dict[str, Any]]:
        """Every officer's credentials, officers in id order."""
        for officer_id in self.officer_ids():
            yield from self.for_officer(officer_id) or []
