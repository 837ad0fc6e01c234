"""The officer aggregate: registration, postings and the life of each enrolment.

Command methods check every rule first and trigger at most one event, so a
rejected command leaves the officer exactly as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import OfficerErasedError, RuleViolation, TimeRunsBackwards
from ledger.domain.ids import aggregate_id
from ledger.domain.reference import Course, Organisation, Post
from ledger.domain.values import format_instant, parse_instant

ENROLLED, COMPLETED, WITHDRAWN = "enrolled", "completed", "withdrawn"


def _check_post(org: Organisation, post: Post | None, post_id: str | None) -> None:
    if post_id is None:
        return
    if post is None:
        raise RuleViolation(f"post_id: post {post_id!r} is not defined")
    if post.org_id != org.org_id:
        raise RuleViolation(
            f"post_id: post {post_id!r} belongs to {post.org_id!r}, not {org.org_id!r}"
        )


class Officer(Aggregate):
    """One officer's career and learning, as a stream of facts."""

    @staticmethod
    def create_id(officer_id: str) -> UUID:
        return aggregate_id("officer", officer_id)

    # ---- events -------------------------------------------------------------

    @event("OfficerRegistered")
    def __init__(
        self,
        officer_id: str,
        name_ct: str,
        email_ct: str,
        org_id: str,
        ministry_id: str,
        post_id: str | None,
        occurred_at: str,
        event_id: str,
    ) -> None:
        self.officer_id = officer_id
        self.name_ct = name_ct
        self.email_ct = email_ct
        self.org_id = org_id
        self.ministry_id = ministry_id
        self.post_id = post_id
        self.latest_at = occurred_at
        self.erased = False
        self.enrolments: dict[str, dict[str, Any]] = {}

    @event("OfficerTransferred")
    def _transferred(
        self,
        officer_id: str, org_id: str, ministry_id: str, post_id: str | None, occurred_at: str, event_id: str
    ) -> None:
        self.org_id = org_id
        self.ministry_id = ministry_id
        self.post_id = post_id
        self.latest_at = occurred_at

    @event("CourseEnrolled")
    def _enrolled(
        self,
        officer_id: str, course_id: str, occurred_at: str, event_id: str) -> None:
        self.enrolments[course_id] = {
            "status": ENROLLED,
            "progress": 0,
            "attempts": 0,
            "passed": False,
        }
        self.latest_at = occurred_at

    @event("ProgressRecorded")
    def _progressed(
        self,
        officer_id: str, course_id: str, percent: int, occurred_at: str, event_id: str) -> None:
        self.enrolments[course_id]["progress"] = percent
        self.latest_at = occurred_at

    @event("AssessmentAttempted")
    def _attempted(
        self,
        officer_id: str,
        course_id: str,
        score: float,
        passed: bool,
        attempt: int,
        occurred_at: str,
        event_id: str,
    ) -> None:
        enrolment = self.enrolments[course_id]
        enrolment["attempts"] = attempt
        enrolment["passed"] = enrolment["passed"] or passed
        self.latest_at = occurred_at

    @event("CourseCompleted")
    def _completed(
        self,
        officer_id: str,
        course_id: str,
        duration_hours: float,
        competencies: list[dict[str, Any]],
        occurred_at: str,
        event_id: str,
    ) -> None:
        self.enrolments[course_id]["status"] = COMPLETED
        self.latest_at = occurred_at

    @event("CourseWithdrawn")
    def _withdrawn(
        self,
        officer_id: str, course_id: str, occurred_at: str, event_id: str) -> None:
        self.enrolments[course_id]["status"] = WITHDRAWN
        self.latest_at = occurred_at

    @event("OfficerErased")
    def _erased(
        self,
        officer_id: str, reason: str, occurred_at: str, event_id: str) -> None:
        self.erased = True
        self.name_ct = ""
        self.email_ct = ""

    # ---- commands -----------------------------------------------------------

    @classmethod
    def register(
        cls,
        officer_id: str,
        name_ct: str,
        email_ct: str,
        org: Organisation,
        post: Post | None,
        post_id: str | None,
        occurred_at: datetime,
    ) -> Officer:
        """Register an officer in an organisation, optionally on a post of it."""
        _check_post(org, post, post_id)
        return cls(
            officer_id=officer_id,
            name_ct=name_ct,
            email_ct=email_ct,
            org_id=org.org_id,
            ministry_id=org.ministry_id,
            post_id=post_id,
            occurred_at=format_instant(occurred_at),
            event_id=str(uuid4()),
        )

    def _check_time(self, occurred_at: datetime) -> str:
        if self.erased:
            raise OfficerErasedError(f"officer_id: officer {self.officer_id!r} was erased")
        # latest_at is what format_instant wrote (isoformat), so it needs no validation.
        latest = datetime.fromisoformat(self.latest_at)
        if occurred_at < latest:
            raise TimeRunsBackwards(
                f"occurred_at: {format_instant(occurred_at)} is earlier than this officer's "
                f"latest event ({self.latest_at})"
            )
        return format_instant(occurred_at)

    def _enrolment(self, course_id: str) -> dict[str, Any]:
        enrolment = self.enrolments.get(course_id)
        if enrolment is None or enrolment["status"] != ENROLLED:
            state = "no enrolment" if enrolment is None else f"enrolment is {enrolment['status']}"
            raise RuleViolation(f"course_id: {state} in course {course_id!r}, not enrolled")
        return enrolment

    def transfer(
        self, org: Organisation, post: Post | None, post_id: str | None, occurred_at: datetime
    ) -> None:
        """Move the officer to another organisation and/or post."""
        at = self._check_time(occurred_at)
        _check_post(org, post, post_id)
        if org.org_id == self.org_id and post_id == self.post_id:
            raise RuleViolation("org_id: officer is already in that organisation and post")
        self._transferred(
            officer_id=self.officer_id,
            org_id=org.org_id,
            ministry_id=org.ministry_id,
            post_id=post_id,
            occurred_at=at,
            event_id=str(uuid4()),
        )

    def enrol(self, course: Course, occurred_at: datetime) -> None:
        """Enrol in a course; after a withdrawal this starts afresh."""
        at = self._check_time(occurred_at)
        current = self.enrolments.get(course.course_id)
        if current is not None and current["status"] in (ENROLLED, COMPLETED):
            raise RuleViolation(
                f"course_id: already {current['status']} in course {course.course_id!r}"
            )
        self._enrolled(officer_id=self.officer_id, course_id=course.course_id, occurred_at=at, event_id=str(uuid4()))

    def record_progress(self, course_id: str, percent: int, occurred_at: datetime) -> bool:
        """Record progress; a percent not above the current one changes nothing (False)."""
        at = self._check_time(occurred_at)
        enrolment = self._enrolment(course_id)
        if percent <= enrolment["progress"]:
            return False
        self._progressed(officer_id=self.officer_id, course_id=course_id, percent=percent, occurred_at=at, event_id=str(uuid4()))
        return True

    def attempt_assessment(self, course: Course, score: float, occurred_at: datetime) -> bool:
        """Record an assessment attempt; returns whether it passed."""
        at = self._check_time(occurred_at)
        enrolment = self._enrolment(course.course_id)
        if course.assessment is None:
            raise RuleViolation(f"course_id: course {course.course_id!r} has no assessment")
        if enrolment["passed"]:
            raise RuleViolation(f"course_id: assessment of {course.course_id!r} already passed")
        if enrolment["attempts"] >= course.assessment["max_attempts"]:
            raise RuleViolation(
                f"score: all {course.assessment['max_attempts']} attempts at "
                f"{course.course_id!r} are used up"
            )
        passed = score >= course.assessment["pass_mark"]
        self._attempted(
            officer_id=self.officer_id,
            course_id=course.course_id,
            score=float(score),
            passed=passed,
            attempt=enrolment["attempts"] + 1,
            occurred_at=at,
            event_id=str(uuid4()),
        )
        return passed

    def complete(self, course: Course, occurred_at: datetime) -> None:
        """Complete a course: progress at 100 and any assessment passed."""
        at = self._check_time(occurred_at)
        enrolment = self._enrolment(course.course_id)
        if enrolment["progress"] < 100:
            raise RuleViolation(
                f"course_id: progress in {course.course_id!r} is {enrolment['progress']}, "
                "below 100"
            )
        if course.assessment is not None and not enrolment["passed"]:
            raise RuleViolation(
                f"course_id: the assessment of {course.course_id!r} has not been passed"
            )
        self._completed(
            officer_id=self.officer_id,
            course_id=course.course_id,
            duration_hours=course.duration_hours,
            competencies=course.competencies,
            occurred_at=at,
            event_id=str(uuid4()),
        )

    def withdraw(self, course_id: str, occurred_at: datetime) -> None:
        """Withdraw from a course the officer is enrolled in."""
        at = self._check_time(occurred_at)
        self._enrolment(course_id)
        self._withdrawn(officer_id=self.officer_id, course_id=course_id, occurred_at=at, event_id=str(uuid4()))

    def erase(self, reason: str, occurred_at: datetime) -> None:
        """Record that the officer's personal data was destroyed (DPDP erasure)."""
        if self.erased:
            raise OfficerErasedError(f"officer_id: officer {self.officer_id!r} was erased")
        at = max(occurred_at, parse_instant(self.latest_at))
        self._erased(officer_id=self.officer_id, reason=reason, occurred_at=format_instant(at), event_id=str(uuid4()))
