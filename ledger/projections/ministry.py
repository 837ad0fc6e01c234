"""Ministry aggregates for annual capacity-building plans.

Attribution is by event time: an enrolment or completion counts for the ministry the
officer was posted under when it happened, in the financial year (IST) of its
``occurred_at``. Headcount is registered, not erased officers currently posted under
the ministry. Per-officer documents hold the current ministry (and make every event
count once); the aggregates are written as deltas at the end of each batch.

The deltas commute, so consumer processes on different partitions stay exact when
they write at once: counters are ``x = x + excluded.x`` upserts (the database adds
under its row lock; nothing reads a counter to write it back), distinct completers
are an idempotent insert into ``rm_ministry_completers`` (counted when read), and
rows are written in key order so concurrent batches cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ledger.domain.values import financial_year, parse_instant
from ledger.projections.base import OfficerDocProjection, add_counts
from ledger.store.db import Cursor


def new_posting(officer_id: str) -> dict[str, Any]:
    return {"officer_id": officer_id, "ministry_id": None, "erased": False}


class MinistriesProjection(OfficerDocProjection):
    """Headcount per ministry and, per financial year, enrolments, completions and hours."""

    name = "ministries"
    doc_table = "rm_ministry_officers"
    counters = ("headcount", "years")
    row_sets = ("completers",)

    def extra_tables(self) -> list[str]:
        return ["rm_ministries", "rm_ministry_years", "rm_ministry_completers"]

    def new_doc(self, officer_id: str) -> dict[str, Any]:
        return new_posting(officer_id)

    def begin(self) -> None:
        self.headcount: defaultdict[str, int] = defaultdict(int)
        self.years: defaultdict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
        self.completers: set[tuple[str, str, str]] = set()
        self.completers_gone: set[tuple[str, str, str]] = set()  # by a re-fold (a retraction)
        self.ministries: set[str] = set()

    def apply_event(self, c: Any, doc: dict[str, Any], event: dict[str, Any]) -> None:
        kind = event["type"]
        current = doc["ministry_id"]
        if kind == "OfficerRegistered":
            doc["ministry_id"] = event["ministry_id"]
            self.headcount[event["ministry_id"]] += 1
        elif kind == "OfficerTransferred":
            doc["ministry_id"] = event["ministry_id"]
            if not doc["erased"] and current != event["ministry_id"]:
                self.headcount[current] -= 1
                self.headcount[event["ministry_id"]] += 1
        elif kind == "OfficerErased":
            if not doc["erased"]:
                self.headcount[current] -= 1
            doc["erased"] = True
        elif kind == "CourseEnrolled":
            fy = financial_year(parse_instant(event["occurred_at"]))
            self.years[(current, fy)][0] += 1
        elif kind == "CourseCompleted":
            fy = financial_year(parse_instant(event["occurred_at"]))
            totals = self.years[(current, fy)]
            totals[1] += 1
            totals[2] += event["duration_hours"]
            self.completers.add((current, fy, event["officer_id"]))

    def apply_reference(self, c: Cursor, event: dict[str, Any], suffix: str) -> None:
        if event["type"] == "OrganisationDefined" and event["kind"] == "ministry":
            self.ministries.add(event["org_id"])

    def flush(self, c: Cursor, suffix: str) -> None:
        rows = {m: 0 for m in self.ministries}
        rows.update(self.headcount)
        add_counts(c, f"rm_ministries{suffix}", ("ministry_id",), ("headcount",), sorted(rows.items()))
        add_counts(c, f"rm_ministry_years{suffix}", ("ministry_id", "fy"), ("enrolments", "completions", "learning_hours"),
                   [(m, fy, int(v[0]), int(v[1]), float(v[2])) for (m, fy), v in sorted(self.years.items())])
        if self.completers_gone:
            c.executemany(
                f"DELETE FROM rm_ministry_completers{suffix} WHERE ministry_id = ? AND fy = ? AND officer_id = ?",
                sorted(self.completers_gone),
            )
        if self.completers:
            c.executemany(
                f"INSERT INTO rm_ministry_completers{suffix} (ministry_id, fy, officer_id) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                sorted(self.completers),
            )

    # ---- queries ------------------------------------------------------------

    def aggregates(self, c: Cursor, ministry_id: str) -> dict[str, Any] | None:
        c.execute("SELECT headcount FROM rm_ministries WHERE ministry_id = ?", (ministry_id,))
        row = c.fetchone()
        c.execute(
            "SELECT y.fy, y.enrolments, y.completions, y.learning_hours, "
            "(SELECT COUNT(*) FROM rm_ministry_completers k WHERE k.ministry_id = y.ministry_id AND k.fy = y.fy) "
            "FROM rm_ministry_years y WHERE y.ministry_id = ? ORDER BY y.fy",
            (ministry_id,),
        )
        years = {
            r[0]: {
                "enrolments": int(r[1]),
                "completions": int(r[2]),
                "learning_hours": float(r[3]),
                "officers_completed": int(r[4]),
            }
            for r in c.fetchall()
            if r[1] or r[2]
        }
        if row is None and not years:
            return None
        return {"ministry_id": ministry_id, "headcount": int(row[0]) if row else 0, "years": years}

    def export(self, c: Cursor) -> list[dict[str, Any]]:
        c.execute(
            "SELECT ministry_id FROM rm_ministries UNION SELECT ministry_id FROM rm_ministry_years "
            "ORDER BY ministry_id"
        )
        ids = [r[0] for r in c.fetchall()]
        out = []
        for ministry_id in ids:
            found = self.aggregates(c, ministry_id)
            if found is not None:
                out.append(found)
        return out
