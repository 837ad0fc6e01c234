"""The bulk path (ledger.write.bulk) stores what the plain path stores, for every kind of officer command.

tests/test_fast_paths.py compares both on generated input; this compares them on input built to
hold what generated input seldom has, in batches that mix them: late facts accepted and refused,
retractions, detail corrections (accepted, and refused as no change), duplicates and conflicting
resends, rejections of every kind next to accepted commands, reference data defined between
officer commands that name it, an erasure between batches, and a command that fails after it
changed its officer. Same clock and random bytes, same answers, same rows in every table.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Any

import pytest

from ledger.config import Settings
from ledger.domain.errors import LedgerError
from ledger.write import application, handlers
from ledger.write.application import Ledger
from ledger.write.bulk import BulkUnit
from tests.helpers import at, officer_cmd, reference, register
from tests.test_fast_paths import SQLITE_TABLES, Fresh, _sqlite_rows, deterministic  # noqa: F401

# Reference data at a fixed time (its default is the clock, which the two runs do not share).
WORLD = [{**c, "occurred_at": at(0, 8)} for c in reference()]
BATCHES: list[list[dict[str, Any]]] = [
    [
        *WORLD,
        register("O1", 0, command_id="r1"), register("O2", 0), register("O3", 1),
        officer_cmd("enrol", 2, "O1", course_id="K-BUD", command_id="e1"),
        officer_cmd("record_progress", 3, "O1", course_id="K-BUD", percent=50),
        officer_cmd("enrol", 2, "O2", course_id="K-ETH"),
        register("O1", 0),  # already registered
        officer_cmd("enrol", 2, "O9", course_id="K-BUD"),  # not registered
        officer_cmd("transfer_officer", 4, "O3", org_id="CBIC", post_id="P-NEW"),  # the post comes later
        {"type": "define_post", "post_id": "P-NEW", "org_id": "CBIC", "title": "Joint Director", "roles": [],
         "occurred_at": at(0, 8)},
        officer_cmd("transfer_officer", 4, "O3", org_id="CBIC", post_id="P-NEW"),
        officer_cmd("record_progress", 3, "O1", course_id="K-BUD", percent=40),  # not above 50: no event
    ],
    [
        officer_cmd("enrol", 1, "O1", course_id="K-ETH"),  # late, accepted
        officer_cmd("attempt_assessment", 5, "O1", course_id="K-BUD", score=70.5),
        officer_cmd("correct_officer_details", 1, "O2", name="Ravi Kumar"),  # late correction
        officer_cmd("correct_officer_details", 2, "O2", name="Ravi Kumar"),  # the value in force: refused
        officer_cmd("retract", 10, "O1", versions=[3], reason="recorded_in_error", ticket="T-1"),
        officer_cmd("withdraw", 1, "O2", course_id="K-BUD"),  # late, no enrolment: refused
        register("O1", 0, command_id="r1"),  # the same command again: duplicate
        officer_cmd("enrol", 2, "O1", course_id="K-ETH", command_id="e1"),  # the id with other content
        officer_cmd("retract", 10, "O2", versions=[1], reason="duplicate"),  # the registration: refused
        register("O4", 3, name="Meera Iyer"),
        officer_cmd("enrol", 3, "O4", course_id="K-BUD"),
        officer_cmd("record_progress", 2, "O4", course_id="K-BUD", percent=10),  # before the enrolment: refused
    ],
    [
        officer_cmd("record_progress", 11, "O1", course_id="K-BUD", percent=100),
        officer_cmd("complete_course", 12, "O1", course_id="K-BUD"),
        officer_cmd("withdraw", 6, "O1", course_id="K-BUD"),  # late: would leave the completion invalid
        officer_cmd("enrol", 6, "O3", course_id="K-BUD"),  # erased between the batches
        officer_cmd("correct_officer_details", 7, "O4", email="meera.iyer@example.gov.in"),
        officer_cmd("enrol", 8, "O2", course_id="K-BUD"),
        officer_cmd("record_progress", 9, "O2", course_id="K-BUD", percent=30),
        officer_cmd("enrol", 9, "O4", course_id="K-ETH"),  # fails after its event (see _failing_enrol)
        officer_cmd("record_progress", 10, "O4", course_id="K-BUD", percent=20),
    ],
]


class _Clock(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _Clock:
        return cls(2026, 2, 1, tzinfo=tz)


def _failing_enrol(real: handlers.Handler) -> handlers.Handler:
    """The real enrol handler, which then raises for O4 in K-ETH: a bug after the event."""

    def enrol(work: Any, fields: dict[str, Any]) -> None:
        real(work, fields)
        if fields["officer_id"] == "O4" and fields["course_id"] == "K-ETH":
            raise ValueError("a bad value reached the library")

    return enrol


def _run(settings: Settings, fast: bool, monkeypatch: pytest.MonkeyPatch, fresh: Fresh) -> list[Any]:
    fresh()
    monkeypatch.setattr(Ledger, "direct_save", fast)
    monkeypatch.setattr(Ledger, "preload_batches", fast)
    monkeypatch.setitem(handlers.HANDLERS, "enrol", _failing_enrol(handlers.officer_command("enrol")))
    monkeypatch.setattr(application, "datetime", _Clock)  # the erasure's time
    units: list[str] = []
    real_commit = Ledger._commit

    def commit(self: Ledger, parsed: Any, attempts: int = 20) -> Any:
        units.append("bulk" if self.bulk_units else "plain")
        return real_commit(self, parsed, attempts)

    monkeypatch.setattr(Ledger, "_commit", commit)
    ledger = Ledger(settings)
    answers = []
    for n, batch in enumerate(BATCHES):
        if n == 2:
            ledger.erase("O3", "officer asked", "T-9")
        lines = [json.dumps(c) for c in batch]
        answers += [(o.line, o.status, o.error) for o in ledger.ingest(lines, batch_size=len(lines))]
    history = [(e["type"], e["version"]) for e in ledger.officer_events("O1")]
    ledger.close()
    assert set(units) == {"bulk" if fast else "plain"}
    return [answers, history]


def test_bulk_and_plain_paths_store_identical_rows_for_corrections_and_late_facts(
    deterministic: Fresh, sqlite_settings: Settings, tmp_path: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = Settings(store=f"sqlite:///{tmp_path / 'bulk.db'}")
    plain = _run(sqlite_settings, False, monkeypatch, deterministic)
    fast = _run(other, True, monkeypatch, deterministic)
    assert fast == plain
    statuses = [status for _, status, _ in plain[0]]
    assert statuses.count("duplicate") == 1 and statuses.count("rejected") >= 10
    errors = " | ".join(error or "" for _, _, error in plain[0])
    for expected in ("already registered", "not registered", "nothing to correct", "is the registration",
                     "would leave", "was erased", "internal error"):
        assert expected in errors, expected
    assert ("EventsRetracted", 6) in plain[1] and ("CourseCompleted", 8) in plain[1]
    plain_rows, fast_rows = _sqlite_rows(sqlite_settings), _sqlite_rows(other)
    for table in SQLITE_TABLES:
        assert fast_rows[table] == plain_rows[table], table
    assert len(plain_rows["ledger_chain"]) == len(plain_rows["stored_events"]) > 30


def test_the_bulk_path_refuses_a_late_fact_without_changing_the_officer(sqlite_settings: Settings) -> None:
    """A refused late command leaves the officer's state and log as they were, within the batch too."""
    ledger = Ledger(sqlite_settings)
    assert ledger.bulk_units
    setup = [*reference(), register("O1"), officer_cmd("enrol", 2, "O1", course_id="K-ETH"),
             officer_cmd("record_progress", 3, "O1", course_id="K-ETH", percent=100),
             officer_cmd("complete_course", 4, "O1", course_id="K-ETH")]
    assert {o.status for o in ledger.ingest([json.dumps(c) for c in setup])} == {"accepted"}
    unit = BulkUnit(ledger)
    unit.preload_officers([])
    officer = unit.officer("O1")
    assert officer is not None
    before = (officer.version, officer.state)
    late = {"officer_id": "O1", "course_id": "K-ETH", "occurred_at": _instant(at(3, 10))}
    with pytest.raises(LedgerError, match="would leave"):
        unit.execute("withdraw", late, handlers.UnitReference(unit))
    assert (officer.version, officer.state) == before and not officer.pending_events
    ledger.close()


def _instant(text: str) -> Any:
    from ledger.domain.values import parse_instant

    return parse_instant(text)
