"""The officer aggregate: the officer's events in the store, its rules in ``history``.

The rules are the pure functions of :mod:`ledger.domain.history`; this aggregate only
gives them a place in the event store. Each event is kept in ``log`` (its public
fields and version) and folded into ``state``, the end of the officer's business
history: an event that lands at the end is evolved into it, a late one or a retraction
re-folds the log. A command is decided against the state when it lands at the end, and
against the whole log (inserted at its ``occurred_at``) when it is late, so a rejected
command triggers no event and leaves the officer exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import OfficerErasedError
from ledger.domain.history import (
    RETRACTION,
    EnrolmentState,
    OfficerState,
    Reference,
    SameAsInForce,
    accept,
    decide,
    evolve,
    fold,
    instant,
    is_late,
)
from ledger.domain.ids import aggregate_id
from ledger.domain.values import format_instant

ENROLLED, COMPLETED, WITHDRAWN = "enrolled", "completed", "withdrawn"


class Officer(Aggregate):
    """One officer's career and learning, as a stream of facts."""

    @staticmethod
    def create_id(officer_id: str) -> UUID:
        return aggregate_id("officer", officer_id)

    # ---- events (each recorded in the log, then folded into the state) -------------

    @event("OfficerRegistered")
    def __init__(
        self, officer_id: str, name_ct: str, email_ct: str, org_id: str, ministry_id: str,
        post_id: str | None, occurred_at: str, event_id: str,
    ) -> None:
        self.officer_id = officer_id
        self.log: list[dict[str, Any]] = []
        self.state = OfficerState(officer_id)
        self._record("OfficerRegistered", officer_id=officer_id, name_ct=name_ct, email_ct=email_ct,
                     org_id=org_id, ministry_id=ministry_id, post_id=post_id, occurred_at=occurred_at,
                     event_id=event_id)

    @event("OfficerTransferred")
    def _transferred(
        self, officer_id: str, org_id: str, ministry_id: str, post_id: str | None, occurred_at: str, event_id: str
    ) -> None:
        self._record("OfficerTransferred", officer_id=officer_id, org_id=org_id, ministry_id=ministry_id,
                     post_id=post_id, occurred_at=occurred_at, event_id=event_id)

    @event("CourseEnrolled")
    def _enrolled(self, officer_id: str, course_id: str, occurred_at: str, event_id: str) -> None:
        self._record("CourseEnrolled", officer_id=officer_id, course_id=course_id, occurred_at=occurred_at,
                     event_id=event_id)

    @event("ProgressRecorded")
    def _progressed(self, officer_id: str, course_id: str, percent: int, occurred_at: str, event_id: str) -> None:
        self._record("ProgressRecorded", officer_id=officer_id, course_id=course_id, percent=percent,
                     occurred_at=occurred_at, event_id=event_id)

    @event("AssessmentAttempted")
    def _attempted(
        self, officer_id: str, course_id: str, score: float, passed: bool, attempt: int, occurred_at: str,
        event_id: str,
    ) -> None:
        self._record("AssessmentAttempted", officer_id=officer_id, course_id=course_id, score=score,
                     passed=passed, attempt=attempt, occurred_at=occurred_at, event_id=event_id)

    @event("CourseCompleted")
    def _completed(
        self, officer_id: str, course_id: str, duration_hours: float, competencies: list[dict[str, Any]],
        occurred_at: str, event_id: str,
    ) -> None:
        self._record("CourseCompleted", officer_id=officer_id, course_id=course_id,
                     duration_hours=duration_hours, competencies=competencies, occurred_at=occurred_at,
                     event_id=event_id)

    @event("CourseWithdrawn")
    def _withdrawn(self, officer_id: str, course_id: str, occurred_at: str, event_id: str) -> None:
        self._record("CourseWithdrawn", officer_id=officer_id, course_id=course_id, occurred_at=occurred_at,
                     event_id=event_id)

    @event("OfficerDetailsCorrected")
    def _details_corrected(
        self, officer_id: str, name_ct: str | None, email_ct: str | None, occurred_at: str, event_id: str
    ) -> None:
        self._record("OfficerDetailsCorrected", officer_id=officer_id, name_ct=name_ct, email_ct=email_ct,
                     occurred_at=occurred_at, event_id=event_id)

    @event("EventsRetracted")
    def _retracted(
        self, officer_id: str, versions: list[int], reason: str, ticket: str | None, occurred_at: str,
        event_id: str,
    ) -> None:
        self._record(RETRACTION, officer_id=officer_id, versions=versions, reason=reason, ticket=ticket,
                     occurred_at=occurred_at, event_id=event_id)

    @event("OfficerErased")
    def _erased(self, officer_id: str, reason: str, occurred_at: str, event_id: str,
                ticket: str | None = None) -> None:
        self._record("OfficerErased", officer_id=officer_id, reason=reason, ticket=ticket,
                     occurred_at=occurred_at, event_id=event_id)

    def _record(self, kind: str, **fields: Any) -> None:
        recorded = {"type": kind, "version": len(self.log) + 1, **fields}
        self.log.append(recorded)
        if kind == RETRACTION or is_late(self.state, instant(recorded)):
            self.state = fold(self.log)  # the history changed before its end
        else:
            self.state = evolve(self.state, recorded)

    # ---- the state, as the rest of the ledger reads it -----------------------------

    @property
    def erased(self) -> bool:
        return self.state.erased

    @property
    def org_id(self) -> str:
        assert self.state.org_id is not None  # set by the registration, version 1
        return self.state.org_id

    @property
    def ministry_id(self) -> str:
        assert self.state.ministry_id is not None  # set by the registration, version 1
        return self.state.ministry_id

    @property
    def post_id(self) -> str | None:
        return self.state.post_id

    @property
    def enrolments(self) -> Mapping[str, EnrolmentState]:
        return self.state.enrolments

    # ---- commands ------------------------------------------------------------------

    @classmethod
    def register(cls, fields: Mapping[str, Any], ref: Reference) -> Officer:
        """Register an officer (``fields`` with ``name_ct`` and ``email_ct``, already encrypted)."""
        body = decide(OfficerState(fields["officer_id"]), "register_officer", fields, ref)
        assert body is not None and body.pop("type") == "OfficerRegistered"
        return cls(**body, event_id=str(uuid4()))

    def execute(self, command_type: str, fields: Mapping[str, Any], ref: Reference,
                same_as_in_force: SameAsInForce | None = None) -> bool:
        """Apply an officer command: False when it is accepted and changes nothing
        (progress not above the current one). Raises the broken rule's domain error."""
        if command_type == "retract" or is_late(self.state, fields["occurred_at"]):
            body = accept(self.log, command_type, fields, ref, same_as_in_force)
        else:
            body = decide(self.state, command_type, fields, ref, same_as_in_force)
        if body is None:
            return False
        trigger = _TRIGGERS[body.pop("type")]
        trigger(self, **body, event_id=str(uuid4()))
        return True


    def erase(self, reason: str, ticket: str | None, now: datetime) -> None:
        """Record that the officer's personal data was destroyed (DPDP erasure): last in
        business order, whatever the clock says (nothing may follow an erasure)."""
        if self.erased:
            raise OfficerErasedError(f"officer_id: officer {self.officer_id!r} was erased")
        at = now if self.state.last_at is None else max(now, self.state.last_at)
        self._erased(officer_id=self.officer_id, reason=reason, ticket=ticket, occurred_at=format_instant(at),
                     event_id=str(uuid4()))


_TRIGGERS: dict[str, Callable[..., None]] = {
    "OfficerTransferred": Officer._transferred,
    "CourseEnrolled": Officer._enrolled,
    "ProgressRecorded": Officer._progressed,
    "AssessmentAttempted": Officer._attempted,
    "CourseCompleted": Officer._completed,
    "CourseWithdrawn": Officer._withdrawn,
    "OfficerDetailsCorrected": Officer._details_corrected,
    RETRACTION: Officer._retracted,
}
