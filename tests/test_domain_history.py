"""The officer rules as pure functions: late facts, corrections, retractions, as-of and known-at.

Written from DOMAIN.md ("Late facts, corrections and retractions"): no store, no
eventsourcing. A small in-memory log appends what ``accept`` returns, numbering
versions and stamping ``recorded_at`` the way the ledger does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.errors import (
    AlreadyExists,
    InvalidCommand,
    NotFound,
    OfficerErasedError,
    RuleViolation,
)
from ledger.domain.history import (
    CourseInfo,
    DictReference,
    EnrolmentState,
    OfficerState,
    OrgInfo,
    PostInfo,
    accept,
    accept_at_end,
    business_history,
    check,
    decide,
    evolve,
    fold,
    is_late,
    late_versions,
    retracted_by,
)

IST = timezone(timedelta(hours=5, minutes=30))
T0 = datetime(2025, 4, 1, 9, 0, tzinfo=IST)
R0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
REF = DictReference(
    courses={
        "K1": CourseInfo("K1", 10.0, [{"competency_id": "C1", "level": 2}], {"pass_mark": 50, "max_attempts": 2}),
        "K2": CourseInfo("K2", 4.0, [], None),
        "K3": CourseInfo("K3", 2.5, [{"competency_id": "C2", "level": 3}], {"pass_mark": 60, "max_attempts": 1}),
    },
    orgs={
        "MOF": OrgInfo("MOF", "ministry", "MOF"),
        "DOR": OrgInfo("DOR", "department", "MOF"),
        "MHA": OrgInfo("MHA", "ministry", "MHA"),
    },
    posts={"P1": PostInfo("P1", "DOR"), "P2": PostInfo("P2", "MHA")},
)
Event = dict[str, Any]


def t(hours: float) -> datetime:
    """An instant ``hours`` after the registration (IST)."""
    return T0 + timedelta(hours=hours)


class Log:
    """One officer's event list, appended to only with what ``accept`` decided."""

    def __init__(self, same: Callable[[str, str], bool] | None = None) -> None:
        self.events: list[Event] = []
        self.same = same

    def run(self, command_type: str, at: datetime | None = None, **fields: Any) -> Event | None:
        command = {"officer_id": "O1", **fields}
        if at is not None:
            command["occurred_at"] = at
        body = accept(self.events, command_type, command, REF, self.same)
        if body is not None:
            self.append(body)
        return body

    def append(self, body: Event) -> Event:
        version = len(self.events) + 1
        event = {**body, "version": version, "event_id": f"e{version}",
                 "recorded_at": (R0 + timedelta(minutes=version)).isoformat()}
        self.events.append(event)
        return event

    def rejects(self, command_type: str, at: datetime | None = None, **fields: Any) -> str:
        """Run a command that must be rejected; the log must stay as it was. Returns the message."""
        before = copy.deepcopy(self.events)
        with pytest.raises(RuleViolation) as caught:
            self.run(command_type, at, **fields)
        assert self.events == before
        return str(caught.value)


def registered(same: Callable[[str, str], bool] | None = None) -> Log:
    log = Log(same)
    log.run("register_officer", T0, name_ct="Asha", email_ct="asha@x.in", org_id="DOR", post_id="P1")
    return log


def recorded_at(log: Log, version: int) -> datetime:
    return datetime.fromisoformat(log.events[version - 1]["recorded_at"])


# ---- late facts --------------------------------------------------------------------


def test_a_late_enrolment_before_a_later_enrolment_in_the_same_course_is_rejected() -> None:
    log = registered()
    log.run("enrol", t(10), course_id="K2")
    message = log.rejects("enrol", t(5), course_id="K2")
    assert message.startswith(f"occurred_at: inserted at {t(5).isoformat()} it would leave version 2 (CourseEnrolled K2) ")
    assert log.run("enrol", t(5), course_id="K1") is not None  # another course fits


def test_a_late_attempt_that_pushes_a_later_attempt_past_the_maximum_is_rejected() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K1")
    log.run("attempt_assessment", t(3), course_id="K1", score=10)
    log.run("attempt_assessment", t(4), course_id="K1", score=20)
    message = log.rejects("attempt_assessment", t(2), course_id="K1", score=30)
    assert message == (f"occurred_at: inserted at {t(2).isoformat()} it would leave "
                       "version 4 (AssessmentAttempted K1) past the course's 2 attempts")


def test_a_late_attempt_with_room_left_is_accepted_and_counted_at_its_place() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K1")
    log.run("attempt_assessment", t(3), course_id="K1", score=10)
    body = log.run("attempt_assessment", t(2), course_id="K1", score=20)
    assert body is not None and (body["attempt"], body["passed"]) == (1, False)
    assert fold(log.events).enrolments["K1"].attempts == 2


def test_a_late_passing_attempt_before_a_later_attempt_is_rejected() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K1")
    log.run("attempt_assessment", t(3), course_id="K1", score=10)
    message = log.rejects("attempt_assessment", t(2), course_id="K1", score=90)
    assert "version 3 (AssessmentAttempted K1)" in message


def test_a_late_transfer_that_makes_a_later_transfer_repeat_the_posting_is_rejected() -> None:
    log = registered()
    log.run("transfer_officer", t(10), org_id="MHA", post_id="P2")
    message = log.rejects("transfer_officer", t(5), org_id="MHA", post_id="P2")
    assert message.startswith(f"occurred_at: inserted at {t(5).isoformat()} it would leave version 2 (OfficerTransferred MHA) ")


def test_a_late_transfer_decides_the_ministry_until_the_next_transfer() -> None:
    log = registered()
    log.run("transfer_officer", t(10), org_id="MHA", post_id="P2")
    body = log.run("transfer_officer", t(5), org_id="MOF")
    assert body is not None and (body["ministry_id"], body["post_id"]) == ("MOF", None)
    assert (fold(log.events, as_of=t(4)).org_id, fold(log.events, as_of=t(7)).org_id) == ("DOR", "MOF")
    assert (fold(log.events).org_id, fold(log.events).ministry_id) == ("MHA", "MHA")


def test_late_progress_higher_than_later_progress_is_fine() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K2")
    log.run("record_progress", t(5), course_id="K2", percent=50)
    assert log.run("record_progress", t(3), course_id="K2", percent=80) is not None
    assert fold(log.events).enrolments["K2"].progress == 80
    assert log.run("record_progress", t(2), course_id="K2", percent=30) is not None
    assert fold(log.events).enrolments["K2"].progress == 80
    # Not above the progress at its own place: accepted, and nothing is recorded.
    versions = len(log.events)
    assert log.run("record_progress", t(4), course_id="K2", percent=80) is None
    assert log.run("record_progress", t(6), course_id="K2", percent=70) is None
    assert len(log.events) == versions


def test_a_completion_reported_late_is_accepted() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K2")
    log.run("record_progress", t(2), course_id="K2", percent=100)
    log.run("enrol", t(5), course_id="K1")
    body = log.run("complete_course", t(3), course_id="K2")
    assert body is not None and body["duration_hours"] == 4.0
    assert fold(log.events).enrolments["K2"].status == "completed"
    assert fold(log.events, as_of=t(2.5)).enrolments["K2"].status == "enrolled"
    assert late_versions(log.events) == {5}


def test_a_late_completion_of_a_course_withdrawn_later_is_rejected() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K2")
    log.run("record_progress", t(2), course_id="K2", percent=100)
    log.run("withdraw", t(5), course_id="K2")
    message = log.rejects("complete_course", t(3), course_id="K2")
    assert message.startswith(f"occurred_at: inserted at {t(3).isoformat()} it would leave version 4 (CourseWithdrawn K2) ")


def test_a_late_completion_before_progress_reached_100_breaks_its_own_rule() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K2")
    log.run("record_progress", t(5), course_id="K2", percent=100)
    assert log.rejects("complete_course", t(3), course_id="K2") == "course_id: progress in 'K2' is 0, below 100"


def test_nothing_may_precede_the_registration() -> None:
    log = registered()
    assert log.rejects("enrol", t(-0.5), course_id="K2").startswith("occurred_at:")
    # The same instant written with another offset is still before it.
    earlier = (T0 - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=14)))
    assert log.rejects("enrol", earlier, course_id="K2").startswith("occurred_at:")
    assert log.run("enrol", T0, course_id="K2") is not None  # the same instant goes after it


def test_a_command_at_the_same_instant_as_an_event_goes_after_it() -> None:
    log = registered()
    log.run("enrol", t(1), course_id="K2")
    log.run("withdraw", t(2), course_id="K2")
    log.run("enrol", t(5), course_id="K1")
    message = log.rejects("record_progress", t(2), course_id="K2", percent=10)
    assert message == "course_id: enrolment is withdrawn in course 'K2', not enrolled"
    in_utc = t(2).astimezone(timezone.utc)
    assert log.rejects("record_progress", in_utc, course_id="K2", percent=10) == message
    assert log.run("record_progress", t(2) - timedelta(minutes=1), course_id="K2", percent=10) is not None


def test_the_business_history_orders_instants_not_text() -> None:
    log = registered()
    log.run("enrol", datetime(2025, 4, 2, 5, 0, tzinfo=timezone.utc), course_id="K2")  # 10:30 IST
    log.run("enrol", datetime(2025, 4, 2, 10, 0, tzinfo=IST), course_id="K1")  # 04:30 UTC: earlier
    assert [e["version"] for e in business_history(log.events)] == [1, 3, 2]
    assert late_versions(log.events) == {3}


# ---- the command table's rules and messages -----------------------------------------


def enrolled_in(course_id: str, *steps: tuple[str, dict[str, Any]]) -> Log:
    log = registered()
    log.run("enrol", t(1), course_id=course_id)
    for hours, (command_type, fields) in enumerate(steps, start=2):
        log.run(command_type, t(hours), course_id=course_id, **fields)
    return log


@pytest.mark.parametrize(("log", "command_type", "fields", "error", "message"), [
    (registered(), "transfer_officer", {"org_id": "DOR", "post_id": "P1"}, RuleViolation,
     "org_id: officer is already in that organisation and post"),
    (registered(), "transfer_officer", {"org_id": "NOPE"}, NotFound, "org_id: organisation 'NOPE' is not defined"),
    (registered(), "transfer_officer", {"org_id": "DOR", "post_id": "P9"}, RuleViolation, "post_id: post 'P9' is not defined"),
    (registered(), "transfer_officer", {"org_id": "DOR", "post_id": "P2"}, RuleViolation,
     "post_id: post 'P2' belongs to 'MHA', not 'DOR'"),
    (registered(), "register_officer", {"name_ct": "n", "email_ct": "e", "org_id": "DOR"}, AlreadyExists,
     "officer_id: officer 'O1' is already registered"),
    (registered(), "enrol", {"course_id": "K9"}, NotFound, "course_id: course 'K9' is not published"),
    (enrolled_in("K2"), "enrol", {"course_id": "K2"}, RuleViolation, "course_id: already enrolled in course 'K2'"),
    (enrolled_in("K2", ("record_progress", {"percent": 100}), ("complete_course", {})), "enrol", {"course_id": "K2"},
     RuleViolation, "course_id: already completed in course 'K2'"),
    (registered(), "record_progress", {"course_id": "K2", "percent": 5}, RuleViolation,
     "course_id: no enrolment in course 'K2', not enrolled"),
    (enrolled_in("K2", ("withdraw", {})), "withdraw", {"course_id": "K2"}, RuleViolation,
     "course_id: enrolment is withdrawn in course 'K2', not enrolled"),
    (enrolled_in("K2"), "attempt_assessment", {"course_id": "K2", "score": 90}, RuleViolation,
     "course_id: course 'K2' has no assessment"),
    (enrolled_in("K1", ("attempt_assessment", {"score": 90})), "attempt_assessment", {"course_id": "K1", "score": 90},
     RuleViolation, "course_id: assessment of 'K1' already passed"),
    (enrolled_in("K3", ("attempt_assessment", {"score": 1})), "attempt_assessment", {"course_id": "K3", "score": 90},
     RuleViolation, "score: all 1 attempts at 'K3' are used up"),
    (enrolled_in("K2", ("record_progress", {"percent": 40})), "complete_course", {"course_id": "K2"}, RuleViolation,
     "course_id: progress in 'K2' is 40, below 100"),
    (enrolled_in("K1", ("record_progress", {"percent": 100})), "complete_course", {"course_id": "K1"}, RuleViolation,
     "course_id: the assessment of 'K1' has not been passed"),
])
def test_each_rule_keeps_its_message(log: Log, command_type: str, fields: dict[str, Any],
                                     error: type[RuleViolation], message: str) -> None:
    with pytest.raises(error) as caught:
        log.run(command_type, t(20), **fields)
    assert type(caught.value) is error and str(caught.value) == message


def test_an_unregistered_officer_can_only_be_registered() -> None:
    with pytest.raises(NotFound, match="^officer_id: officer 'O1' is not registered$"):
        Log().run("enrol", T0, course_id="K2")
    with pytest.raises(NotFound):
        Log().run("retract", T0, versions=[2], reason="duplicate")


def test_every_command_for_an_erased_officer_is_rejected() -> None:
    log = enrolled_in("K2")
    log.append({"type": "OfficerErased", "officer_id": "O1", "reason": "data_principal_request",
                "occurred_at": t(1).isoformat()})
    assert fold(log.events).erased and fold(log.events).name_ct == ""
    commands: list[tuple[str, dict[str, Any]]] = [
        ("record_progress", {"course_id": "K2", "percent": 50}), ("transfer_officer", {"org_id": "MHA"}),
        ("enrol", {"course_id": "K1"}), ("correct_officer_details", {"name_ct": "B"}),
        ("retract", {"versions": [2], "reason": "duplicate"})]
    for command_type, fields in commands:
        for at in (t(0.5), t(30)):
            with pytest.raises(OfficerErasedError):
                log.run(command_type, at, **fields)
    assert log.rejects("enrol", t(30), course_id="K1") == "officer_id: officer 'O1' was erased"
    with pytest.raises(AlreadyExists):
        log.run("register_officer", t(30), name_ct="n", email_ct="e", org_id="DOR")


def test_event_bodies_carry_what_the_command_decided() -> None:
    log = enrolled_in("K1", ("record_progress", {"percent": 100}))
    attempt = log.run("attempt_assessment", t(3), course_id="K1", score=50)
    completed = log.run("complete_course", t(4), course_id="K1")
    assert attempt == {"type": "AssessmentAttempted", "officer_id": "O1", "course_id": "K1", "score": 50.0,
                       "passed": True, "attempt": 1, "occurred_at": t(3).isoformat()}
    assert completed == {"type": "CourseCompleted", "officer_id": "O1", "course_id": "K1", "duration_hours": 10.0,
                         "competencies": [{"competency_id": "C1", "level": 2}], "occurred_at": t(4).isoformat()}
    transfer = log.run("transfer_officer", t(5), org_id="DOR")
    assert transfer is not None and (transfer["ministry_id"], transfer["post_id"]) == ("MOF", None)


def test_the_fast_path_decides_at_the_end_without_the_events() -> None:
    log = enrolled_in("K1", ("record_progress", {"percent": 60}))
    end = fold(log.events)
    command = {"officer_id": "O1", "course_id": "K1", "percent": 70, "occurred_at": t(3)}
    assert accept_at_end(end, "record_progress", command, REF) == accept(log.events, "record_progress", command, REF)
    same_instant = {**command, "occurred_at": t(2)}
    assert not is_late(end, t(2)) and accept_at_end(end, "record_progress", same_instant, REF) is not None
    with pytest.raises(ValueError):
        accept_at_end(end, "record_progress", {**command, "occurred_at": t(1.5)}, REF)


def test_evolve_keeps_the_highest_progress_and_refuses_a_retraction() -> None:
    state = fold(enrolled_in("K2", ("record_progress", {"percent": 60})).events)
    lower = {"type": "ProgressRecorded", "officer_id": "O1", "course_id": "K2", "percent": 40,
             "occurred_at": t(9).isoformat(), "version": 9}
    assert evolve(state, lower).enrolments["K2"].progress == 60 and state.enrolments["K2"].progress == 60
    with pytest.raises(ValueError):
        evolve(state, {"type": "EventsRetracted", "versions": [2], "occurred_at": t(9).isoformat()})


# ---- retraction ---------------------------------------------------------------------------


def completed_k2() -> Log:
    """v1 registered, v2 enrolled in K2, v3 progress 100, v4 completed."""
    return enrolled_in("K2", ("record_progress", {"percent": 100}), ("complete_course", {}))


def test_a_retraction_that_orphans_a_later_event_is_rejected_naming_it() -> None:
    log = completed_k2()
    assert log.rejects("retract", t(9), versions=[2], reason="recorded_in_error") == (
        "versions: without version 2 (CourseEnrolled K2), version 3 (ProgressRecorded K2) has no enrolment; "
        "retract them together")
    message = log.rejects("retract", t(9), versions=[3], reason="recorded_in_error")
    assert message.startswith("versions: without version 3 (ProgressRecorded K2), version 4 (CourseCompleted K2) ")


def test_an_enrolment_and_its_completion_retracted_together_are_accepted() -> None:
    log = completed_k2()
    body = log.run("retract", t(9), versions=[4, 2, 3], reason="wrong_officer", ticket="GRV-12")
    assert body == {"type": "EventsRetracted", "officer_id": "O1", "versions": [2, 3, 4], "reason": "wrong_officer",
                    "ticket": "GRV-12", "occurred_at": t(9).isoformat()}
    assert fold(log.events).enrolments == {}
    assert retracted_by(log.events) == {2: 5, 3: 5, 4: 5}
    assert log.run("enrol", t(10), course_id="K2") is not None  # the business history has no enrolment now


@pytest.mark.parametrize(("versions", "fragment"), [([1], "version 1"), ([7], "version 7"), ([5], "version 5"),
                                                   ([4], "version 4"), ([2, 5], "version 5")])
def test_retracting_the_registration_a_missing_version_a_retraction_or_a_retracted_event_is_rejected(
        versions: list[int], fragment: str) -> None:
    log = completed_k2()
    log.run("retract", t(9), versions=[4], reason="duplicate")  # v5 retracts the completion
    message = log.rejects("retract", t(10), versions=versions, reason="duplicate")
    assert message.startswith("versions:") and fragment in message


def test_after_retracting_a_completion_the_course_can_be_completed_again() -> None:
    log = completed_k2()
    log.run("retract", t(9), versions=[4], reason="duplicate")
    assert fold(log.events).enrolments["K2"].status == "enrolled"
    assert log.run("complete_course", t(3.5), course_id="K2") is not None


@pytest.mark.parametrize("fields", [{"versions": [], "reason": "duplicate"}, {"versions": [2, 2], "reason": "duplicate"},
                                    {"versions": list(range(2, 103)), "reason": "duplicate"},
                                    {"versions": [True], "reason": "duplicate"}, {"versions": ["2"], "reason": "duplicate"},
                                    {"versions": [2], "reason": "it was wrong, says Asha"},
                                    {"versions": [2], "reason": "duplicate", "ticket": "bad ticket"}])
def test_a_retraction_names_its_malformed_field(fields: dict[str, Any]) -> None:
    log = completed_k2()
    with pytest.raises(InvalidCommand) as caught:
        log.run("retract", t(9), **fields)
    assert str(caught.value).split(":")[0] in ("versions", "reason", "ticket")


# ---- corrected details ------------------------------------------------------------------


def test_corrected_details_apply_from_their_occurred_at() -> None:
    log = registered()
    log.run("correct_officer_details", t(5), name_ct="Asha R")
    assert (fold(log.events, as_of=t(4)).name_ct, fold(log.events, as_of=t(5)).name_ct) == ("Asha", "Asha R")
    assert fold(log.events).email_ct == "asha@x.in"
    log.run("correct_officer_details", t(3), name_ct="Asha K")  # a late correction
    assert [fold(log.events, as_of=t(h)).name_ct for h in (2, 4, 6)] == ["Asha", "Asha K", "Asha R"]


def test_a_correction_equal_to_the_value_in_force_at_its_occurred_at_is_rejected() -> None:
    log = registered()
    log.run("correct_officer_details", t(5), name_ct="Asha R")
    assert log.rejects("correct_officer_details", t(3), name_ct="Asha").startswith("name:")
    assert log.rejects("correct_officer_details", t(6), name_ct="Asha R").startswith("name:")
    assert log.run("correct_officer_details", t(3), name_ct="Asha R") is not None  # "Asha" was in force then
    assert log.run("correct_officer_details", t(6), name_ct="Asha R", email_ct="a@y.in") is not None
    with pytest.raises(InvalidCommand):
        log.run("correct_officer_details", t(7))


def test_equality_is_judged_on_plaintext_through_the_callers_comparer() -> None:
    counter = iter(range(1000))

    def seal(plain: str) -> str:  # a fresh nonce each time, as real encryption gives
        return f"{plain}#{next(counter)}"

    plain_of_new: dict[str, str] = {}

    def same(field: str, in_force_ct: str) -> bool:
        return in_force_ct.split("#")[0] == plain_of_new[field]

    log = Log(same)
    log.run("register_officer", T0, name_ct=seal("Asha"), email_ct=seal("a@x.in"), org_id="DOR")
    plain_of_new["name"] = "Asha"
    assert log.rejects("correct_officer_details", t(1), name_ct=seal("Asha")).startswith("name:")
    plain_of_new["name"] = "Asha R"
    assert log.run("correct_officer_details", t(1), name_ct=seal("Asha R")) is not None


def test_retracting_a_correction_restores_the_details_before_it() -> None:
    log = registered()
    log.run("correct_officer_details", T0, name_ct="Asha Rao")  # from the start
    assert fold(log.events, as_of=T0).name_ct == "Asha Rao"
    log.run("retract", t(9), versions=[2], reason="recorded_in_error")
    assert fold(log.events).name_ct == "Asha"


# ---- known at, history flags --------------------------------------------------------------


def test_known_at_folds_what_the_ledger_said_before_and_after_a_retraction() -> None:
    log = completed_k2()
    log.run("retract", t(9), versions=[4], reason="duplicate")  # v5
    retraction_recorded = recorded_at(log, 5)
    before = fold(log.events, known_at=retraction_recorded - timedelta(microseconds=1))
    assert before.enrolments["K2"].status == "completed"
    assert fold(log.events, known_at=retraction_recorded).enrolments["K2"].status == "enrolled"
    assert fold(log.events, known_at=recorded_at(log, 2)).enrolments["K2"].progress == 0
    as_then = fold(log.events, as_of=t(2.5), known_at=recorded_at(log, 4))
    assert as_then.enrolments["K2"] == EnrolmentState(status="enrolled", progress=100)
    assert [e["version"] for e in business_history(log.events, known_at=retraction_recorded)] == [1, 2, 3]
    assert retracted_by(log.events, known_at=retraction_recorded - timedelta(microseconds=1)) == {}


def test_a_late_fact_is_unknown_before_it_was_recorded() -> None:
    log = registered()
    log.run("enrol", t(5), course_id="K2")
    log.run("transfer_officer", t(1), org_id="MHA")  # v3, late
    assert fold(log.events, as_of=t(2), known_at=recorded_at(log, 2)).org_id == "DOR"
    assert fold(log.events, as_of=t(2), known_at=recorded_at(log, 3)).org_id == "MHA"


def test_late_flags_compare_with_every_lower_version() -> None:
    log = registered()
    for version, hours in enumerate((5, 3, 4, 6, 6), start=2):
        log.append({"type": "CourseEnrolled", "officer_id": "O1", "course_id": f"K{version}",
                    "occurred_at": t(hours).astimezone(timezone.utc).isoformat()})
    assert late_versions(log.events) == {3, 4}  # 3 h and 4 h are earlier than version 2's 5 h; a tie is not late


def test_a_retraction_decided_later_does_not_make_the_facts_after_it_late() -> None:
    # A retraction's occurred_at says when it was decided, not when a business fact happened.
    log = completed_k2()
    log.run("retract", t(900), versions=[4], reason="duplicate")  # v5
    log.run("complete_course", t(3.5), course_id="K2")  # v6: after v4 (t3), before nothing else
    assert late_versions(log.events) == set()


# ---- property: random commands, some late, against a simple independent replay -----------


def instant_of(event: Event) -> float:
    return datetime.fromisoformat(event["occurred_at"]).timestamp()


def simple_history(events: list[Event]) -> list[Event]:
    gone = {v for e in events if e["type"] == "EventsRetracted" for v in e["versions"]}
    kept = [e for e in events if e["type"] != "EventsRetracted" and e["version"] not in gone]
    return sorted(kept, key=lambda e: (instant_of(e), e["version"]))


def simple_replay(history: list[Event]) -> tuple[Event | None, dict[str, Any]]:
    """The first event that breaks a rule of the spec's table (or None), and the state after."""
    s: dict[str, Any] = {"registered": False, "org": None, "post": None, "name": "", "email": "", "courses": {}}
    for e in history:
        kind, c = e["type"], str(e.get("course_id"))
        cur = s["courses"].get(c)
        assessment = REF.courses[c].assessment if c in REF.courses else None
        if kind == "OfficerRegistered":
            if s["registered"]:
                return e, s
            s.update(registered=True, org=e["org_id"], post=e["post_id"], name=e["name_ct"], email=e["email_ct"])
        elif not s["registered"]:
            return e, s
        elif kind == "OfficerTransferred":
            if (e["org_id"], e["post_id"]) == (s["org"], s["post"]):
                return e, s
            s.update(org=e["org_id"], post=e["post_id"])
        elif kind == "OfficerDetailsCorrected":
            s.update({k: e[f"{k}_ct"] for k in ("name", "email") if e.get(f"{k}_ct") is not None})
        elif kind == "CourseEnrolled":
            if cur is not None and cur["status"] != "withdrawn":
                return e, s
            s["courses"][c] = {"status": "enrolled", "progress": 0, "attempts": 0, "passed": False}
        elif cur is None or cur["status"] != "enrolled":
            return e, s
        elif kind == "ProgressRecorded":
            cur["progress"] = max(cur["progress"], e["percent"])
        elif kind == "AssessmentAttempted":
            if assessment is None or cur["passed"] or cur["attempts"] >= assessment["max_attempts"]:
                return e, s
            cur["attempts"] += 1
            cur["passed"] = cur["passed"] or e["passed"]
        elif kind == "CourseCompleted":
            if cur["progress"] < 100 or (assessment is not None and not cur["passed"]):
                return e, s
            cur["status"] = "completed"
        else:
            cur["status"] = "withdrawn"
    return None, s


def comparable(state: OfficerState) -> dict[str, Any]:
    return {"registered": state.registered, "org": state.org_id, "post": state.post_id, "name": state.name_ct,
            "email": state.email_ct,
            "courses": {c: {"status": e.status, "progress": e.progress, "attempts": e.attempts, "passed": e.passed}
                        for c, e in state.enrolments.items()}}


ZONES = [IST, timezone.utc, timezone(timedelta(hours=-5))]
POSTINGS = [("DOR", "P1"), ("DOR", None), ("MHA", "P2"), ("MOF", None)]
STEP = st.tuples(
    st.sampled_from(["enrol", "enrol", "record_progress", "record_progress", "record_progress",
                     "attempt_assessment", "attempt_assessment", "attempt_assessment", "complete_course",
                     "complete_course", "withdraw", "transfer_officer", "correct_officer_details", "retract",
                     "retract"]),
    st.integers(0, 3),  # 0..2: the latest course (enrolled in, for other than enrol), 3: any course
    st.integers(0, 3),  # which percent, score, posting or name
    st.sampled_from([-7, -4, -2, -1, 0, 0, 1, 1, 1, 2, 2, 4]),  # half hours after the latest event: -7: before registering
    st.sampled_from(ZONES),
    st.lists(st.integers(0, 4), min_size=1, max_size=2, unique=True),  # how far back from the next version
)
PROPERTY = settings(database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def command_of(step: tuple[Any, ...], log: Log) -> tuple[str, dict[str, Any], Event | None]:
    """The command, and the event it would record as this test understands the spec."""
    kind, which, pick, half_hours, zone, back = step
    courses = simple_replay(simple_history(log.events))[1]["courses"]  # in business order
    enrolled = [c for c, e in courses.items() if e["status"] == "enrolled"]
    course = ["K1", "K2", "K3"][pick % 3]
    if which < 2 and not enrolled and kind in ("record_progress", "attempt_assessment", "complete_course"):
        kind = "enrol"  # mostly act on a course the officer is in
    if which < 3 and kind == "enrol" and courses:
        course = list(courses)[-1]  # enrolling again: after a withdrawal or completion, or twice
    elif which < 3 and enrolled:
        course = enrolled[-1]  # carry on with the latest enrolment
    if which < 2 and kind == "complete_course" and course in enrolled and courses[course]["progress"] < 100:
        kind, pick = "record_progress", 3  # to 100 first
    latest = max(datetime.fromisoformat(e["occurred_at"]) for e in log.events)
    at = T0 - timedelta(minutes=1) if half_hours == -7 else max(T0, latest + timedelta(minutes=30 * half_hours))
    at = at.astimezone(zone)
    base = {"officer_id": "O1", "occurred_at": at}
    stored = {"officer_id": "O1", "occurred_at": at.isoformat()}
    if kind == "retract":
        versions = sorted({max(1, len(log.events) + 1 - k) for k in back})
        return kind, {**base, "versions": versions, "reason": "other"}, None
    if kind == "transfer_officer":
        org, post = POSTINGS[pick]
        return kind, {**base, "org_id": org, "post_id": post}, {
            **stored, "type": "OfficerTransferred", "org_id": org, "post_id": post}
    if kind == "correct_officer_details":
        name = ["Asha", "Asha R", "Asha K", "A"][pick]
        return kind, {**base, "name_ct": name}, {**stored, "type": "OfficerDetailsCorrected", "name_ct": name}
    fields: dict[str, Any] = {"course_id": course}
    if kind == "record_progress":
        fields["percent"] = [40, 70, 100, 100][pick]
    if kind == "attempt_assessment":
        fields["score"] = [10, 30, 55, 70][pick]
        mark = (REF.courses[course].assessment or {}).get("pass_mark", 101)
        fields["passed"] = fields["score"] >= mark
    event_type = {"enrol": "CourseEnrolled", "record_progress": "ProgressRecorded", "attempt_assessment": "AssessmentAttempted",
                  "complete_course": "CourseCompleted", "withdraw": "CourseWithdrawn"}[kind]
    command = {**base, **{k: v for k, v in fields.items() if k != "passed"}}
    return kind, command, {**stored, **fields, "type": event_type}


def expected_outcome(log: Log, kind: str, command: dict[str, Any], event: Event | None) -> str:
    """"accepted", "nothing", "own rule", "inserted N" or "retract N" (N: first event left invalid)."""
    candidate = {**(event or {"type": "EventsRetracted", "versions": command.get("versions")}),
                 "version": len(log.events) + 1, "occurred_at": command["occurred_at"].isoformat()}
    if kind == "retract":
        by_version = {e["version"]: e for e in log.events}
        gone = {v for e in log.events if e["type"] == "EventsRetracted" for v in e["versions"]}
        if any(v not in by_version or v == 1 or by_version[v]["type"] == "EventsRetracted" or v in gone
               for v in command["versions"]):
            return "refused version"
    elif command["occurred_at"] < T0:
        return "before registration"
    history = simple_history([*log.events, candidate])
    broken, _ = simple_replay(history)
    if kind != "retract":
        _, at_place = simple_replay(history[:history.index(candidate)])
        if broken is candidate:
            return "own rule"
        if kind == "record_progress" and at_place["courses"][command["course_id"]]["progress"] >= command["percent"]:
            return "nothing"
        if kind == "correct_officer_details" and at_place["name"] == command["name_ct"]:
            return "own rule"
    if broken is None:
        return "accepted"
    return f"{'retract' if kind == 'retract' else 'inserted'} {broken['version']}"


def outcome_of(log: Log, kind: str, command: dict[str, Any]) -> tuple[str, Event | str | None]:
    """What accept answered, in expected_outcome's words, and its body or error message."""
    before = copy.deepcopy(log.events)
    try:
        body = accept(log.events, kind, command, REF)
    except RuleViolation as exc:
        assert log.events == before, "a rejected command changed the event list"
        message = str(exc)
        return _rejection(kind, command, message), message
    return ("nothing" if body is None else "accepted"), body


def _rejection(kind: str, command: dict[str, Any], message: str) -> str:
    at = command["occurred_at"].isoformat()
    if message.startswith(f"occurred_at: inserted at {at} it would leave version "):
        return f"inserted {message.split('leave version ')[1].split(' ')[0]}"
    if message.startswith("versions: without ") and message.endswith("; retract them together"):
        return f"retract {message.split(', version ')[-1].split(' ')[0]}"
    if kind == "retract":
        return "refused version"
    return "before registration" if message.startswith("occurred_at:") else "own rule"


@PROPERTY
@given(steps=st.lists(STEP, min_size=4, max_size=30))
def test_random_commands_keep_a_valid_history_that_a_simple_replay_agrees_with(steps: list[tuple[Any, ...]]) -> None:
    log = registered()
    for step in steps:
        kind, command, event = command_of(step, log)
        expected = expected_outcome(log, kind, command, event)
        outcome, answer = outcome_of(log, kind, command)
        assert outcome == expected, (step, log.events)
        end = fold(log.events)
        if kind != "retract" and not is_late(end, command["occurred_at"]):
            try:  # not late: the end state alone gives the same answer
                assert accept_at_end(end, kind, command, REF) == answer
            except RuleViolation as exc:
                assert str(exc) == answer
        if isinstance(answer, dict):
            log.append(answer)
        history = business_history(log.events)
        assert history == simple_history(log.events)
        state = OfficerState("O1")
        for e in history:
            assert check(state, e, REF) is None, (e, log.events)
            state = evolve(state, e)
        assert comparable(fold(log.events)) == comparable(state) == simple_replay(simple_history(log.events))[1]


def test_decide_alone_needs_no_events() -> None:
    state = fold(registered().events)
    body = decide(state, "enrol", {"officer_id": "O1", "course_id": "K2", "occurred_at": t(1)}, REF)
    assert body == {"type": "CourseEnrolled", "officer_id": "O1", "course_id": "K2", "occurred_at": t(1).isoformat()}
