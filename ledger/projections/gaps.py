"""Competency gaps per ministry (DOMAIN.md "Competency gaps"): what an HR cell reports
up to the Capacity Building Commission.

Officers are grouped by where they stand now: (ministry, post), counting only those not
erased and on a post. For each group the projection keeps how many officers it has and,
per competency, how many of them have acquired it at each level 1..5 (level 0 is the
rest of the group). The report is computed when read, against each post's *current*
FRAC revision, so a revision changes the report at once without touching any officer,
and a transfer moves one officer's levels from one group to another. The work of a
read depends on the ministry's posts and competencies, not on its headcount.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ledger.projections.base import (
    OfficerDocProjection,
    add_counts,
    dumps,
    keep_newest,
    loads,
    select_in,
    write_newest,
)
from ledger.store.db import Cursor


def new_standing(officer_id: str) -> dict[str, Any]:
    return {"officer_id": officer_id, "ministry_id": None, "post_id": None, "erased": False, "acquired": {}}


def required_levels(roles: list[dict[str, Any]]) -> dict[str, int]:
    """Per competency, the highest level any activity of the post asks for."""
    levels: dict[str, int] = {}
    for role in roles:
        for activity in role["activities"]:
            for need in activity["competencies"]:
                levels[need["competency_id"]] = max(levels.get(need["competency_id"], 0), need["level"])
    return levels


def _group(doc: dict[str, Any]) -> tuple[str, str] | None:
    if doc["erased"] or doc["ministry_id"] is None or doc["post_id"] is None:
        return None
    return doc["ministry_id"], doc["post_id"]


class GapsProjection(OfficerDocProjection):
    """Per (ministry, post): officers, and how many acquired each competency at each level."""

    name = "gaps"
    doc_table = "rm_gap_officers"
    counters = ("groups", "levels")

    def extra_tables(self) -> list[str]:
        return ["rm_gap_posts", "rm_gap_groups", "rm_gap_levels", "rm_gap_ministries"]

    def new_doc(self, officer_id: str) -> dict[str, Any]:
        return new_standing(officer_id)

    def begin(self) -> None:
        self.groups: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.levels: defaultdict[tuple[str, str, str, int], int] = defaultdict(int)
        self.ministries: set[str] = set()
        self.posts: dict[str, tuple[int, str]] = {}  # post -> (FRAC revision, required levels)

    def _leave(self, doc: dict[str, Any]) -> None:
        group = _group(doc)
        if group is not None:
            self.groups[group] -= 1
            for competency_id, level in doc["acquired"].items():
                self.levels[(*group, competency_id, level)] -= 1

    def _join(self, doc: dict[str, Any]) -> None:
        group = _group(doc)
        if group is not None:
            self.groups[group] += 1
            for competency_id, level in doc["acquired"].items():
                self.levels[(*group, competency_id, level)] += 1

    def apply_event(self, c: Any, doc: dict[str, Any], event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind in ("OfficerRegistered", "OfficerTransferred"):
            self._leave(doc)
            doc["ministry_id"], doc["post_id"] = event["ministry_id"], event.get("post_id")
            self._join(doc)
        elif kind == "OfficerErased":
            self._leave(doc)
            doc["erased"] = True
        elif kind == "CourseCompleted":
            group = _group(doc)
            for need in event["competencies"]:
                competency_id, level = need["competency_id"], need["level"]
                before = doc["acquired"].get(competency_id, 0)
                if level <= before:
                    continue
                doc["acquired"][competency_id] = level
                if group is not None:
                    if before:
                        self.levels[(*group, competency_id, before)] -= 1
                    self.levels[(*group, competency_id, level)] += 1

    def apply_reference(self, c: Cursor, event: dict[str, Any], suffix: str) -> None:
        # Collected, and written by ``flush`` in key order: consumer processes on other
        # partitions apply the same reference events at once (see ``runner``).
        if event["type"] == "PostDefined":
            keep_newest(self.posts, event["post_id"], (event["version"], dumps(required_levels(event["roles"]))))
        elif event["type"] == "OrganisationDefined" and event["kind"] == "ministry":
            self.ministries.add(event["org_id"])

    def flush(self, c: Cursor, suffix: str) -> None:
        # A later FRAC revision replaces the requirements.
        write_newest(c, f"rm_gap_posts{suffix}", ("post_id",), ("version", "required"), ("required",),
                     [(post_id, *row) for post_id, row in sorted(self.posts.items())])
        if self.ministries:
            c.executemany(f"INSERT INTO rm_gap_ministries{suffix} (ministry_id) VALUES (?) ON CONFLICT DO NOTHING",
                          [(m,) for m in sorted(self.ministries)])
        add_counts(c, f"rm_gap_groups{suffix}", ("ministry_id", "post_id"), ("officers",),
                   [(*k, n) for k, n in sorted(self.groups.items()) if n])
        add_counts(c, f"rm_gap_levels{suffix}", ("ministry_id", "post_id", "competency_id", "level"), ("officers",),
                   [(*k, n) for k, n in sorted(self.levels.items()) if n])

    # ---- queries ------------------------------------------------------------

    def report(self, c: Cursor, ministry_id: str) -> dict[str, Any] | None:
        """The gap report of a ministry, or None for a ministry that was never defined."""
        c.execute("SELECT 1 FROM rm_gap_ministries WHERE ministry_id = ?", (ministry_id,))
        if c.fetchone() is None:
            return None
        c.execute("SELECT post_id, officers FROM rm_gap_groups WHERE ministry_id = ? AND officers > 0",
                  (ministry_id,))
        groups = {str(p): int(n) for p, n in c.fetchall()}
        required = {str(r[0]): loads(r[1]) for r in select_in(
            c, "SELECT post_id, required FROM rm_gap_posts WHERE post_id IN ({})", sorted(groups))}
        c.execute("SELECT post_id, competency_id, level, officers FROM rm_gap_levels "
                  "WHERE ministry_id = ? AND officers > 0", (ministry_id,))
        have: defaultdict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        for post_id, competency_id, level, officers in c.fetchall():
            have[(str(post_id), str(competency_id))][int(level)] = int(officers)
        rows: dict[str, dict[str, Any]] = {}
        for post_id, officers in groups.items():
            for competency_id, need in required.get(post_id, {}).items():
                counts = have[(post_id, competency_id)]
                counts_with_zero = {0: officers - sum(counts.values()), **counts}
                row = rows.setdefault(competency_id, {"competency_id": competency_id, "required_officers": 0,
                                                      "officers_with_gap": 0, "total_gap": 0})
                row["required_officers"] += officers
                for level, n in counts_with_zero.items():
                    if level < need:
                        row["officers_with_gap"] += n
                        row["total_gap"] += n * (need - level)
        return {"ministry_id": ministry_id, "officers_on_posts": sum(groups.values()),
                "competencies": sorted(rows.values(), key=lambda r: (-r["officers_with_gap"], r["competency_id"]))}

    def export(self, c: Cursor) -> list[dict[str, Any]]:
        c.execute("SELECT ministry_id FROM rm_gap_ministries ORDER BY ministry_id")
        ids = [str(r[0]) for r in c.fetchall()]
        return [r for m in ids if (r := self.report(c, m)) is not None]


CSV_COLUMNS = ("ministry_id", "officers_on_posts", "competency_id", "required_officers", "officers_with_gap",
               "total_gap")


def to_csv(reports: list[dict[str, Any]]) -> str:
    """Gap reports as CSV (one row per ministry and competency), the form the Commission collects."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        for row in report["competencies"]:
            writer.writerow([report["ministry_id"], report["officers_on_posts"], row["competency_id"],
                             row["required_officers"], row["officers_with_gap"], row["total_gap"]])
    return buffer.getvalue()
