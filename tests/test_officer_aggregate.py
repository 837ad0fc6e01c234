"""The officer aggregate on its own: rules checked before any event, no storage at all."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ledger.domain.errors import OfficerErasedError, RuleViolation
from ledger.domain.history import CourseInfo, DictReference, OrgInfo, PostInfo
from ledger.domain.officer import Officer

IST = timezone(timedelta(hours=5, minutes=30))
T = datetime(2025, 4, 1, 9, 0, tzinfo=IST)
REF = DictReference(
    courses={"K1": CourseInfo("K1", 10.0, [], {"pass_mark": 50, "max_attempts": 1})},
    orgs={"MOF": OrgInfo("MOF", "ministry", "MOF"), "DOR": OrgInfo("DOR", "department", "MOF")},
    posts={"P1": PostInfo("P1", "DOR")},
)


def officer() -> Officer:
    return Officer.register({"officer_id": "O1", "name_ct": "ct", "email_ct": "ct", "org_id": "DOR",
                            "post_id": "P1", "occurred_at": T}, REF)


def run(o: Officer, kind: str, days: float, **fields: Any) -> bool:
    return o.execute(kind, {"officer_id": "O1", "occurred_at": T + timedelta(days=days), **fields}, REF)


def test_registration_records_ministry_of_the_department() -> None:
    o = officer()
    assert (o.org_id, o.ministry_id, o.post_id, o.version) == ("DOR", "MOF", "P1", 1)


def test_a_rejected_command_triggers_no_event() -> None:
    o = officer()
    pending = len(o.pending_events)
    with pytest.raises(RuleViolation):
        run(o, "complete_course", 1, course_id="K1")
    with pytest.raises(RuleViolation, match="registration"):
        run(o, "enrol", -1 / 86400, course_id="K1")
    assert len(o.pending_events) == pending and o.version == 1


def test_one_attempt_allowed_then_used_up() -> None:
    o = officer()
    run(o, "enrol", 1, course_id="K1")
    run(o, "attempt_assessment", 2, course_id="K1", score=10)
    assert o.pending_events[-1].passed is False  # type: ignore[attr-defined]
    with pytest.raises(RuleViolation, match="used up"):
        run(o, "attempt_assessment", 3, course_id="K1", score=90)


def test_progress_not_above_current_triggers_nothing() -> None:
    o = officer()
    run(o, "enrol", 1, course_id="K1")
    assert run(o, "record_progress", 2, course_id="K1", percent=50) is True
    version = o.version
    assert run(o, "record_progress", 3, course_id="K1", percent=50) is False
    assert o.version == version


def test_erased_officer_refuses_everything() -> None:
    o = officer()
    o.erase("data_principal_request", None, T + timedelta(days=5))
    with pytest.raises(OfficerErasedError):
        run(o, "enrol", 6, course_id="K1")
    with pytest.raises(OfficerErasedError):
        o.erase("other", None, T + timedelta(days=6))


def test_completion_carries_the_course_facts() -> None:
    o = officer()
    run(o, "enrol", 1, course_id="K1")
    run(o, "record_progress", 2, course_id="K1", percent=100)
    run(o, "attempt_assessment", 3, course_id="K1", score=50)
    run(o, "complete_course", 4, course_id="K1")
    completed = o.pending_events[-1]
    assert type(completed).__name__ == "CourseCompleted"
    # The @event decorator (eventsourcing) builds the event class at run time: mypy cannot see its fields.
    assert completed.duration_hours == 10.0  # type: ignore[attr-defined]


def test_a_late_fact_refolds_the_state_and_a_retraction_takes_it_back() -> None:
    o = officer()
    run(o, "enrol", 1, course_id="K1")
    run(o, "record_progress", 5, course_id="K1", percent=40)
    run(o, "record_progress", 3, course_id="K1", percent=90)  # late, and higher
    assert o.enrolments["K1"].progress == 90
    run(o, "retract", 6, versions=[4], reason="recorded_in_error")
    assert o.enrolments["K1"].progress == 40
    assert [e["type"] for e in o.log][-1] == "EventsRetracted"
