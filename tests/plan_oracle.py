"""An independent fold of the event store into the capacity-building plans and the
competency-gap reports, written straight from DOMAIN.md's read-model section.

Shares no code with ledger/projections: the incremental, batched projections are
checked against it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

IST = timezone(timedelta(hours=5, minutes=30))


def _fy(instant: str) -> str:
    at = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(IST)
    start = at.year if at.month >= 4 else at.year - 1
    return f"{start}-{str(start + 1)[-2:]}"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def business_log(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reference events in log order, then each officer's business history (DOMAIN.md: its
    events except retractions and what they retract, by occurred_at, ties by version)."""
    reference = [e for e in events if "officer_id" not in e]
    by_officer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if "officer_id" in e:
            by_officer[e["officer_id"]].append(e)
    out = list(reference)
    for stream in by_officer.values():
        gone = {v for e in stream if e["type"] == "EventsRetracted" for v in e["versions"]}
        kept = [e for e in stream if e["type"] != "EventsRetracted" and e["version"] not in gone]
        out += sorted(kept, key=lambda e: (_instant(e["occurred_at"]), e["version"]))
    return out


def fold(events: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, dict[str, Any]]]:
    """(plans keyed by (ministry_id, fy), gap reports keyed by ministry_id) from the log."""
    events = business_log(events)
    ministries: list[str] = []
    plans: dict[tuple[str, str], dict[str, Any]] = {}
    required: dict[str, dict[str, int]] = {}  # post -> competency -> level (latest revision)
    officer_ministry: dict[str, str] = {}
    officer_post: dict[str, str | None] = {}
    erased: set[str] = set()
    acquired: dict[str, dict[str, int]] = defaultdict(dict)  # officer -> competency -> max level
    hours: dict[tuple[str, str], float] = defaultdict(float)  # (officer, fy) -> hours, wherever posted
    # (ministry, fy, competency) -> officer -> max level completed there, then
    reached: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)

    for e in events:  # reference events, then each officer's business history
        kind = e["type"]
        if kind == "OrganisationDefined" and e["kind"] == "ministry":
            ministries.append(e["org_id"])
        elif kind == "PostDefined":
            levels: dict[str, int] = {}
            for role in e["roles"]:
                for activity in role["activities"]:
                    for need in activity["competencies"]:
                        levels[need["competency_id"]] = max(levels.get(need["competency_id"], 0), need["level"])
            required[e["post_id"]] = levels
        elif kind == "CapacityPlanDeclared":
            plans[(e["ministry_id"], e["fy"])] = e
        elif kind in ("OfficerRegistered", "OfficerTransferred"):
            officer_ministry[e["officer_id"]] = e["ministry_id"]
            officer_post[e["officer_id"]] = e.get("post_id")
        elif kind == "OfficerErased":
            erased.add(e["officer_id"])
        elif kind == "CourseCompleted":
            officer = e["officer_id"]
            fy = _fy(e["occurred_at"])
            hours[(officer, fy)] += e["duration_hours"]
            for need in e["competencies"]:
                c, level = need["competency_id"], need["level"]
                acquired[officer][c] = max(acquired[officer].get(c, 0), level)
                where = reached[(officer_ministry[officer], fy, c)]
                where[officer] = max(where.get(officer, 0), level)

    def members(ministry: str) -> list[str]:
        return [o for o, m in officer_ministry.items() if m == ministry and o not in erased]

    plan_docs: dict[tuple[str, str], dict[str, Any]] = {}
    for (ministry, fy), p in plans.items():
        people = members(ministry)
        targets = []
        for t in p["targets"]:
            achieved = sum(1 for level in reached[(ministry, fy, t["competency_id"])].values() if level >= t["level"])
            targets.append({"competency_id": t["competency_id"], "level": t["level"], "officers": t["officers"],
                            "achieved": achieved, "percent": 100 * achieved // t["officers"]})
        plan_docs[(ministry, fy)] = {
            "ministry_id": ministry, "fy": fy, "min_learning_hours": p["min_learning_hours"],
            "headcount": len(people),
            "officers_meeting_hours": sum(1 for o in people if hours[(o, fy)] >= p["min_learning_hours"]),
            "targets": targets,
        }

    gap_docs: dict[str, dict[str, Any]] = {}
    for ministry in ministries:
        on_posts = [o for o in members(ministry) if officer_post.get(o) is not None]
        per: dict[str, dict[str, Any]] = {}
        for officer in on_posts:
            for c, level in required.get(officer_post[officer] or "", {}).items():
                row = per.setdefault(c, {"competency_id": c, "required_officers": 0, "officers_with_gap": 0,
                                         "total_gap": 0})
                row["required_officers"] += 1
                have = acquired[officer].get(c, 0)
                if have < level:
                    row["officers_with_gap"] += 1
                    row["total_gap"] += level - have
        gap_docs[ministry] = {
            "ministry_id": ministry, "officers_on_posts": len(on_posts),
            "competencies": sorted(per.values(), key=lambda r: (-r["officers_with_gap"], r["competency_id"])),
        }
    return plan_docs, gap_docs
