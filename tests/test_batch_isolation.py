"""No shared fate: whatever goes wrong with one command of a batch rejects that command alone.

The rules (issue 11):
* any failure while reading or applying one command rejects that command, with a
  message and never a traceback; the commands around it are applied;
* nothing the failed command did survives it, even when it had already changed an
  aggregate that earlier commands of the same batch had changed too;
* when the store refuses a batch for any reason other than a race, only the command
  whose rows it refuses is rejected;
* state that was not committed is never reused: the next batch sees the store.

Hostile input is tried for real (it used to crash the whole batch); where no input
provokes a failure, a handler or the recorder is made to fail on purpose.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from ledger.config import Settings
from ledger.domain.errors import RuleViolation
from ledger.domain.officer import Officer
from ledger.read.audit import AuditReader
from ledger.write import application, commands, handlers, unit
from ledger.write.application import Ledger, Outcome
from tests.helpers import data_key, officer_cmd, reference, register

SCENE = [*reference(), register("O1"), officer_cmd("enrol", 1, "O1", course_id="K-BUD")]


def _ledger(settings: Settings) -> Ledger:
    ledger = Ledger(settings)
    _apply(ledger, SCENE, expect=["accepted"] * len(SCENE))
    return ledger


def _apply(ledger: Ledger, batch: list[Any], expect: list[str] | None = None) -> list[Outcome]:
    lines = [c if isinstance(c, str) else json.dumps(c) for c in batch]
    outcomes = list(ledger.ingest(lines, batch_size=len(lines)))  # one batch, one transaction
    assert [o.line for o in outcomes] == list(range(1, len(lines) + 1))
    if expect is not None:
        assert [o.status for o in outcomes] == expect, outcomes
    return outcomes


def _stored(ledger: Ledger, officer_id: str) -> list[tuple[str, int, str | None]]:
    """The officer's events as the store holds them (read from the store, not the cache)."""
    events = ledger.officer_events(officer_id)
    return [(e["type"], e["version"], e.get("course_id")) for e in events]


def _internal(outcome: Outcome, stage: str, exc_name: str) -> None:
    assert outcome.status == "rejected"
    assert outcome.error == f"internal error while {stage} this command ({exc_name})"


# ---- failures while reading or applying one command -------------------------------


HOSTILE = {
    "lone surrogate in a name": json.dumps(register("O2", name="\ud800")),
    "nesting deeper than the parser's stack": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("line", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_line_is_rejected_alone(settings: Settings, line: str) -> None:
    ledger = _ledger(settings)
    outcomes = _apply(
        ledger, [register("O3"), line, register("O4")], ["accepted", "rejected", "accepted"]
    )
    error = outcomes[1].error or ""
    assert error and "Traceback" not in error and "\n" not in error
    assert _stored(ledger, "O2") == []
    assert _stored(ledger, "O3") == _stored(ledger, "O4") == [("OfficerRegistered", 1, None)]


def test_a_line_the_parser_chokes_on_is_rejected_alone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse_line(line: str, now: Any = None) -> Any:
        if '"O2"' in line:
            raise RecursionError("maximum recursion depth exceeded")
        return commands.parse_line(line, now)

    monkeypatch.setattr("ledger.write.unit.parse_line", parse_line)
    ledger = _ledger(settings)
    outcomes = _apply(
        ledger,
        [register("O3"), register("O2"), register("O4")],
        ["accepted", "rejected", "accepted"],
    )
    _internal(outcomes[1], "reading", "RecursionError")


def _fail_after_enrolling_in(course_id: str, exc: Exception) -> handlers.Handler:
    """The real enrol handler, which then raises for one course: a bug after the event."""
    real = handlers.HANDLERS["enrol"]

    def enrol(work: unit.UnitOfWork, fields: dict[str, Any]) -> None:
        real(work, fields)
        if fields["course_id"] == course_id:
            raise exc

    return enrol


# (batch, officer, what the store must hold for that officer afterwards)
MID_BATCH: dict[str, tuple[list[dict[str, Any]], str, list[tuple[str, int, str | None]]]] = {
    "officer changed earlier in the batch": (
        [
            officer_cmd("record_progress", 2, "O1", course_id="K-BUD", percent=50),
            officer_cmd("enrol", 3, "O1", course_id="K-ETH"),
            officer_cmd("record_progress", 4, "O1", course_id="K-BUD", percent=100),
        ],
        "O1",
        [
            ("OfficerRegistered", 1, None),
            ("CourseEnrolled", 2, "K-BUD"),
            ("ProgressRecorded", 3, "K-BUD"),
            ("ProgressRecorded", 4, "K-BUD"),
        ],
    ),
    "officer first touched by the failing command": (
        [register("O2"), officer_cmd("enrol", 3, "O1", course_id="K-ETH"), register("O3")],
        "O1",
        [("OfficerRegistered", 1, None), ("CourseEnrolled", 2, "K-BUD")],
    ),
    "officer registered earlier in the batch": (
        [
            register("O2"),
            officer_cmd("enrol", 1, "O2", course_id="K-BUD"),
            officer_cmd("enrol", 2, "O2", course_id="K-ETH"),
            officer_cmd("record_progress", 3, "O2", course_id="K-BUD", percent=10),
        ],
        "O2",
        [
            ("OfficerRegistered", 1, None),
            ("CourseEnrolled", 2, "K-BUD"),
            ("ProgressRecorded", 3, "K-BUD"),
        ],
    ),
}


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("a bug"), RecursionError(), RuleViolation("course_id: a late rule")],
    ids=["bug", "recursion", "domain error after the event"],
)
@pytest.mark.parametrize("case", MID_BATCH.values(), ids=MID_BATCH.keys())
def test_a_command_that_fails_after_changing_an_officer_leaves_no_trace(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[list[dict[str, Any]], str, list[tuple[str, int, str | None]]],
    exc: Exception,
) -> None:
    batch, officer_id, expected = case
    ledger = _ledger(settings)
    monkeypatch.setitem(handlers.HANDLERS, "enrol", _fail_after_enrolling_in("K-ETH", exc))
    culprit = next(i for i, c in enumerate(batch) if c.get("course_id") == "K-ETH")
    outcomes = _apply(ledger, batch)
    assert [o.status for o in outcomes] == [
        "rejected" if i == culprit else "accepted" for i in range(len(batch))
    ]
    if isinstance(exc, RuleViolation):
        assert outcomes[culprit].error == str(exc)
    else:
        _internal(outcomes[culprit], "applying", type(exc).__name__)
    assert _stored(ledger, officer_id) == expected
    for other in {c["officer_id"] for c in batch} - {officer_id}:
        assert _stored(ledger, other), f"{other} was not stored"

    # Neither this ledger's cache nor the store kept the failed enrolment: it can happen now.
    monkeypatch.undo()
    _apply(ledger, [officer_cmd("enrol", 5, officer_id, course_id="K-ETH")], ["accepted"])
    assert _stored(ledger, officer_id) == [
        *expected,
        ("CourseEnrolled", len(expected) + 1, "K-ETH"),
    ]


def test_a_registration_that_fails_after_creating_the_officer_leaves_no_officer_and_no_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = handlers.HANDLERS["register_officer"]

    def register_officer(work: unit.UnitOfWork, fields: dict[str, Any]) -> None:
        real(work, fields)
        if fields["officer_id"] == "O2":
            raise ValueError("a bad value reached the library")

    ledger = _ledger(settings)
    monkeypatch.setitem(handlers.HANDLERS, "register_officer", register_officer)
    outcomes = _apply(
        ledger,
        [register("O3"), register("O2"), officer_cmd("enrol", 1, "O2", course_id="K-BUD")],
        ["accepted", "rejected", "rejected"],
    )
    _internal(outcomes[1], "applying", "ValueError")
    assert "not registered" in (outcomes[2].error or "")
    assert _stored(ledger, "O2") == [] and data_key(ledger, "O2") is None
    monkeypatch.undo()
    _apply(ledger, [register("O2", name="Ravi Kumar")], ["accepted"])
    assert AuditReader(ledger).history("O2")[0]["name"] == "Ravi Kumar"  # the key stored is the one used


# ---- failures of the store at commit time -----------------------------------------


@pytest.fixture
def refuse_rows_of(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Ledger, str], None]]:
    """Make the database itself refuse any transaction that holds this officer's events."""

    def refuse(ledger: Ledger, officer_id: str) -> None:
        recorder_class: Any = type(ledger.recorder)
        real = recorder_class._insert_events
        bad = Officer.create_id(officer_id)

        def _insert_events(self: Any, c: Any, stored_events: Any, **kwargs: Any) -> Any:
            if any(UUID(str(s.originator_id)) == bad for s in stored_events):
                if ledger.settings.is_postgres:
                    c.execute("SELECT 1 / 0")  # a DataError, raised by the server
                else:
                    c.execute("SELECT ?", (object(),))  # a value the driver cannot bind
            return real(self, c, stored_events, **kwargs)

        monkeypatch.setattr(recorder_class, "_insert_events", _insert_events)

    yield refuse


def test_a_row_the_store_refuses_rejects_only_its_command(
    settings: Settings,
    refuse_rows_of: Callable[[Ledger, str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = _ledger(settings)
    refuse_rows_of(ledger, "O3")
    batch = [
        {**register("O2"), "command_id": "c-o2"},
        {**register("O3"), "command_id": "c-o3"},
        officer_cmd("enrol", 1, "O3", course_id="K-ETH"),  # sees the state without the culprit
        officer_cmd("enrol", 1, "O2", course_id="K-ETH"),
        {**officer_cmd("enrol", 2, "O1", course_id="K-ETH"), "command_id": "c-o1"},
    ]
    outcomes = _apply(ledger, batch, ["accepted", "rejected", "rejected", "accepted", "accepted"])
    error = outcomes[1].error or ""
    assert (
        error.startswith("internal error while storing this command (") and "Traceback" not in error
    )
    assert "not registered" in (outcomes[2].error or "")
    assert _stored(ledger, "O3") == [] and data_key(ledger, "O3") is None
    assert _stored(ledger, "O2") == [("OfficerRegistered", 1, None), ("CourseEnrolled", 2, "K-ETH")]
    assert _stored(ledger, "O1")[-1] == ("CourseEnrolled", 3, "K-ETH")

    # Receipts were written for the neighbours only.
    monkeypatch.undo()
    again = _apply(ledger, [batch[0], batch[1], batch[4]], ["duplicate", "accepted", "duplicate"])
    assert again[1].error is None
    assert _stored(ledger, "O3") == [("OfficerRegistered", 1, None)]


def test_a_single_command_the_store_refuses_is_rejected_not_raised(
    settings: Settings, refuse_rows_of: Callable[[Ledger, str], None]
) -> None:
    ledger = _ledger(settings)
    refuse_rows_of(ledger, "O1")
    outcome = ledger.execute(officer_cmd("enrol", 2, "O1", course_id="K-ETH"))
    assert outcome.status == "rejected" and (outcome.error or "").startswith(
        "internal error while storing"
    )


def _delete_event(settings: Settings, officer_id: str, version: int) -> None:
    """Delete one stored event behind the ledger's back (its chain entry stays)."""
    oid = Officer.create_id(officer_id)
    sql = "DELETE FROM {} WHERE originator_id = {p} AND originator_version = {p}"
    if settings.is_postgres:
        with psycopg.connect(settings.store) as conn:
            conn.execute(sql.format("ledger_events", p="%s").encode(), (oid, version))
    else:
        db = sqlite3.connect(settings.sqlite_path)
        db.execute(sql.format("stored_events", p="?"), (oid.hex, version))
        db.commit()
        db.close()


def test_a_conflict_that_no_fresh_start_resolves_rejects_only_its_command(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apply(_ledger(settings), [register("O9")], ["accepted"])  # O1's events are not the newest
    _delete_event(settings, "O1", 2)  # O1's next event collides with the chain's version 2
    monkeypatch.setattr(application, "MAX_RETRIES", 3)
    ledger = Ledger(settings)  # a process started after the tampering
    batch = [register("O2"), officer_cmd("enrol", 2, "O1", course_id="K-ETH"), register("O3")]
    outcomes = _apply(ledger, batch, ["accepted", "rejected", "accepted"])
    _internal(outcomes[1], "storing", "IntegrityError")
    assert _stored(ledger, "O2") == _stored(ledger, "O3") == [("OfficerRegistered", 1, None)]


def test_a_conflict_reported_as_an_aborted_pipeline_rejects_only_its_command(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL in pipeline mode may report a unique violation as "pipeline
    # aborted" (an OperationalError) with the violation as its context.
    ledger = _ledger(settings)
    monkeypatch.setattr(application, "MAX_RETRIES", 3)
    monkeypatch.setattr(application, "PART_RETRIES", 2)
    # The aggregate library retries an OperationalError itself (ten times, 0.2 s apart):
    # its waits are not what this test is about.
    import eventsourcing.utils

    monkeypatch.setattr(eventsourcing.utils, "sleep", lambda seconds: None)
    recorder_class: Any = type(ledger.recorder)
    real = recorder_class._insert_events
    bad = Officer.create_id("O1")

    def _insert_events(self: Any, c: Any, stored_events: Any, **kwargs: Any) -> Any:
        if any(UUID(str(s.originator_id)) == bad for s in stored_events):
            try:
                raise IntegrityError("duplicate key value violates unique constraint")
            except IntegrityError:
                raise OperationalError("pipeline aborted")  # noqa: B904
        return real(self, c, stored_events, **kwargs)

    monkeypatch.setattr(recorder_class, "_insert_events", _insert_events)
    batch = [register("O2"), officer_cmd("enrol", 2, "O1", course_id="K-ETH"), register("O3")]
    outcomes = _apply(ledger, batch, ["accepted", "rejected", "accepted"])
    _internal(outcomes[1], "storing", "IntegrityError")


def test_an_unreachable_store_is_not_mistaken_for_a_conflict() -> None:
    assert application.conflict_in(OperationalError("connection refused")) is None
    try:
        try:
            raise IntegrityError("duplicate key")
        except IntegrityError:
            raise OperationalError("pipeline aborted")  # noqa: B904
    except OperationalError as exc:
        found = application.conflict_in(exc)
    assert isinstance(found, IntegrityError) and str(found) == "duplicate key"


# ---- uncommitted state is never reused --------------------------------------------


def test_after_a_refused_commit_the_next_batch_sees_the_store(
    settings: Settings,
    refuse_rows_of: Callable[[Ledger, str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = _ledger(settings)
    refuse_rows_of(ledger, "O1")
    # The refused batch changed the cached officer in memory before the store said no.
    _apply(
        ledger,
        [
            officer_cmd("enrol", 2, "O1", course_id="K-ETH"),
            officer_cmd("record_progress", 2, "O1", course_id="K-BUD", percent=30),
        ],
        ["rejected", "rejected"],
    )
    monkeypatch.undo()
    _apply(
        ledger,
        [
            officer_cmd("enrol", 2, "O1", course_id="K-ETH"),
            officer_cmd("record_progress", 2, "O1", course_id="K-BUD", percent=30),
        ],
        ["accepted", "accepted"],
    )
    assert [v for _, v, _ in _stored(ledger, "O1")] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "failure",
    [OperationalError("the database is unreachable"), KeyboardInterrupt()],
    ids=["store unreachable", "interrupted"],
)
def test_a_batch_that_fails_as_a_whole_leaves_nothing_in_the_cache(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    ledger = _ledger(settings)
    monkeypatch.setattr(application, "MAX_RETRIES", 2)

    def save(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(ledger, "save", save)
    with pytest.raises(type(failure)):  # not one command's fault: the caller learns it
        _apply(ledger, [register("O2"), officer_cmd("enrol", 2, "O1", course_id="K-ETH")])
    monkeypatch.undo()
    _apply(
        ledger,
        [register("O2"), officer_cmd("enrol", 2, "O1", course_id="K-ETH")],
        ["accepted", "accepted"],
    )
    assert _stored(ledger, "O1")[-1] == ("CourseEnrolled", 3, "K-ETH")


def test_a_race_lost_once_is_redone_from_the_store(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = _ledger(settings)
    real = ledger.save
    calls: list[int] = []

    def save(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "save", save)
    _apply(ledger, [officer_cmd("enrol", 2, "O1", course_id="K-ETH")], ["accepted"])
    assert len(calls) == 2
    assert [v for _, v, _ in _stored(ledger, "O1")] == [1, 2, 3]


# ---- the handler table --------------------------------------------------------------


def test_every_command_type_has_exactly_one_handler() -> None:
    assert set(handlers.HANDLERS) == set(commands.SCHEMAS)
