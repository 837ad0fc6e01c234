"""The officer aggregate on its own: rules checked before any event, no storage at all."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ledger.domain.errors import OfficerErasedError, RuleViolation, TimeRunsBackwards
from ledger.domain.officer import Officer
from ledger.domain.reference import Course, Organisation, Post

IST = timezone(timedelta(hours=5, minutes=30))
T = datetime(2025, 4, 1, 9, 0, tzinfo=IST)


def world() -> tuple[Organisation, Post, Course]:
    ministry = Organisation.define("MOF", "Finance", "ministry", None, None, T.isoformat())
    dept = Organisation.define("DOR", "Revenue", "department", ministry, "MOF", T.isoformat())
    post = Post.define("P1", "DOR", "Under Secretary", [], T.isoformat())
    course = Course.publish("K1", "Budgeting", "NIFM", 10, [], {"pass_mark": 50, "max_attempts": 1}, T.isoformat())
    return dept, post, course


def officer() -> tuple[Officer, Course]:
    dept, post, course = world()
    return Officer.register("O1", "ct", "ct", dept, post, "P1", T), course


def test_registration_records_ministry_of_the_department() -> None:
    o, _ = officer()
    assert (o.org_id, o.ministry_id, o.post_id, o.version) == ("DOR", "MOF", "P1", 1)


def test_a_rejected_command_triggers_no_event() -> None:
    o, course = officer()
    pending = len(o.pending_events)
    with pytest.raises(RuleViolation):
        o.complete(course, T + timedelta(days=1))
    with pytest.raises(TimeRunsBackwards):
        o.enrol(course, T - timedelta(seconds=1))
    assert len(o.pending_events) == pending and o.version == 1


def test_one_attempt_allowed_then_used_up() -> None:
    o, course = officer()
    o.enrol(course, T + timedelta(days=1))
    assert o.attempt_assessment(course, 10, T + timedelta(days=2)) is False
    with pytest.raises(RuleViolation, match="used up"):
        o.attempt_assessment(course, 90, T + timedelta(days=3))


def test_progress_not_above_current_triggers_nothing() -> None:
    o, course = officer()
    o.enrol(course, T + timedelta(days=1))
    assert o.record_progress("K1", 50, T + timedelta(days=2)) is True
    version = o.version
    assert o.record_progress("K1", 50, T + timedelta(days=3)) is False
    assert o.version == version


def test_erased_officer_refuses_everything() -> None:
    o, course = officer()
    o.erase("request", T + timedelta(days=5))
    with pytest.raises(OfficerErasedError):
        o.enrol(course, T + timedelta(days=6))
    with pytest.raises(OfficerErasedError):
        o.erase("again", T + timedelta(days=6))


def test_completion_carries_the_course_facts() -> None:
    o, course = officer()
    o.enrol(course, T + timedelta(days=1))
    o.record_progress("K1", 100, T + timedelta(days=2))
    o.attempt_assessment(course, 50, T + timedelta(days=3))
    o.complete(course, T + timedelta(days=4))
    completed = o.pending_events[-1]
    assert type(completed).__name__ == "CourseCompleted"
    # The @event decorator (eventsourcing) builds the event class at run time: mypy cannot see its fields.
    assert completed.duration_hours == 10.0  # type: ignore[attr-defined]
