"""The competency profile: FRAC requirements of the current post against what was acquired.

The projection keeps, per officer, the current post and the levels acquired from
completed courses, plus the reference tables it needs: each post's current FRAC
revision and the course catalogue. Required levels, gaps and recommendations are
derived when asked, so a FRAC revision changes every officer on that post at once.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.domain.reference import required_levels
from ledger.projections.base import OfficerDocProjection, dumps, keep_newest, write_newest
from ledger.store.db import Cursor

MAX_RECOMMENDED = 10


def new_profile(officer_id: str) -> dict[str, Any]:
    return {"officer_id": officer_id, "post_id": None, "acquired": {}, "completed": []}


def apply(profile: dict[str, Any], event: dict[str, Any]) -> None:
    """Apply one officer event to a profile in progress."""
    kind = event["type"]
    if kind in ("OfficerRegistered", "OfficerTransferred"):
        profile["post_id"] = event["post_id"]
    elif kind == "CourseCompleted":
        acquired = profile["acquired"]
        for need in event["competencies"]:
            cid = need["competency_id"]
            acquired[cid] = max(acquired.get(cid, 0), need["level"])
        profile["completed"] = sorted({*profile["completed"], event["course_id"]})


def derive(
    profile: dict[str, Any],
    required: dict[str, int],
    courses: list[dict[str, Any]],
) -> dict[str, Any]:
    """The spec's competency profile from the stored state, the post's needs and the catalogue."""
    acquired: dict[str, int] = profile["acquired"]
    gaps = {
        cid: level - acquired.get(cid, 0)
        for cid, level in sorted(required.items())
        if level - acquired.get(cid, 0) > 0
    }
    done = set(profile["completed"])
    ranked = []
    for course in courses:
        if course["course_id"] in done:
            continue
        improves = sum(
            1
            for need in course["competencies"]
            if need["competency_id"] in gaps and need["level"] > acquired.get(need["competency_id"], 0)
        )
        if improves:
            ranked.append((-improves, course["duration_hours"], course["course_id"]))
    ranked.sort()
    return {
        "officer_id": profile["officer_id"],
        "post_id": profile["post_id"],
        "required": dict(sorted(required.items())),
        "acquired": dict(sorted(acquired.items())),
        "gaps": gaps,
        "recommended": [course_id for _, _, course_id in ranked[:MAX_RECOMMENDED]],
    }


class CompetenciesProjection(OfficerDocProjection):
    """Per officer: post and acquired levels; per post: FRAC needs; the course catalogue."""

    name = "competencies"
    doc_table = "rm_competencies"

    def extra_tables(self) -> list[str]:
        return ["rm_posts", "rm_courses"]

    def new_doc(self, officer_id: str) -> dict[str, Any]:
        return new_profile(officer_id)

    def apply_event(self, c: Any, doc: dict[str, Any], event: dict[str, Any]) -> None:
        apply(doc, event)

    def begin(self) -> None:
        self.posts: dict[str, tuple[int, str, str]] = {}  # post_id -> (FRAC revision, org_id, required)
        self.courses: dict[str, tuple[float, str]] = {}

    def apply_reference(self, c: Cursor, event: dict[str, Any], suffix: str) -> None:
        # Collected and written in key order by flush: consumers of several processes may
        # apply the same reference events at once, and key order keeps them from deadlocking.
        if event["type"] == "PostDefined":
            keep_newest(self.posts, event["post_id"],
                        (event["version"], event["org_id"], dumps(required_levels(event["roles"]))))
        elif event["type"] == "CoursePublished":
            self.courses.setdefault(
                event["course_id"], (event["duration_hours"], dumps(event["competencies"])))

    def flush(self, c: Cursor, suffix: str) -> None:
        # Idempotent and order-free: a post keeps its highest FRAC revision (an older or
        # repeated one is ignored), a course its one publication.
        write_newest(c, f"rm_posts{suffix}", ("post_id",), ("version", "org_id", "required"), ("required",),
                     [(post_id, *row) for post_id, row in sorted(self.posts.items())])
        if self.courses:
            c.executemany(
                f"INSERT INTO rm_courses{suffix} (course_id, duration_hours, competencies) VALUES (?, ?, ?) "
                "ON CONFLICT (course_id) DO NOTHING",
                [(course_id, *row) for course_id, row in sorted(self.courses.items())],
            )

    # ---- queries ------------------------------------------------------------

    def _courses(self, c: Cursor) -> list[dict[str, Any]]:
        c.execute("SELECT course_id, duration_hours, competencies FROM rm_courses")
        return [
            {"course_id": r[0], "duration_hours": float(r[1]), "competencies": json.loads(r[2])}
            for r in c.fetchall()
        ]

    def _required(self, c: Cursor) -> dict[str, dict[str, int]]:
        c.execute("SELECT post_id, required FROM rm_posts")
        return {r[0]: json.loads(r[1]) for r in c.fetchall()}

    def profile(self, c: Cursor, officer_id: str) -> dict[str, Any] | None:
        doc = self.get_doc(c, officer_id)
        if doc is None:
            return None
        required: dict[str, int] = {}
        if doc["post_id"] is not None:
            c.execute("SELECT required FROM rm_posts WHERE post_id = ?", (doc["post_id"],))
            row = c.fetchone()
            required = json.loads(row[0]) if row else {}
        return derive(doc, required, self._courses(c))

    def export(self, c: Cursor) -> list[dict[str, Any]]:
        courses = self._courses(c)
        posts = self._required(c)
        return [
            derive(doc, posts.get(doc["post_id"], {}) if doc["post_id"] else {}, courses)
            for doc in list(self.all_docs(c))
        ]
