"""A property of the whole ledger (embedded, SQLite): random histories with random late
facts, retractions and detail corrections, projected incrementally at random points,
leave every read model equal to a fresh fold of the business history (tests/oracle.py,
tests/plan_oracle.py), and a rejected command changes nothing in the store."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.projections.runner import Runner
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register
from tests.integration.test_projections import assert_matches_fold

OFFICERS = ("O1", "O2", "O3")
COURSES = ("K-BUD", "K-ETH")
POSTINGS = (("DOR", "P-US"), ("DOR", None), ("AIIMS", "P-DOC"), ("CBIC", "P-DIR"))

officer = st.sampled_from(OFFICERS)
day = st.integers(min_value=0, max_value=40)
course_command = st.builds(
    lambda kind, who, d, course, percent, score: officer_cmd(
        kind, d, who, course_id=course,
        **({"percent": percent} if kind == "record_progress" else {"score": score} if kind == "attempt_assessment" else {})),
    st.sampled_from(("enrol", "record_progress", "attempt_assessment", "complete_course", "withdraw")),
    officer, day, st.sampled_from(COURSES), st.integers(0, 100), st.sampled_from((30, 70, 95)))
transfer = st.builds(
    lambda who, d, posting: officer_cmd("transfer_officer", d, who, org_id=posting[0],
                                        **({"post_id": posting[1]} if posting[1] else {})),
    officer, day, st.sampled_from(POSTINGS))
correction = st.builds(
    lambda who, d, name: {"type": "correct_officer_details", "officer_id": who, "name": name,
                          "occurred_at": officer_cmd("enrol", d)["occurred_at"]},
    officer, day, st.sampled_from(("Asha Verma", "Asha Varma", "A. Verma")))
# A retraction names versions counted back from the officer's latest event when it runs
# (most are then valid; some orphan a later event, retract a retraction or repeat one).
retraction = st.builds(
    lambda who, back, reason: {"type": "retract", "officer_id": who, "back": back, "reason": reason},
    officer, st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True),
    st.sampled_from(("recorded_in_error", "duplicate", "wrong_officer")))


def concrete(ledger: Ledger, command: dict[str, Any]) -> dict[str, Any]:
    if command["type"] != "retract":
        return command
    latest = len(ledger.officer_events(command["officer_id"]))
    versions = [latest - back for back in command["back"] if latest - back >= 1] or [latest]
    return {**{k: v for k, v in command.items() if k != "back"}, "versions": versions}


# A whole course at once (enrol, progress 100, a passing attempt, complete): completions
# are what plans, profiles and aggregates count, and single random commands rarely get there.
completion = st.builds(
    lambda who, d, course: [officer_cmd("enrol", d, who, course_id=course),
                            officer_cmd("record_progress", d, who, course_id=course, percent=100),
                            *([officer_cmd("attempt_assessment", d, who, course_id=course, score=95)]
                              if course == "K-BUD" else []),
                            officer_cmd("complete_course", d, who, course_id=course)],
    officer, day, st.sampled_from(COURSES))
step = st.one_of(course_command, course_command, completion, completion, transfer, correction, retraction,
                 st.just("project"))


@given(st.lists(step, min_size=5, max_size=30))
@hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_corrections_keep_every_read_model_equal_to_the_fold(steps: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(store=f"sqlite:///{Path(folder) / 'p.db'}")
        ledger = Ledger(settings)
        db = Database(settings)
        runner = Runner(db)
        setup = [*reference(), *(register(o) for o in OFFICERS)]
        assert all(o.status == "accepted" for o in ledger.ingest(json.dumps(c) for c in setup))
        commands = [c for s in steps for c in (s if isinstance(s, list) else [s])]
        for command in commands:
            if command == "project":
                LogFollower(ledger, runner).run(until_idle=True)
                continue
            before = ledger.recorder.max_notification_id()
            outcome = ledger.execute(concrete(ledger, command))
            if outcome.status == "rejected":
                assert ledger.recorder.max_notification_id() == before, outcome
        LogFollower(ledger, runner).run(until_idle=True)
        assert_matches_fold(settings, in_process=True)
        db.close()
        ledger.close()
