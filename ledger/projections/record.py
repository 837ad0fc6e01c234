"""The learning record: a pure fold of one officer's public events, and its table.

The record in progress keeps personal data only as ciphertext (``name_ct``,
``email_ct``); it is decrypted when a record is shown, so the read model never
holds plaintext and destroying the officer's key erases it here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast

from ledger.domain.history import business_history
from ledger.domain.values import financial_year, parse_instant
from ledger.projections.base import OfficerDocProjection

Decrypt = Callable[[str, str], str | None]


def new_record(officer_id: str) -> dict[str, Any]:
    """The record before any event."""
    return {
        "officer_id": officer_id,
        "name_ct": "",
        "email_ct": "",
        "org_id": None,
        "ministry_id": None,
        "post_id": None,
        "postings": [],
        "enrolments": {},
        "erased": False,
    }


def apply(record: dict[str, Any], event: dict[str, Any]) -> None:
    """Apply one officer event to a record in progress (mutates ``record``)."""
    kind = event["type"]
    at = event["occurred_at"]
    if kind == "OfficerRegistered":
        record["name_ct"] = event["name_ct"]
        record["email_ct"] = event["email_ct"]
    if kind in ("OfficerRegistered", "OfficerTransferred"):
        record["org_id"] = event["org_id"]
        record["ministry_id"] = event["ministry_id"]
        record["post_id"] = event["post_id"]
        record["postings"].append(
            {"org_id": event["org_id"], "post_id": event["post_id"], "from": at}
        )
    elif kind == "CourseEnrolled":
        record["enrolments"][event["course_id"]] = {
            "course_id": event["course_id"],
            "status": "enrolled",
            "progress": 0,
            "attempts": [],
            "enrolled_at": at,
            "completed_at": None,
            "duration_hours": None,
        }
    elif kind == "ProgressRecorded":
        record["enrolments"][event["course_id"]]["progress"] = event["percent"]
    elif kind == "AssessmentAttempted":
        record["enrolments"][event["course_id"]]["attempts"].append(
            {"score": event["score"], "passed": event["passed"]}
        )
    elif kind == "CourseCompleted":
        enrolment = record["enrolments"][event["course_id"]]
        enrolment["status"] = "completed"
        enrolment["completed_at"] = at
        enrolment["duration_hours"] = event["duration_hours"]
    elif kind == "CourseWithdrawn":
        record["enrolments"][event["course_id"]]["status"] = "withdrawn"
    elif kind == "OfficerDetailsCorrected":
        for field in ("name_ct", "email_ct"):
            if event.get(field) is not None:
                record[field] = event[field]
    elif kind == "OfficerErased":
        record["name_ct"] = ""
        record["email_ct"] = ""
        record["erased"] = True


def finish(record: dict[str, Any], decrypt: Decrypt) -> dict[str, Any]:
    """The spec's JSON shape of a record in progress."""
    enrolments = []
    hours = 0.0
    by_year: dict[str, float] = {}
    completed = 0
    for course_id in sorted(record["enrolments"]):
        e = record["enrolments"][course_id]
        if e["status"] == "completed":
            completed += 1
            hours += e["duration_hours"]
            fy = financial_year(parse_instant(e["completed_at"]))
            by_year[fy] = by_year.get(fy, 0.0) + e["duration_hours"]
        enrolments.append({k: v for k, v in e.items() if k != "duration_hours"})
    erased = record["erased"]
    return {
        "officer_id": record["officer_id"],
        "name": None if erased else decrypt("name", record["name_ct"]),
        "email": None if erased else decrypt("email", record["email_ct"]),
        "org_id": record["org_id"],
        "ministry_id": record["ministry_id"],
        "post_id": record["post_id"],
        "postings": record["postings"],
        "enrolments": enrolments,
        "completed_count": completed,
        "learning_hours": hours,
        "learning_hours_by_year": dict(sorted(by_year.items())),
    }


def fold(
    officer_id: str,
    events: Iterable[dict[str, Any]],
    decrypt: Decrypt,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> dict[str, Any] | None:
    """Fold an officer's business history into a record: as the ledger knew it at
    ``known_at`` (default: now), with business time up to ``as_of`` (default: all).

    Returns None when no event qualifies (not registered, or not yet at ``as_of``).
    """
    record = new_record(officer_id)
    seen = False
    for event in cast(list[dict[str, Any]], business_history(list(events), known_at)):
        if as_of is not None and parse_instant(event["occurred_at"]) > as_of:
            continue
        apply(record, event)
        seen = True
    return finish(record, decrypt) if seen else None


class RecordsProjection(OfficerDocProjection):
    """Each officer's learning record, one JSON document per officer."""

    name = "records"
    doc_table = "rm_records"

    def new_doc(self, officer_id: str) -> dict[str, Any]:
        return new_record(officer_id)

    def apply_event(self, c: Any, doc: dict[str, Any], event: dict[str, Any]) -> None:
        apply(doc, event)
