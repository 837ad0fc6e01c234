"""Every rule of the spec's command table, accepted on the good side and rejected on the bad.

Each case: commands that set the scene (all must be accepted), then the command
under test, its expected status, and for a rejection a fragment of the message
that names the field or rule. Runs on a temporary SQLite store: no service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.read.audit import AuditReader
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, present, reference, register

BASE = reference()
REG = [*BASE, register()]
ENROLLED_BUD = [*REG, officer_cmd("enrol", 1, course_id="K-BUD")]
DONE_BUD = [
    *ENROLLED_BUD,
    officer_cmd("record_progress", 2, course_id="K-BUD", percent=100),
    officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=75),
]


def org(org_id: str, kind: str, parent: str | None = None) -> dict[str, Any]:
    cmd: dict[str, Any] = {"type": "define_organisation", "org_id": org_id, "name": org_id, "kind": kind}
    if parent is not None:
        cmd["parent_id"] = parent
    return cmd


def course(course_id: str = "K-NEW", **extra: Any) -> dict[str, Any]:
    cmd = {"type": "publish_course", "course_id": course_id, "title": "t", "provider": "p",
           "duration_hours": 2, "competencies": [{"competency_id": "C1", "level": 2}], "assessment": None}
    cmd.update(extra)
    return cmd


def post(post_id: str = "P-NEW", org_id: str = "DOR", level: Any = 2, competency: str = "C1") -> dict[str, Any]:
    return {"type": "define_post", "post_id": post_id, "org_id": org_id, "title": "t", "roles": [
        {"name": "r", "activities": [{"name": "a", "competencies": [{"competency_id": competency, "level": level}]}]}]}


# (name, scene, command, expected status, fragment of the error)
CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], str, str]] = [
    ("ministry is defined", [], org("M1", "ministry"), "accepted", ""),
    ("organisation id already defined", BASE, org("MOF", "ministry"), "rejected", "org_id"),
    ("department under a ministry", BASE, org("D9", "department", "MOF"), "accepted", ""),
    ("parent unknown", BASE, org("D9", "department", "NOPE"), "rejected", "parent_id"),
    ("department under a department", BASE, org("D9", "department", "DOR"), "rejected", "parent_id"),
    ("organisation under a department", BASE, org("O9", "organisation", "DOR"), "accepted", ""),
    ("organisation under an organisation", BASE, org("O9", "organisation", "CBIC"), "rejected", "parent_id"),
    ("department without a parent", BASE, org("D9", "department"), "rejected", "parent_id"),
    ("unknown organisation kind", BASE, org("X9", "agency"), "rejected", "kind"),
    ("competency defined", BASE, {"type": "define_competency", "competency_id": "C9", "name": "n", "kind": "domain"}, "accepted", ""),
    ("competency id already defined", BASE, {"type": "define_competency", "competency_id": "C1", "name": "n", "kind": "domain"}, "rejected", "competency_id"),
    ("post defined", BASE, post(), "accepted", ""),
    ("post in unknown org", BASE, post(org_id="NOPE"), "rejected", "org_id"),
    ("post needs unknown competency", BASE, post(competency="C404"), "rejected", "competency_id"),
    ("post level 6", BASE, post(level=6), "rejected", "level"),
    ("post level 0", BASE, post(level=0), "rejected", "level"),
    ("post level not an integer", BASE, post(level=2.5), "rejected", "level"),
    ("post revision in the same org", BASE, post("P-US", "DOR", 5), "accepted", ""),
    ("post redefinition that moves org", BASE, post("P-US", "CBIC"), "rejected", "org_id"),
    ("course published", BASE, course(), "accepted", ""),
    ("course id already published", BASE, course("K-BUD"), "rejected", "course_id"),
    ("course builds unknown competency", BASE, course(competencies=[{"competency_id": "C404", "level": 1}]), "rejected", "competency_id"),
    ("course lists a competency twice", BASE, course(competencies=[{"competency_id": "C1", "level": 1}, {"competency_id": "C1", "level": 2}]), "rejected", "competencies"),
    ("course with no competencies", BASE, course(competencies=[]), "accepted", ""),
    ("course duration 0", BASE, course(duration_hours=0), "rejected", "duration_hours"),
    ("course duration 1000", BASE, course(duration_hours=1000), "accepted", ""),
    ("course duration over 1000", BASE, course(duration_hours=1000.5), "rejected", "duration_hours"),
    ("course pass mark 101", BASE, course(assessment={"pass_mark": 101, "max_attempts": 1}), "rejected", "pass_mark"),
    ("course max attempts 0", BASE, course(assessment={"pass_mark": 50, "max_attempts": 0}), "rejected", "max_attempts"),
    ("course with assessment", BASE, course(assessment={"pass_mark": 0, "max_attempts": 1}), "accepted", ""),
    ("officer registered", BASE, register(), "accepted", ""),
    ("officer registered without a post", BASE, register(post_id=None), "accepted", ""),
    ("officer already registered", REG, register(), "rejected", "officer_id"),
    ("register in unknown org", BASE, register(org_id="NOPE"), "rejected", "org_id"),
    ("register on unknown post", BASE, register(post_id="P-404"), "rejected", "post_id"),
    ("register on a post of another org", BASE, register(post_id="P-DIR"), "rejected", "post_id"),
    ("register with empty name", BASE, register(name=""), "rejected", "name"),
    ("register with 201-char name", BASE, register(name="x" * 201), "rejected", "name"),
    ("register with bad email", BASE, register(email="asha"), "rejected", "email"),
    ("transfer", REG, officer_cmd("transfer_officer", 1, org_id="CBIC", post_id="P-DIR"), "accepted", ""),
    ("transfer to same org, off post", REG, officer_cmd("transfer_officer", 1, org_id="DOR"), "accepted", ""),
    ("transfer unregistered officer", BASE, officer_cmd("transfer_officer", 1, org_id="CBIC"), "rejected", "officer_id"),
    ("transfer to unknown org", REG, officer_cmd("transfer_officer", 1, org_id="NOPE"), "rejected", "org_id"),
    ("transfer to unknown post", REG, officer_cmd("transfer_officer", 1, org_id="CBIC", post_id="P-404"), "rejected", "post_id"),
    ("transfer to post of another org", REG, officer_cmd("transfer_officer", 1, org_id="CBIC", post_id="P-US"), "rejected", "post_id"),
    ("transfer to same org and post", REG, officer_cmd("transfer_officer", 1, org_id="DOR", post_id="P-US"), "rejected", "org_id"),
    ("enrol", REG, officer_cmd("enrol", 1, course_id="K-BUD"), "accepted", ""),
    ("enrol unregistered officer", BASE, officer_cmd("enrol", 1, course_id="K-BUD"), "rejected", "officer_id"),
    ("enrol in unknown course", REG, officer_cmd("enrol", 1, course_id="K-404"), "rejected", "course_id"),
    ("enrol twice", ENROLLED_BUD, officer_cmd("enrol", 2, course_id="K-BUD"), "rejected", "course_id"),
    ("enrol after completing", [*DONE_BUD, officer_cmd("complete_course", 4, course_id="K-BUD")], officer_cmd("enrol", 5, course_id="K-BUD"), "rejected", "course_id"),
    ("enrol again after withdrawing", [*ENROLLED_BUD, officer_cmd("withdraw", 2, course_id="K-BUD")], officer_cmd("enrol", 3, course_id="K-BUD"), "accepted", ""),
    ("progress", ENROLLED_BUD, officer_cmd("record_progress", 2, course_id="K-BUD", percent=40), "accepted", ""),
    ("progress not enrolled", REG, officer_cmd("record_progress", 2, course_id="K-BUD", percent=40), "rejected", "course_id"),
    ("progress after withdrawal", [*ENROLLED_BUD, officer_cmd("withdraw", 2, course_id="K-BUD")], officer_cmd("record_progress", 3, course_id="K-BUD", percent=40), "rejected", "course_id"),
    ("progress not above current", [*ENROLLED_BUD, officer_cmd("record_progress", 2, course_id="K-BUD", percent=40)], officer_cmd("record_progress", 3, course_id="K-BUD", percent=30), "accepted", ""),
    ("progress 101", ENROLLED_BUD, officer_cmd("record_progress", 2, course_id="K-BUD", percent=101), "rejected", "percent"),
    ("progress not an integer", ENROLLED_BUD, officer_cmd("record_progress", 2, course_id="K-BUD", percent=50.5), "rejected", "percent"),
    ("attempt", ENROLLED_BUD, officer_cmd("attempt_assessment", 2, course_id="K-BUD", score=10), "accepted", ""),
    ("attempt not enrolled", REG, officer_cmd("attempt_assessment", 2, course_id="K-BUD", score=10), "rejected", "course_id"),
    ("attempt where course has no assessment", [*REG, officer_cmd("enrol", 1, course_id="K-ETH")], officer_cmd("attempt_assessment", 2, course_id="K-ETH", score=90), "rejected", "no assessment"),
    ("attempt after passing", DONE_BUD, officer_cmd("attempt_assessment", 4, course_id="K-BUD", score=90), "rejected", "already passed"),
    ("attempts used up", [*ENROLLED_BUD, officer_cmd("attempt_assessment", 2, course_id="K-BUD", score=10), officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=20)], officer_cmd("attempt_assessment", 4, course_id="K-BUD", score=90), "rejected", "used up"),
    ("attempt score over 100", ENROLLED_BUD, officer_cmd("attempt_assessment", 2, course_id="K-BUD", score=100.5), "rejected", "score"),
    ("complete", DONE_BUD, officer_cmd("complete_course", 4, course_id="K-BUD"), "accepted", ""),
    ("complete without assessment course", [*REG, officer_cmd("enrol", 1, course_id="K-ETH"), officer_cmd("record_progress", 2, course_id="K-ETH", percent=100)], officer_cmd("complete_course", 3, course_id="K-ETH"), "accepted", ""),
    ("complete not enrolled", REG, officer_cmd("complete_course", 4, course_id="K-BUD"), "rejected", "course_id"),
    ("complete below 100", [*ENROLLED_BUD, officer_cmd("record_progress", 2, course_id="K-BUD", percent=99), officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=90)], officer_cmd("complete_course", 4, course_id="K-BUD"), "rejected", "below 100"),
    ("complete without passing", [*ENROLLED_BUD, officer_cmd("record_progress", 2, course_id="K-BUD", percent=100), officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=59.9)], officer_cmd("complete_course", 4, course_id="K-BUD"), "rejected", "not been passed"),
    ("withdraw", ENROLLED_BUD, officer_cmd("withdraw", 2, course_id="K-BUD"), "accepted", ""),
    ("withdraw not enrolled", REG, officer_cmd("withdraw", 2, course_id="K-BUD"), "rejected", "course_id"),
    ("withdraw after completing", [*DONE_BUD, officer_cmd("complete_course", 4, course_id="K-BUD")], officer_cmd("withdraw", 5, course_id="K-BUD"), "rejected", "course_id"),
    ("same instant as latest event", ENROLLED_BUD, officer_cmd("record_progress", 1, course_id="K-BUD", percent=10), "accepted", ""),
    # Late facts: inserted at their occurred_at, the whole history must stay valid.
    ("late progress before the enrolment", ENROLLED_BUD, officer_cmd("record_progress", 0, course_id="K-BUD", percent=10), "rejected", "no enrolment"),
    ("before the registration", REG, officer_cmd("enrol", -1, course_id="K-BUD"), "rejected", "occurred_at"),
    ("late fact that fits", [*ENROLLED_BUD, officer_cmd("record_progress", 5, course_id="K-BUD", percent=50)], officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=10), "accepted", ""),
    ("late progress above a later one", [*ENROLLED_BUD, officer_cmd("record_progress", 5, course_id="K-BUD", percent=50)], officer_cmd("record_progress", 3, course_id="K-BUD", percent=80), "accepted", ""),
    ("late enrolment before a later one", ENROLLED_BUD, officer_cmd("enrol", 0, course_id="K-BUD"), "rejected", "it would leave version 2 (CourseEnrolled K-BUD)"),
    ("late attempt past the attempts", [*ENROLLED_BUD, officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=10), officer_cmd("attempt_assessment", 4, course_id="K-BUD", score=20)], officer_cmd("attempt_assessment", 2, course_id="K-BUD", score=30), "rejected", "past the course's 2 attempts"),
    ("late transfer that repeats a later one", [*REG, officer_cmd("transfer_officer", 5, org_id="CBIC", post_id="P-DIR")], officer_cmd("transfer_officer", 3, org_id="CBIC", post_id="P-DIR"), "rejected", "it would leave version 2 (OfficerTransferred CBIC)"),
    ("officer command without occurred_at", REG, {"type": "enrol", "officer_id": "O1", "course_id": "K-BUD"}, "rejected", "occurred_at"),
    ("instant without offset", REG, {**officer_cmd("enrol", 1, course_id="K-BUD"), "occurred_at": "2025-04-02T09:00:00"}, "rejected", "occurred_at"),
    ("unknown field", REG, {**officer_cmd("enrol", 1, course_id="K-BUD"), "note": "x"}, "rejected", "note"),
    ("bad id", BASE, register(officer_id="-bad"), "rejected", "officer_id"),
    ("id of 65 characters", BASE, register(officer_id="a" * 65), "rejected", "officer_id"),
]


def _ledger(tmp_path: Path) -> Ledger:
    return Ledger(Settings(store=f"sqlite:///{tmp_path / 'rules.db'}"))


@pytest.mark.parametrize(("name", "scene", "command", "status", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_command_rule(tmp_path: Path, name: str, scene: list[dict[str, Any]], command: dict[str, Any], status: str, fragment: str) -> None:
    ledger = _ledger(tmp_path)
    for outcome in ledger.ingest(json.dumps(c) for c in scene):
        assert outcome.status == "accepted", (outcome, scene[outcome.line - 1])
    before = ledger.recorder.max_notification_id() or 0
    outcome = ledger.execute(command)
    assert outcome.status == status, outcome
    if status == "rejected":
        assert fragment in (outcome.error or ""), outcome.error
        assert (ledger.recorder.max_notification_id() or 0) == before, "a rejected command wrote an event"


def test_progress_not_above_current_changes_nothing(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    list(ledger.ingest(json.dumps(c) for c in [*ENROLLED_BUD, officer_cmd("record_progress", 2, course_id="K-BUD", percent=40)]))
    versions = len(ledger.officer_events("O1"))
    assert ledger.execute(officer_cmd("record_progress", 3, course_id="K-BUD", percent=40)).status == "accepted"
    assert len(ledger.officer_events("O1")) == versions


def test_enrolling_again_after_withdrawal_starts_afresh(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    scene = [*ENROLLED_BUD,
             officer_cmd("record_progress", 2, course_id="K-BUD", percent=70),
             officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=10),
             officer_cmd("attempt_assessment", 4, course_id="K-BUD", score=20),
             officer_cmd("withdraw", 5, course_id="K-BUD"),
             officer_cmd("enrol", 6, course_id="K-BUD")]
    assert all(o.status == "accepted" for o in ledger.ingest(json.dumps(c) for c in scene))
    enrolment = present(AuditReader(ledger).record("O1"))["enrolments"][0]
    assert (enrolment["status"], enrolment["progress"], enrolment["attempts"]) == ("enrolled", 0, [])
    # Both attempts of the old enrolment were used; the new one has its own.
    assert ledger.execute(officer_cmd("attempt_assessment", 7, course_id="K-BUD", score=90)).status == "accepted"


def test_any_command_for_an_erased_officer_is_rejected(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    list(ledger.ingest(json.dumps(c) for c in ENROLLED_BUD))
    ledger.erase("O1", reason="data principal's request")
    for command in (officer_cmd("record_progress", 2, course_id="K-BUD", percent=50),
                    officer_cmd("transfer_officer", 2, org_id="CBIC"),
                    officer_cmd("withdraw", 2, course_id="K-BUD"),
                    register()):
        outcome = ledger.execute(command)
        assert outcome.status == "rejected" and "officer_id" in (outcome.error or ""), outcome


def test_command_id_with_same_content_is_duplicate_and_with_other_content_rejected(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    list(ledger.ingest(json.dumps(c) for c in REG))
    enrol = {**officer_cmd("enrol", 1, course_id="K-BUD"), "command_id": "cmd-1"}
    assert ledger.execute(enrol).status == "accepted"
    assert ledger.execute(enrol).status == "duplicate"
    other = {**officer_cmd("enrol", 1, course_id="K-ETH"), "command_id": "cmd-1"}
    outcome = ledger.execute(other)
    assert outcome.status == "rejected" and "command_id" in (outcome.error or "")
    assert [e["type"] for e in ledger.officer_events("O1")] == ["OfficerRegistered", "CourseEnrolled"]


def test_rejected_command_id_is_not_remembered(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    list(ledger.ingest(json.dumps(c) for c in REG))
    early = {**officer_cmd("enrol", 1, course_id="K-404"), "command_id": "cmd-2"}
    assert ledger.execute(early).status == "rejected"
    fixed = {**officer_cmd("enrol", 1, course_id="K-BUD"), "command_id": "cmd-2"}
    assert ledger.execute(fixed).status == "accepted"


def test_assessment_pass_is_score_at_or_above_pass_mark(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    list(ledger.ingest(json.dumps(c) for c in ENROLLED_BUD))
    ledger.execute(officer_cmd("attempt_assessment", 2, course_id="K-BUD", score=59.99))
    ledger.execute(officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=60))
    attempts = present(AuditReader(ledger).record("O1"))["enrolments"][0]["attempts"]
    assert attempts == [{"score": 59.99, "passed": False}, {"score": 60.0, "passed": True}]
