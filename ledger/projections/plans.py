"""Annual Capacity Building Plans against what happened (DOMAIN.md "Capacity-building plan").

What a plan reports is computed when it is read, from small tables kept by deltas, so a
ministry of 100,000 officers answers in a few index lookups and a plan declared (or
revised) after its year's completions counts them all:

* ``rm_plans``: the latest declaration per (ministry, FY) (a reference event).
* ``rm_plan_levels``: per (ministry, FY, competency, level) how many distinct officers
  reached at most that level there: completed, in that FY, while posted under that
  ministry, a course building the competency at that level. A target (c, L) is
  achieved by the officers counted at levels >= L. Erased officers stay counted.
* ``rm_plan_hours``: per current member (not erased) and FY, the learning hours of
  completions in that FY wherever the officer was posted; ``officers_meeting_hours``
  counts the rows at or above the plan's minimum. A transfer or erasure moves or
  removes the officer's rows.
* ``rm_plan_headcount``: members per ministry (registered, not erased, posted there now).

Each officer's document holds its current ministry, erasure, hours per FY and the
highest level reached per (ministry, FY, competency), so every event counts once and
every delta is exact; counters are written as commutative ``x = x + excluded.x``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ledger.domain.values import financial_year, parse_instant
from ledger.projections.base import (
    OfficerDocProjection,
    add_counts,
    dumps,
    keep_newest,
    loads,
    write_newest,
)
from ledger.store.db import Cursor


def new_member(officer_id: str) -> dict[str, Any]:
    return {"officer_id": officer_id, "ministry_id": None, "erased": False, "hours": {}, "reached": {}}


def hour_rows(doc: dict[str, Any]) -> list[tuple[str, str, float, str]]:
    """The officer's ``rm_plan_hours`` rows: one per FY with hours, under its current
    ministry, none once erased. Keyed (ministry, FY, hours, officer), so the count of
    officers at or above a minimum is one index range."""
    if doc["ministry_id"] is None or doc["erased"]:
        return []
    return [(doc["ministry_id"], fy, hours, doc["officer_id"]) for fy, hours in sorted(doc["hours"].items())]


class PlansProjection(OfficerDocProjection):
    """Capacity-building plans and the facts they are measured against."""

    name = "plans"
    doc_table = "rm_plan_officers"
    counters = ("levels", "headcount")

    def extra_tables(self) -> list[str]:
        return ["rm_plans", "rm_plan_levels", "rm_plan_hours", "rm_plan_headcount"]

    def new_doc(self, officer_id: str) -> dict[str, Any]:
        return new_member(officer_id)

    def begin(self) -> None:
        self.levels: defaultdict[tuple[str, str, str, int], int] = defaultdict(int)
        self.headcount: defaultdict[str, int] = defaultdict(int)
        self.members: dict[str, dict[str, Any]] = {}  # officer -> doc whose hour rows to rewrite
        self.old_rows: dict[str, list[tuple[str, str, float, str]]] = {}  # as the batch found them
        self.plans: dict[tuple[str, str], tuple[int, str]] = {}  # (ministry, FY) -> (version, plan)

    def apply_event(self, c: Any, doc: dict[str, Any], event: dict[str, Any]) -> None:
        kind = event["type"]
        if doc["officer_id"] not in self.old_rows:
            self.old_rows[doc["officer_id"]] = hour_rows(doc)
        member = doc["ministry_id"] is not None and not doc["erased"]
        if kind in ("OfficerRegistered", "OfficerTransferred"):
            if member:
                self.headcount[doc["ministry_id"]] -= 1
            doc["ministry_id"] = event["ministry_id"]
            if not doc["erased"]:
                self.headcount[event["ministry_id"]] += 1
            self.members[doc["officer_id"]] = doc
        elif kind == "OfficerErased":
            if member:
                self.headcount[doc["ministry_id"]] -= 1
            doc["erased"] = True
            self.members[doc["officer_id"]] = doc
        elif kind == "CourseCompleted":
            fy = financial_year(parse_instant(event["occurred_at"]))
            doc["hours"][fy] = doc["hours"].get(fy, 0.0) + event["duration_hours"]
            for need in event["competencies"]:
                key = f"{doc['ministry_id']}|{fy}|{need['competency_id']}"
                before = doc["reached"].get(key, 0)
                if need["level"] > before:
                    doc["reached"][key] = need["level"]
                    where = (doc["ministry_id"], fy, need["competency_id"])
                    if before:
                        self.levels[(*where, before)] -= 1
                    self.levels[(*where, need["level"])] += 1
            self.members[doc["officer_id"]] = doc

    def refolded(self, stored: dict[str, Any], doc: dict[str, Any]) -> None:
        self.old_rows.setdefault(doc["officer_id"], hour_rows(stored))
        self.members[doc["officer_id"]] = doc

    def apply_reference(self, c: Cursor, event: dict[str, Any], suffix: str) -> None:
        # Collected, and written by ``flush`` in key order: consumer processes on other
        # partitions apply the same reference events at once (see ``runner``).
        if event["type"] == "CapacityPlanDeclared":
            plan = {k: event[k] for k in ("ministry_id", "fy", "min_learning_hours", "targets")}
            keep_newest(self.plans, (event["ministry_id"], event["fy"]), (event["version"], dumps(plan)))

    def flush(self, c: Cursor, suffix: str) -> None:
        # A later revision replaces the plan.
        write_newest(c, f"rm_plans{suffix}", ("ministry_id", "fy"), ("version", "plan"), ("plan",),
                     [(*key, *row) for key, row in sorted(self.plans.items())])
        add_counts(c, f"rm_plan_levels{suffix}", ("ministry_id", "fy", "competency_id", "level"), ("officers",),
                   [(*key, n) for key, n in sorted(self.levels.items()) if n])
        add_counts(c, f"rm_plan_headcount{suffix}", ("ministry_id",), ("officers",),
                   [(m, n) for m, n in sorted(self.headcount.items()) if n])
        # An officer's hour rows follow its current ministry; they go when it is erased.
        ids = sorted(self.members)
        gone = [row for o in ids for row in self.old_rows.get(o, [])]
        if gone:
            c.executemany(
                f"DELETE FROM rm_plan_hours{suffix} WHERE ministry_id = ? AND fy = ? AND hours = ? AND officer_id = ?",
                gone,
            )
        rows = [row for o in ids for row in hour_rows(self.members[o])]
        if rows:
            c.executemany(
                f"INSERT INTO rm_plan_hours{suffix} (ministry_id, fy, hours, officer_id) VALUES (?, ?, ?, ?)", rows
            )

    # ---- queries ------------------------------------------------------------

    def plan(self, c: Cursor, ministry_id: str, fy: str) -> dict[str, Any] | None:
        """The declared plan with its progress, or None when none was declared."""
        c.execute("SELECT plan FROM rm_plans WHERE ministry_id = ? AND fy = ?", (ministry_id, fy))
        row = c.fetchone()
        if row is None:
            return None
        plan = loads(row[0])
        c.execute("SELECT officers FROM rm_plan_headcount WHERE ministry_id = ?", (ministry_id,))
        head = c.fetchone()
        headcount = int(head[0]) if head else 0
        minimum = float(plan["min_learning_hours"])
        if minimum <= 0:
            meeting = headcount
        else:
            c.execute(
                "SELECT COUNT(*) FROM rm_plan_hours WHERE ministry_id = ? AND fy = ? AND hours >= ?",
                (ministry_id, fy, minimum),
            )
            meeting = int(c.fetchone()[0])
        c.execute(
            "SELECT competency_id, level, officers FROM rm_plan_levels WHERE ministry_id = ? AND fy = ?",
            (ministry_id, fy),
        )
        reached: defaultdict[str, dict[int, int]] = defaultdict(dict)
        for competency_id, level, officers in c.fetchall():
            reached[competency_id][int(level)] = int(officers)
        targets = []
        for t in plan["targets"]:
            achieved = sum(n for level, n in reached[t["competency_id"]].items() if level >= t["level"])
            targets.append({"competency_id": t["competency_id"], "level": t["level"], "officers": t["officers"],
                            "achieved": achieved, "percent": 100 * achieved // t["officers"]})
        return {"ministry_id": ministry_id, "fy": fy, "min_learning_hours": minimum, "headcount": headcount,
                "officers_meeting_hours": meeting, "targets": targets}

    def export(self, c: Cursor) -> list[dict[str, Any]]:
        c.execute("SELECT ministry_id, fy FROM rm_plans ORDER BY ministry_id, fy")
        keys = [(str(r[0]), str(r[1])) for r in c.fetchall()]
        return [p for m, fy in keys if (p := self.plan(c, m, fy)) is not None]
