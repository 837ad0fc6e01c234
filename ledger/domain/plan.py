"""A ministry's Annual Capacity Building Plan for one financial year, kept as events.

Declaring the same ministry and year again is a revision: it replaces the plan, and
both declarations stay in history, so "what did we commit to, when" can be replayed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import InvalidCommand, RuleViolation
from ledger.domain.ids import aggregate_id
from ledger.domain.reference import Organisation, listed_twice

MAX_TARGETS = 200


def plan_key(ministry_id: str, fy: str) -> str:
    """The plan's entity id, also its message key on the reference topic."""
    return f"{ministry_id}:{fy}"


class CapacityPlan(Aggregate):
    """The plan of one ministry for one financial year: minimum hours and competency targets."""

    @staticmethod
    def create_id(ministry_id: str, fy: str) -> UUID:
        return aggregate_id("plan", plan_key(ministry_id, fy))

    @event("CapacityPlanDeclared")
    def __init__(
        self,
        ministry_id: str,
        fy: str,
        min_learning_hours: float,
        targets: list[dict[str, Any]],
        occurred_at: str,
        event_id: str,
    ) -> None:
        self._apply(ministry_id, fy, min_learning_hours, targets)

    @event("CapacityPlanRevised")
    def _revised(
        self,
        ministry_id: str,
        fy: str,
        min_learning_hours: float,
        targets: list[dict[str, Any]],
        occurred_at: str,
        event_id: str,
    ) -> None:
        self._apply(ministry_id, fy, min_learning_hours, targets)

    def _apply(self, ministry_id: str, fy: str, min_learning_hours: float, targets: list[dict[str, Any]]) -> None:
        self.ministry_id = ministry_id
        self.fy = fy
        self.min_learning_hours = min_learning_hours
        self.targets = targets

    @staticmethod
    def check(ministry: Organisation | None, ministry_id: str, min_learning_hours: float,
              targets: list[dict[str, Any]]) -> None:
        """Every rule of the command that needs no other aggregate than the ministry."""
        if ministry is None:
            raise RuleViolation(f"ministry_id: organisation {ministry_id!r} is not defined")
        if ministry.kind != "ministry":
            raise RuleViolation(f"ministry_id: {ministry_id!r} is a {ministry.kind}, not a ministry")
        if not 0 <= min_learning_hours <= 1000:
            raise InvalidCommand("min_learning_hours: must be a number 0..1000")
        if len(targets) > MAX_TARGETS:
            raise InvalidCommand(f"targets: at most {MAX_TARGETS} targets")
        twice = listed_twice(targets)
        if twice is not None:
            raise RuleViolation(
                f"targets[{twice}].competency_id: competency {targets[twice]['competency_id']!r} is listed twice"
            )

    @classmethod
    def declare(cls, ministry_id: str, fy: str, min_learning_hours: float, targets: list[dict[str, Any]],
                occurred_at: str) -> CapacityPlan:
        return cls(ministry_id=ministry_id, fy=fy, min_learning_hours=float(min_learning_hours),
                   targets=targets, occurred_at=occurred_at, event_id=str(uuid4()))

    def revise(self, min_learning_hours: float, targets: list[dict[str, Any]], occurred_at: str) -> None:
        """A later declaration for the same ministry and year replaces the plan."""
        self._revised(ministry_id=self.ministry_id, fy=self.fy, min_learning_hours=float(min_learning_hours),
                      targets=targets, occurred_at=occurred_at, event_id=str(uuid4()))
