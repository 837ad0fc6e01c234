"""Corrections without forgetting, written from DOMAIN.md "Late facts, corrections and
retractions": every read model follows the business history, reads as known at an instant,
history flags, who made each correction, and erasure of every corrected version.

Each test runs on SQLite and on PostgreSQL (the ``settings`` fixture), embedded mode.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.projections.runner import Runner
from ledger.read.audit import AuditReader
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import at, data_key, officer_cmd, present, reference, register
from tests.integration.test_projections import assert_matches_fold
from tests.test_store import _raw_store_bytes


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        self.db = Database(settings)
        self.read = ReadModels(self.db, self.ledger)
        self.audit = AuditReader(self.ledger)

    def run(self, *commands: dict[str, Any]) -> None:
        outcomes = list(self.ledger.ingest(json.dumps(c) for c in commands))
        assert all(o.status == "accepted" for o in outcomes), outcomes
        LogFollower(self.ledger, Runner(self.db)).run(until_idle=True)

    def reject(self, command: dict[str, Any]) -> str:
        before = self.ledger.recorder.max_notification_id()
        outcome = self.ledger.execute(command)
        assert outcome.status == "rejected", outcome
        assert self.ledger.recorder.max_notification_id() == before  # a rejection writes nothing
        return outcome.error or ""

    def matches_fold(self) -> None:
        assert_matches_fold(self.settings, in_process=True)


def complete(course: str, day: int, officer: str = "O1") -> list[dict[str, Any]]:
    steps = [officer_cmd("enrol", day, officer, course_id=course),
             officer_cmd("record_progress", day, officer, course_id=course, percent=100)]
    if course == "K-BUD":
        steps.append(officer_cmd("attempt_assessment", day, officer, course_id=course, score=80))
    return [*steps, officer_cmd("complete_course", day, officer, course_id=course)]


def retract(versions: list[int], officer: str = "O1", **extra: Any) -> dict[str, Any]:
    return {"type": "retract", "officer_id": officer, "versions": versions, "reason": "recorded_in_error", **extra}


def plan() -> dict[str, Any]:
    return {"type": "declare_capacity_plan", "ministry_id": "MOF", "fy": "2025-26", "min_learning_hours": 1,
            "targets": [{"competency_id": "C1", "level": 2, "officers": 1}]}


def test_a_late_transfer_re_attributes_what_follows_it_to_the_ministry_of_that_time(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), register("O1"), *complete("K-ETH", 10))
    assert present(w.read.ministry("MOF"))["years"]["2025-26"]["completions"] == 1
    # Reported late: O1 had moved to Health (AIIMS) on day 5, before enrolling.
    w.run(officer_cmd("transfer_officer", 5, org_id="AIIMS", post_id="P-DOC"))
    mof, moh = present(w.read.ministry("MOF")), present(w.read.ministry("MOH"))
    assert mof["headcount"] == 0 and mof["years"] == {}
    assert moh["headcount"] == 1 and moh["years"]["2025-26"] == {
        "enrolments": 1, "completions": 1, "learning_hours": 4.0, "officers_completed": 1}
    record = present(w.read.record("O1"))
    assert [p["org_id"] for p in record["postings"]] == ["DOR", "AIIMS"] and record["ministry_id"] == "MOH"
    assert present(w.read.competency_profile("O1"))["post_id"] == "P-DOC"
    w.matches_fold()


def test_a_retracted_completion_leaves_every_read_model(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), plan(), register("O1"), *complete("K-BUD", 10))
    assert present(w.read.plan("MOF", "2025-26"))["targets"][0]["achieved"] == 1
    assert present(w.read.competency_profile("O1"))["acquired"] == {"C1": 2}
    completion = w.audit.history("O1")[-1]
    assert completion["type"] == "CourseCompleted"
    w.run(retract([completion["version"]], ticket="GRV-2025-0042"))
    assert present(w.read.ministry("MOF"))["years"]["2025-26"]["completions"] == 0
    assert present(w.read.ministry("MOF"))["years"]["2025-26"]["officers_completed"] == 0
    plan_now = present(w.read.plan("MOF", "2025-26"))
    assert plan_now["targets"][0]["achieved"] == 0 and plan_now["officers_meeting_hours"] == 0
    assert present(w.read.competency_profile("O1"))["acquired"] == {}
    gaps = {c["competency_id"]: c for c in present(w.read.gap_report("MOF"))["competencies"]}
    assert gaps["C1"]["officers_with_gap"] == 1
    record = present(w.read.record("O1"))
    assert record["completed_count"] == 0 and record["enrolments"][0]["status"] == "enrolled"
    w.matches_fold()


def test_a_retraction_that_would_orphan_a_later_event_is_refused_and_together_accepted(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), register("O1"), officer_cmd("enrol", 1, course_id="K-ETH"),
          officer_cmd("record_progress", 2, course_id="K-ETH", percent=40))
    error = w.reject(retract([2]))
    assert error == ("versions: without version 2 (CourseEnrolled K-ETH), version 3 (ProgressRecorded K-ETH) "
                     "has no enrolment; retract them together")
    w.run(retract([2, 3], reason="duplicate"))
    assert present(w.read.record("O1"))["enrolments"] == []
    w.matches_fold()


@pytest.mark.parametrize(("versions", "fragment"), [
    ([1], "registration"), ([9], "does not exist"), ([4], "is a retraction"), ([3], "already retracted"),
    ([], "versions"), ([2, 2], "versions"), (list(range(2, 103)), "versions"), (["3"], "versions"),
])
def test_what_cannot_be_retracted(settings: Settings, versions: list[Any], fragment: str) -> None:
    w = World(settings)
    w.run(*reference(), register("O1"), officer_cmd("enrol", 1, course_id="K-ETH"),
          officer_cmd("record_progress", 2, course_id="K-ETH", percent=40), retract([3]))
    assert fragment in w.reject(retract(versions))


def test_a_retraction_needs_a_reason_code_and_an_id_ticket(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), register("O1"), officer_cmd("enrol", 1, course_id="K-ETH"))
    assert w.reject(retract([2], reason="Asha asked me to")).startswith("reason:")
    assert w.reject(retract([2], ticket="has spaces and a name")).startswith("ticket:")
    assert w.reject({**retract([2]), "note": "free text"}).startswith("note:")


def test_corrected_details_before_and_after_their_occurred_at_and_as_known(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), register("O1", name="Asha Verma", email="asha@example.gov.in"))
    recorded_before = datetime.now().astimezone()
    w.run({"type": "correct_officer_details", "officer_id": "O1", "name": "Asha Varma", "occurred_at": at(10)})
    assert present(w.read.record("O1"))["name"] == "Asha Varma"
    assert present(w.audit.record("O1", as_of=datetime.fromisoformat(at(9))))["name"] == "Asha Verma"
    assert present(w.audit.record("O1", as_of=datetime.fromisoformat(at(10))))["name"] == "Asha Varma"
    assert present(w.audit.record("O1", known_at=recorded_before))["name"] == "Asha Verma"
    assert present(w.audit.record("O1"))["email"] == "asha@example.gov.in"  # not corrected
    # The same value again is no correction; neither field is none either.
    assert "nothing to correct" in w.reject(
        {"type": "correct_officer_details", "officer_id": "O1", "name": "Asha Varma", "occurred_at": at(11)})
    assert w.reject({"type": "correct_officer_details", "officer_id": "O1", "occurred_at": at(11)}).startswith("name:")
    # From the start: the registration's occurred_at; then retracting it restores the one before.
    w.run({"type": "correct_officer_details", "officer_id": "O1", "email": "asha.varma@example.gov.in",
           "occurred_at": at(0)})
    assert present(w.audit.record("O1", as_of=datetime.fromisoformat(at(1))))["email"] == "asha.varma@example.gov.in"
    w.run(retract([2]))
    assert present(w.read.record("O1"))["name"] == "Asha Verma"
    w.matches_fold()


def test_known_at_reads_around_a_retraction_and_a_late_fact(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), register("O1"), *complete("K-ETH", 10))
    before_late = datetime.now().astimezone()
    w.run(officer_cmd("transfer_officer", 5, org_id="AIIMS", post_id="P-DOC"))
    before_retraction = datetime.now().astimezone()
    w.run(retract([4]))  # the completion
    assert present(w.audit.record("O1", known_at=before_late))["ministry_id"] == "MOF"
    assert present(w.audit.record("O1", known_at=before_retraction))["completed_count"] == 1
    assert present(w.audit.record("O1"))["completed_count"] == 0
    # What the ledger said at K about day 7: on day 7 O1 was in Health, but only known since the late fact.
    day7 = datetime.fromisoformat(at(7))
    assert present(w.audit.record("O1", as_of=day7, known_at=before_late))["ministry_id"] == "MOF"
    assert present(w.audit.record("O1", as_of=day7, known_at=before_retraction))["ministry_id"] == "MOH"
    assert w.audit.record("O1", known_at=datetime.fromisoformat("2020-01-01T00:00:00+00:00")) is None


def test_history_marks_retracted_and_late_events(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), register("O1"), officer_cmd("enrol", 3, course_id="K-ETH"))
    assert "no enrolment" in w.reject(officer_cmd("record_progress", 2, course_id="K-ETH", percent=10))
    w.run(officer_cmd("transfer_officer", 1, org_id="AIIMS", post_id="P-DOC"), retract([2]))
    history = w.audit.history("O1")
    assert [(e["type"], e.get("retracted_by"), e.get("late")) for e in history] == [
        ("OfficerRegistered", None, None), ("CourseEnrolled", 4, None),
        ("OfficerTransferred", None, True), ("EventsRetracted", None, None)]
    assert history[3]["versions"] == [2] and history[3]["reason"] == "recorded_in_error"


def test_who_made_each_correction_is_kept_beside_it(settings: Settings) -> None:
    w = World(settings)
    w.run(*reference(), register("O1"), officer_cmd("enrol", 1, course_id="K-ETH"), retract([2]))
    with w.db.reading() as c:
        c.execute("SELECT officer_id, version, role, token_name FROM correction_actors")
        assert [tuple(r) for r in c.fetchall()] == [("O1", 3, "cli", None)]


def test_erasure_after_corrections_leaves_no_plaintext_of_any_version(settings: Settings) -> None:
    w = World(settings)
    first, second, third = "Zorawar Plaintextsingh", "Zorawar Correctedsingh", "zorawar.fixedmail@example.gov.in"
    w.run(*reference(), register("O1", name=first, email="zorawar.plaintext@example.gov.in"),
          {"type": "correct_officer_details", "officer_id": "O1", "name": second, "occurred_at": at(3)},
          {"type": "correct_officer_details", "officer_id": "O1", "email": third, "occurred_at": at(0)})
    assert present(w.read.record("O1"))["email"] == third
    assert w.ledger.erase("O1", reason="data_principal_request") is True
    LogFollower(w.ledger, Runner(w.db)).run(until_idle=True)
    assert data_key(w.ledger, "O1") is None
    record = present(w.read.record("O1"))
    assert record["name"] is None and record["email"] is None
    assert all(e.get("name") is None and e.get("email") is None for e in w.audit.history("O1"))
    for raw in _raw_store_bytes(settings):
        for secret in (first, second, third, "Plaintextsingh", "Correctedsingh", "fixedmail"):
            assert secret.encode() not in raw
    assert w.reject({"type": "correct_officer_details", "officer_id": "O1", "name": "X", "occurred_at": at(9)}) \
        == "officer_id: officer 'O1' was erased"
    assert w.reject(retract([2])) == "officer_id: officer 'O1' was erased"
