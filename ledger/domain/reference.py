"""Reference data: organisations, competencies, FRAC posts and courses.

Each is an aggregate whose command methods check the spec's rules before any
event is triggered, so a rejected command leaves the aggregate untouched.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import AlreadyExists, InvalidCommand, RuleViolation
from ledger.domain.ids import aggregate_id

ORG_KINDS = ("ministry", "department", "organisation")
COMPETENCY_KINDS = ("behavioural", "functional", "domain")


class Organisation(Aggregate):
    """A ministry, a department (under a ministry) or an organisation (under either)."""

    @staticmethod
    def create_id(org_id: str) -> UUID:
        return aggregate_id("org", org_id)

    @event("OrganisationDefined")
    def __init__(
        self,
        org_id: str,
        name: str,
        kind: str,
        parent_id: str | None,
        ministry_id: str,
        occurred_at: str,
        event_id: str,
    ) -> None:
        self.org_id = org_id
        self.name = name
        self.kind = kind
        self.parent_id = parent_id
        self.ministry_id = ministry_id

    @classmethod
    def define(
        cls,
        org_id: str,
        name: str,
        kind: str,
        parent: Organisation | None,
        parent_id: str | None,
        occurred_at: str,
    ) -> Organisation:
        """Check the hierarchy rules and define the organisation."""
        if kind not in ORG_KINDS:
            raise InvalidCommand(f"kind: must be one of {', '.join(ORG_KINDS)}")
        if kind == "ministry":
            if parent_id is not None:
                raise RuleViolation("parent_id: a ministry has no parent")
            ministry_id = org_id
        else:
            if parent_id is None:
                raise InvalidCommand(f"parent_id: required for a {kind}")
            if parent is None:
                raise RuleViolation(f"parent_id: organisation {parent_id!r} is not defined")
            if kind == "department" and parent.kind != "ministry":
                raise RuleViolation("parent_id: a department's parent must be a ministry")
            if kind == "organisation" and parent.kind not in ("ministry", "department"):
                raise RuleViolation(
                    "parent_id: an organisation's parent must be a ministry or a department"
                )
            ministry_id = parent.ministry_id
        return cls(
            org_id=org_id,
            name=name,
            kind=kind,
            parent_id=parent_id,
            ministry_id=ministry_id,
            occurred_at=occurred_at,
            event_id=str(uuid4()),
        )


class Competency(Aggregate):
    """A behavioural, functional or domain competency (levels 1..5)."""

    @staticmethod
    def create_id(competency_id: str) -> UUID:
        return aggregate_id("competency", competency_id)

    @event("CompetencyDefined")
    def __init__(
        self, competency_id: str, name: str, kind: str, occurred_at: str, event_id: str
    ) -> None:
        self.competency_id = competency_id
        self.name = name
        self.kind = kind

    @classmethod
    def define(cls, competency_id: str, name: str, kind: str, occurred_at: str) -> Competency:
        """Define a competency of the dictionary."""
        if kind not in COMPETENCY_KINDS:
            raise InvalidCommand(f"kind: must be one of {', '.join(COMPETENCY_KINDS)}")
        return cls(
            competency_id=competency_id,
            name=name,
            kind=kind,
            occurred_at=occurred_at,
            event_id=str(uuid4()),
        )


class Post(Aggregate):
    """A FRAC post: roles, their activities, and the competencies each activity needs."""

    @staticmethod
    def create_id(post_id: str) -> UUID:
        return aggregate_id("post", post_id)

    @event("PostDefined")
    def __init__(
        self,
        post_id: str,
        org_id: str,
        title: str,
        roles: list[dict[str, Any]],
        occurred_at: str,
        event_id: str,
    ) -> None:
        self.post_id = post_id
        self.org_id = org_id
        self.title = title
        self.roles = roles

    @event("PostRevised")
    def _revised(
        self,
        post_id: str,
        org_id: str,
        title: str,
        roles: list[dict[str, Any]],
        occurred_at: str,
        event_id: str,
    ) -> None:
        self.title = title
        self.roles = roles

    @classmethod
    def define(
        cls, post_id: str, org_id: str, title: str, roles: list[dict[str, Any]], occurred_at: str
    ) -> Post:
        """Define a new post."""
        return cls(
            post_id=post_id,
            org_id=org_id,
            title=title,
            roles=roles,
            occurred_at=occurred_at,
            event_id=str(uuid4()),
        )

    def revise(self, org_id: str, title: str, roles: list[dict[str, Any]], occurred_at: str) -> None:
        """A FRAC revision: same post, same organisation, new roles."""
        if org_id != self.org_id:
            raise RuleViolation(
                f"org_id: post {self.post_id!r} belongs to {self.org_id!r}; "
                "a redefinition cannot move it"
            )
        self._revised(
            post_id=self.post_id,
            org_id=org_id,
            title=title,
            roles=roles,
            occurred_at=occurred_at,
            event_id=str(uuid4()),
        )

    def required_levels(self) -> dict[str, int]:
        """Max required level per competency over all roles and activities."""
        return required_levels(self.roles)


def required_levels(roles: list[dict[str, Any]]) -> dict[str, int]:
    """Max required level per competency over a FRAC decomposition."""
    levels: dict[str, int] = {}
    for role in roles:
        for activity in role["activities"]:
            for need in activity["competencies"]:
                cid, level = need["competency_id"], need["level"]
                levels[cid] = max(levels.get(cid, 0), level)
    return levels


class Course(Aggregate):
    """A course: duration, the competencies it builds, and an optional assessment."""

    @staticmethod
    def create_id(course_id: str) -> UUID:
        return aggregate_id("course", course_id)

    @event("CoursePublished")
    def __init__(
        self,
        course_id: str,
        title: str,
        provider: str,
        duration_hours: float,
        competencies: list[dict[str, Any]],
        assessment: dict[str, int] | None,
        occurred_at: str,
        event_id: str,
    ) -> None:
        self.course_id = course_id
        self.title = title
        self.provider = provider
        self.duration_hours = duration_hours
        self.competencies = competencies
        self.assessment = assessment

    @classmethod
    def publish(
        cls,
        course_id: str,
        title: str,
        provider: str,
        duration_hours: float,
        competencies: list[dict[str, Any]],
        assessment: dict[str, int] | None,
        occurred_at: str,
    ) -> Course:
        """Publish a course after checking its numbers and competency list."""
        if not 0 < duration_hours <= 1000:
            raise InvalidCommand("duration_hours: must be > 0 and <= 1000")
        twice = listed_twice(competencies)
        if twice is not None:
            raise RuleViolation(
                f"competencies: competency {competencies[twice]['competency_id']!r} is listed twice"
            )
        if assessment is not None:
            if not 0 <= assessment["pass_mark"] <= 100:
                raise InvalidCommand("assessment.pass_mark: must be an integer 0..100")
            if assessment["max_attempts"] < 1:
                raise InvalidCommand("assessment.max_attempts: must be an integer >= 1")
        return cls(
            course_id=course_id,
            title=title,
            provider=provider,
            duration_hours=float(duration_hours),
            competencies=competencies,
            assessment=assessment,
            occurred_at=occurred_at,
            event_id=str(uuid4()),
        )


def listed_twice(needs: list[dict[str, Any]]) -> int | None:
    """The index of the first entry naming a ``competency_id`` an earlier one named, else None."""
    seen: set[str] = set()
    for i, need in enumerate(needs):
        if need["competency_id"] in seen:
            return i
        seen.add(need["competency_id"])
    return None


def already_defined(what: str, field: str, value: str) -> AlreadyExists:
    """The error for defining an entity twice."""
    return AlreadyExists(f"{field}: {what} {value!r} is already defined")
