"""Read-model rules on small, hand-made histories (embedded mode, temporary SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.projections.runner import Item, Runner
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, present, reference, register


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(store=f"sqlite:///{tmp_path / 'p.db'}")
        self.ledger = Ledger(self.settings)
        self.db = Database(self.settings)
        self.runner = Runner(self.db)
        self.read = ReadModels(self.db, self.ledger)

    def run(self, *commands: dict[str, Any]) -> None:
        outcomes = list(self.ledger.ingest(json.dumps(c) for c in commands))
        assert all(o.status == "accepted" for o in outcomes), outcomes
        LogFollower(self.ledger, self.runner).run(until_idle=True)


def post(post_id: str, org: str, *needs: tuple[str, int]) -> dict[str, Any]:
    return {"type": "define_post", "post_id": post_id, "org_id": org, "title": "t", "roles": [
        {"name": "r", "activities": [{"name": "a", "competencies": [
            {"competency_id": c, "level": lvl} for c, lvl in needs]}]}]}


def course(course_id: str, hours: float, *builds: tuple[str, int]) -> dict[str, Any]:
    return {"type": "publish_course", "course_id": course_id, "title": course_id, "provider": "p",
            "duration_hours": hours, "competencies": [{"competency_id": c, "level": lvl} for c, lvl in builds]}


def test_a_frac_revision_changes_every_officer_on_the_post(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run(*reference(), register("O1"), register("O2"), register("O3", post_id=None))
    assert present(w.read.competency_profile("O1"))["required"] == {"C1": 4, "C2": 2}
    w.run(post("P-US", "DOR", ("C3", 5)))
    for officer in ("O1", "O2"):
        profile = w.read.competency_profile(officer)
        assert profile is not None
        assert profile["required"] == {"C3": 5} and profile["gaps"] == {"C3": 5}
    assert present(w.read.competency_profile("O3"))["required"] == {}


def test_gaps_and_recommendations_follow_the_spec_order(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run(*reference(),
          post("P-X", "DOR", ("C1", 3), ("C2", 3), ("C3", 2)),
          course("K-A", 10, ("C1", 3), ("C2", 3)),      # improves 1 gap (C2 is met), long
          course("K-B", 2, ("C1", 3), ("C3", 2)),       # improves 2 gaps, short
          course("K-C", 1, ("C2", 1)),                  # level not above acquired: no help
          course("K-D", 1, ("C3", 1)),                  # improves 1 gap
          course("K-E", 1, ("C1", 2)),                  # would help C1 but already completed
          register("O1", post_id="P-X"),
          officer_cmd("enrol", 1, course_id="K-E"),
          officer_cmd("record_progress", 2, course_id="K-E", percent=100),
          officer_cmd("complete_course", 3, course_id="K-E"),
          officer_cmd("enrol", 4, course_id="K-ETH"),
          officer_cmd("record_progress", 5, course_id="K-ETH", percent=100),
          officer_cmd("complete_course", 6, course_id="K-ETH"))
    profile = w.read.competency_profile("O1")
    assert profile == {
        "officer_id": "O1", "post_id": "P-X",
        "required": {"C1": 3, "C2": 3, "C3": 2},
        "acquired": {"C1": 2, "C2": 3},
        "gaps": {"C1": 1, "C3": 2},
        # K-BUD builds C1 only to level 2, which is already acquired.
        "recommended": ["K-B", "K-D", "K-A"],
    }


def test_ministry_counts_follow_the_posting_at_event_time(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run(*reference(), register("O1"), register("O2"),
          officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
          officer_cmd("transfer_officer", 2, "O1", org_id="AIIMS", post_id="P-DOC"),
          officer_cmd("record_progress", 3, "O1", course_id="K-ETH", percent=100),
          officer_cmd("complete_course", 365, "O1", course_id="K-ETH"))
    w.ledger.erase("O2", reason="request")
    LogFollower(w.ledger, w.runner).run(until_idle=True)
    assert w.read.ministry("MOF") == {
        "ministry_id": "MOF", "headcount": 0,
        "years": {"2025-26": {"enrolments": 1, "completions": 0, "learning_hours": 0.0, "officers_completed": 0}}}
    assert w.read.ministry("MOH") == {
        "ministry_id": "MOH", "headcount": 1,
        "years": {"2026-27": {"enrolments": 0, "completions": 1, "learning_hours": 4.0, "officers_completed": 1}}}


def test_the_same_batch_twice_changes_nothing(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run(*reference(), register("O1"), officer_cmd("enrol", 1, course_id="K-ETH"),
          officer_cmd("record_progress", 2, course_id="K-ETH", percent=100),
          officer_cmd("complete_course", 3, course_id="K-ETH"))
    before = (w.read.record("O1"), w.read.ministry("MOF"), w.read.competency_profile("O1"))
    items = [Item("log", 0, nid, e.get("officer_id"), e) for nid, e in w.ledger.iter_log()]
    with w.db.transaction() as c:
        c.execute("DELETE FROM ledger_offsets")  # as if the positions were lost
    w.runner.process(items)
    w.runner.process(items[3:])
    assert (w.read.record("O1"), w.read.ministry("MOF"), w.read.competency_profile("O1")) == before


def test_a_version_gap_is_dead_lettered_and_the_officer_held_back(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run(*reference(), register("O1"), register("O2"))
    fake = {"type": "CourseEnrolled", "event_id": "x", "officer_id": "O1", "version": 5,
            "occurred_at": "2025-05-01T00:00:00Z", "recorded_at": "2025-05-01T00:00:00Z", "course_id": "K-ETH"}
    ok = {**fake, "officer_id": "O2", "version": 2}
    w.runner.process([Item("t", 0, 100, "O1", fake), Item("t", 0, 101, "O2", ok),
                      Item("t", 0, 102, "O1", {**fake, "version": 2})])
    letters = w.read.dead_letters()
    assert [(d["position"], d["reason"].split(":")[0]) for d in letters] == [(100, "version gap"), (102, "held back")]
    assert present(w.read.record("O1"))["enrolments"] == []
    assert [e["course_id"] for e in present(w.read.record("O2"))["enrolments"]] == ["K-ETH"]
