"""An independent fold of the whole event store into the three read models.

Written straight from the spec, sharing no code with ledger/projections except the
learning-record fold that `ledger record --as-of` uses, so that the incremental,
batched, crash-tolerant projections can be checked against it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger.config import Settings
from ledger.projections import record as record_fold
from ledger.write.application import Ledger

OFFICER_TYPES = {"OfficerRegistered", "OfficerTransferred", "CourseEnrolled", "ProgressRecorded",
                 "AssessmentAttempted", "CourseCompleted", "CourseWithdrawn", "OfficerErased",
                 "OfficerDetailsCorrected", "EventsRetracted"}


def business(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DOMAIN.md's business history: the events except retractions and what they retract,
    by occurred_at (as instants), ties by version."""
    gone = {v for e in stream if e["type"] == "EventsRetracted" for v in e["versions"]}
    kept = [e for e in stream if e["type"] != "EventsRetracted" and e["version"] not in gone]
    return sorted(kept, key=lambda e: (datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")), e["version"]))


def _fy(instant: str) -> str:
    at = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=5, minutes=30)))
    start = at.year if at.month >= 4 else at.year - 1
    return f"{start}-{str(start + 1)[-2:]}"


def fold_store(settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """records / competencies / ministries, each keyed by officer or ministry id."""
    ledger = Ledger(settings)
    events = [e for _, e in ledger.iter_log()]
    by_officer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    posts: dict[str, tuple[int, dict[str, int]]] = {}
    courses: dict[str, dict[str, Any]] = {}
    ministries: set[str] = set()
    for e in events:
        if e["type"] in OFFICER_TYPES:
            by_officer[e["officer_id"]].append(e)
        elif e["type"] == "PostDefined":
            required: dict[str, int] = {}
            for role in e["roles"]:
                for activity in role["activities"]:
                    for need in activity["competencies"]:
                        required[need["competency_id"]] = max(required.get(need["competency_id"], 0), need["level"])
            if e["post_id"] not in posts or posts[e["post_id"]][0] < e["version"]:
                posts[e["post_id"]] = (e["version"], required)
        elif e["type"] == "CoursePublished":
            courses[e["course_id"]] = e
        elif e["type"] == "OrganisationDefined" and e["kind"] == "ministry":
            ministries.add(e["org_id"])

    records: dict[str, dict[str, Any]] = {}
    profiles: dict[str, dict[str, Any]] = {}
    headcount: dict[str, int] = defaultdict(int)
    years: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"enrolments": 0, "completions": 0, "learning_hours": 0.0, "officers": set()})
    for officer_id, stream in by_officer.items():
        stream.sort(key=lambda e: e["version"])
        assert [e["version"] for e in stream] == list(range(1, len(stream) + 1))
        record = record_fold.fold(officer_id, stream, ledger.decrypter(officer_id))
        assert record is not None
        records[officer_id] = record
        # An officer's stream opens with the registration (version 1): the ministry is
        # always known; the post may not be.
        assert stream[0]["type"] == "OfficerRegistered"
        ministry: str = stream[0]["ministry_id"]
        post: str | None = None
        erased = False
        acquired: dict[str, int] = {}
        completed: set[str] = set()
        for e in business(stream):
            if e["type"] in ("OfficerRegistered", "OfficerTransferred"):
                ministry, post = e["ministry_id"], e["post_id"]
            elif e["type"] == "OfficerErased":
                erased = True
            elif e["type"] == "CourseEnrolled":
                years[(ministry, _fy(e["occurred_at"]))]["enrolments"] += 1
            elif e["type"] == "CourseCompleted":
                y = years[(ministry, _fy(e["occurred_at"]))]
                y["completions"] += 1
                y["learning_hours"] += e["duration_hours"]
                y["officers"].add(officer_id)
                completed.add(e["course_id"])
                for need in e["competencies"]:
                    acquired[need["competency_id"]] = max(acquired.get(need["competency_id"], 0), need["level"])
        if not erased:
            headcount[ministry] += 1
        ministries.add(ministry)
        required = posts.get(post, (0, {}))[1] if post else {}
        gaps = {c: r - acquired.get(c, 0) for c, r in required.items() if r - acquired.get(c, 0) > 0}
        candidates = []
        for course in courses.values():
            if course["course_id"] in completed:
                continue
            n = len([x for x in course["competencies"]
                     if x["competency_id"] in gaps and x["level"] > acquired.get(x["competency_id"], 0)])
            if n:
                candidates.append((-n, course["duration_hours"], course["course_id"]))
        profiles[officer_id] = {"officer_id": officer_id, "post_id": post, "required": required,
                                "acquired": acquired, "gaps": gaps,
                                "recommended": [c for *_, c in sorted(candidates)[:10]]}
    aggregates = {}
    for m in ministries:
        ys = {fy: {"enrolments": y["enrolments"], "completions": y["completions"],
                   "learning_hours": y["learning_hours"], "officers_completed": len(y["officers"])}
              for (mm, fy), y in sorted(years.items()) if mm == m and (y["enrolments"] or y["completions"])}
        aggregates[m] = {"ministry_id": m, "headcount": headcount.get(m, 0), "years": ys}
    ledger.close()
    return {"records": records, "competencies": profiles, "ministries": aggregates}


def exported(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}
