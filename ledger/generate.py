"""A realistic synthetic command stream (JSON Lines) for demos, tests and benchmarks.

Ministries with departments and attached organisations, a competency dictionary,
FRAC posts, ~50 courses from several providers, and officers whose careers span
three financial years: transfers, enrolments, progress, attempts, completions and
withdrawals, plus a share of invalid commands of the kinds real feeds contain.
Every command carries a ``command_id``, so a rerun is answered ``duplicate``.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

IST = timezone(timedelta(hours=5, minutes=30))
START = datetime(2023, 4, 1, 9, 0, tzinfo=IST)
END = datetime(2026, 3, 31, 18, 0, tzinfo=IST)

MINISTRIES = [
    ("MOF", "Ministry of Finance", ["Revenue", "Expenditure", "Economic Affairs"]),
    ("MOHFW", "Ministry of Health and Family Welfare", ["Health Research", "Health and Family Welfare"]),
    ("MOPPGP", "Ministry of Personnel, Public Grievances and Pensions", ["Personnel and Training", "Administrative Reforms"]),
    ("MOR", "Ministry of Railways", ["Railway Board"]),
    ("MEA", "Ministry of External Affairs", ["Consular, Passport and Visa"]),
]
OFFICES = ["Directorate", "Regional Office", "Training Institute", "Commission"]
COMPETENCIES = {
    "behavioural": [
        "Integrity", "Empathy", "Decision making", "Team leadership", "Communication",
        "Citizen centricity", "Accountability", "Self awareness", "Collaboration", "Adaptability",
    ],
    "functional": [
        "Budgeting", "Procurement", "Project management", "Noting and drafting", "RTI handling",
        "Data analysis", "Grievance redressal", "Policy analysis", "Contract management",
        "Office management", "Stakeholder consultation", "Monitoring and evaluation",
    ],
    "domain": [
        "Public finance", "Taxation", "Public health", "Epidemiology", "Railway safety",
        "Consular practice", "Service rules", "Pension rules", "Digital governance",
        "Disaster management", "Vigilance", "Cyber security",
    ],
}
POST_TITLES = ["Section Officer", "Under Secretary", "Deputy Secretary", "Director", "Assistant Section Officer"]
PROVIDERS = ["LBSNAA", "ISTM", "NIFM", "NACIN", "iGOT Karmayogi", "IIM Bangalore", "NIHFW", "Coursera for Government"]
FIRST = [
    "Asha", "Rahul", "Priya", "Vikram", "Meena", "Arjun", "Kavita", "Sanjay", "Neha", "Anil",
    "Deepa", "Ravi", "Sunita", "Manoj", "Pooja", "Suresh", "Lakshmi", "Imran", "Farah", "Gurpreet",
    "Harish", "Jyoti", "Karthik", "Nandini", "Prakash", "Rekha", "Sameer", "Tanvi", "Vijay", "Zoya",
]
LAST = [
    "Sharma", "Verma", "Iyer", "Reddy", "Nair", "Gupta", "Singh", "Das", "Patel", "Khan",
    "Mukherjee", "Rao", "Menon", "Joshi", "Chatterjee", "Kulkarni", "Bose", "Pillai", "Yadav", "Gill",
]


def _iso(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat()


class Generator:
    """Builds the reference data, then each officer's career, merged in time order."""

    def __init__(self, officers: int, seed: int, invalid_share: float = 0.03) -> None:
        self.rng = random.Random(seed)
        self.n_officers = officers
        self.seed = seed
        self.invalid_share = invalid_share
        self.counter = 0
        self.orgs: list[tuple[str, str]] = []  # (org_id, ministry_id)
        self.posts: dict[str, list[str]] = {}  # org_id -> post ids
        self.post_defs: dict[str, dict[str, Any]] = {}
        self.competencies: list[str] = []
        self.courses: list[dict[str, Any]] = []

    def _cid(self) -> str:
        self.counter += 1
        return f"gen-{self.seed}-{self.counter}"

    def _cmd(self, command_type: str, /, **fields: Any) -> dict[str, Any]:
        return {"type": command_type, "command_id": self._cid(), **fields}

    # ---- reference data -----------------------------------------------------

    def reference(self) -> Iterator[dict[str, Any]]:
        at = _iso(START - timedelta(days=30))
        for kind, names in COMPETENCIES.items():
            for i, name in enumerate(names, 1):
                cid = f"{kind[0].upper()}{i:02d}"
                self.competencies.append(cid)
                yield self._cmd("define_competency", competency_id=cid, name=name, kind=kind, occurred_at=at)
        for mid, mname, departments in MINISTRIES:
            yield self._cmd("define_organisation", org_id=mid, name=mname, kind="ministry", occurred_at=at)
            self.orgs.append((mid, mid))
            for d, dname in enumerate(departments, 1):
                did = f"{mid}.D{d}"
                yield self._cmd(
                    "define_organisation", org_id=did, name=f"Department of {dname}",
                    kind="department", parent_id=mid, occurred_at=at,
                )
                self.orgs.append((did, mid))
                for o in range(1, self.rng.randint(2, 3) + 1):
                    oid = f"{did}.O{o}"
                    office = self.rng.choice(OFFICES)
                    yield self._cmd(
                        "define_organisation", org_id=oid, name=f"{dname} {office} {o}",
                        kind="organisation", parent_id=self.rng.choice([did, mid]), occurred_at=at,
                    )
                    self.orgs.append((oid, mid))
        for org_id, _ in self.orgs:
            ids = []
            for p, title in enumerate(self.rng.sample(POST_TITLES, 3), 1):
                post_id = f"{org_id}.P{p}"
                ids.append(post_id)
                post = self._post(post_id, org_id, title)
                self.post_defs[post_id] = post
                yield self._cmd("define_post", **post, occurred_at=at)
            self.posts[org_id] = ids
        for c in range(1, 51):
            builds = self.rng.sample(self.competencies, self.rng.randint(1, 3))
            assessment = (
                {"pass_mark": self.rng.choice([50, 60, 70]), "max_attempts": self.rng.randint(1, 3)}
                if self.rng.random() < 0.6
                else None
            )
            course = {
                "course_id": f"CRS-{c:03d}",
                "title": f"{self.rng.choice(['Foundations of', 'Advanced', 'Practical', 'Essentials of'])} "
                f"{builds[0]} {c}",
                "provider": self.rng.choice(PROVIDERS),
                "duration_hours": self.rng.choice([1, 2, 2.5, 4, 6, 8, 12, 16, 24, 40]),
                "competencies": [
                    {"competency_id": b, "level": self.rng.randint(1, 5)} for b in builds
                ],
                "assessment": assessment,
            }
            self.courses.append(course)
            yield self._cmd("publish_course", **course, occurred_at=at)

    def _post(self, post_id: str, org_id: str, title: str) -> dict[str, Any]:
        roles = []
        for r in range(1, self.rng.randint(1, 3) + 1):
            activities = []
            for a in range(1, self.rng.randint(1, 3) + 1):
                needs = self.rng.sample(self.competencies, self.rng.randint(1, 3))
                activities.append(
                    {
                        "name": f"Activity {r}.{a}",
                        "competencies": [
                            {"competency_id": n, "level": self.rng.randint(1, 5)} for n in needs
                        ],
                    }
                )
            roles.append({"name": f"{title} role {r}", "activities": activities})
        return {"post_id": post_id, "org_id": org_id, "title": title, "roles": roles}

    # ---- officers -----------------------------------------------------------

    def _posting(self) -> tuple[str, str | None]:
        org_id, _ = self.rng.choice(self.orgs)
        post = self.rng.choice(self.posts[org_id]) if self.rng.random() < 0.85 else None
        return org_id, post

    def career(self, index: int) -> list[tuple[datetime, dict[str, Any]]]:
        """One officer's commands, each with the instant it reaches the ledger (for a late
        report, later than its occurred_at)."""
        rng = self.rng
        officer_id = f"OFF-{index:07d}"
        span = (END - START).total_seconds()
        at = START + timedelta(seconds=rng.uniform(0, span * 0.6))
        out: list[tuple[datetime, dict[str, Any]]] = []

        def add(kind: str, when: datetime, **fields: Any) -> None:
            out.append((when, self._cmd(kind, officer_id=officer_id, occurred_at=_iso(when), **fields)))

        first, last = rng.choice(FIRST), rng.choice(LAST)
        org_id, post_id = self._posting()
        reg: dict[str, Any] = {
            "name": f"{first} {last}",
            "email": f"{first}.{last}.{index}@gov.in".lower(),
            "org_id": org_id,
        }
        if post_id:
            reg["post_id"] = post_id
        add("register_officer", at, **reg)
        courses = rng.sample(self.courses, rng.randint(2, 8))
        transfers = rng.randint(0, 2)
        steps: list[str] = ["transfer"] * transfers + ["course"] * len(courses)
        rng.shuffle(steps)
        current = (org_id, post_id)
        for step in steps:
            at += timedelta(days=rng.uniform(5, 90), minutes=rng.randint(1, 600))
            if at > END:
                break
            if step == "transfer":
                new = self._posting()
                if new == current:
                    continue
                fields: dict[str, Any] = {"org_id": new[0]}
                if new[1]:
                    fields["post_id"] = new[1]
                add("transfer_officer", at, **fields)
                current = new
                continue
            at = self._take_course(courses.pop(), at, add)
        return self.corrections(officer_id, out)

    def corrections(
        self, officer_id: str, out: list[tuple[datetime, dict[str, Any]]]
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """What a real feed also holds, from a random stream of its own per officer (so the
        careers stay as they were): a completion an institute's LMS reports weeks late, a
        name corrected from the start (DPDP s. 12), the latest fact retracted as recorded in
        error. Returned in arrival order, which decides each event's version."""
        rng = random.Random(f"{self.seed}:{officer_id}")
        arrived = list(out)
        completions = [i for i, (_, cmd) in enumerate(arrived) if cmd["type"] == "complete_course"]
        if completions and rng.random() < 0.04:
            i = rng.choice(completions)
            when, cmd = arrived[i]
            arrived[i] = (when + timedelta(days=rng.uniform(5, 40)), cmd)  # reported late
        arrived.sort(key=lambda item: item[0])  # stable: the career's order among equals
        last = arrived[-1][0]
        if rng.random() < 0.02:
            registered = arrived[0][1]
            last += timedelta(days=rng.uniform(1, 30))
            arrived.append((last, {"type": "correct_officer_details", "command_id": f"fix-{self.seed}-{officer_id}",
                                   "officer_id": officer_id, "name": registered["name"] + " " + rng.choice("ABKMRS"),
                                   "occurred_at": registered["occurred_at"]}))
        if len(arrived) > 1 and rng.random() < 0.02:
            last += timedelta(days=rng.uniform(1, 30))
            arrived.append((last, {"type": "retract", "command_id": f"undo-{self.seed}-{officer_id}",
                                   "officer_id": officer_id, "versions": [len(arrived)],
                                   "reason": rng.choice(("recorded_in_error", "duplicate")), "occurred_at": _iso(last)}))
        return arrived

    def _take_course(self, course: dict[str, Any], at: datetime, add: Callable[..., None]) -> datetime:
        """Enrol, progress, then maybe withdraw, attempt the assessment and complete; returns the last instant."""
        rng = self.rng
        add("enrol", at, course_id=course["course_id"])
        progress = 0
        outcome = rng.random()
        for _ in range(rng.randint(1, 4)):
            at += timedelta(days=rng.uniform(0.5, 10))
            progress = min(100, progress + rng.randint(10, 60))
            add("record_progress", at, course_id=course["course_id"], percent=progress)
            if progress >= 100:
                break
        if outcome < 0.15:
            at += timedelta(days=rng.uniform(1, 20))
            add("withdraw", at, course_id=course["course_id"])
            return at
        if progress < 100:
            at += timedelta(days=rng.uniform(1, 10))
            add("record_progress", at, course_id=course["course_id"], percent=100)
        passed = course["assessment"] is None
        if not passed:
            for _ in range(course["assessment"]["max_attempts"]):
                at += timedelta(hours=rng.uniform(1, 72))
                score = round(rng.uniform(30, 100), 1)
                add("attempt_assessment", at, course_id=course["course_id"], score=score)
                if score >= course["assessment"]["pass_mark"]:
                    passed = True
                    break
        if passed and outcome < 0.9:
            at += timedelta(hours=rng.uniform(1, 48))
            add("complete_course", at, course_id=course["course_id"])
        return at

    def invalid(self, at: datetime, officer_id: str) -> dict[str, Any]:
        """One command of the kinds a real feed gets wrong."""
        rng = self.rng
        choice = rng.randrange(7)
        stamp = _iso(at)
        if choice == 0:
            return self._cmd("enrol", officer_id=officer_id, course_id="CRS-999", occurred_at=stamp)
        if choice == 1:
            return self._cmd("record_progress", officer_id=officer_id, course_id="CRS-001",
                             percent=rng.choice([101, -5, "50"]), occurred_at=stamp)
        if choice == 2:
            return self._cmd("enrol", officer_id="OFF-UNKNOWN", course_id="CRS-001", occurred_at=stamp)
        if choice == 3:
            return self._cmd("complete_course", officer_id=officer_id,
                             course_id=rng.choice(self.courses)["course_id"],
                             occurred_at=_iso(START - timedelta(days=400)))
        if choice == 4:
            return self._cmd("withdraw", officer_id=officer_id, course_id="CRS-001",
                             occurred_at=stamp, reason="left the batch")
        if choice == 5:
            return self._cmd("transfer_officer", officer_id=officer_id, org_id="NO-SUCH-ORG",
                             occurred_at=stamp)
        return self._cmd("register_officer", officer_id=officer_id, name="", email="not-an-email",
                         org_id="MOF", occurred_at=stamp)

    def commands(self) -> Iterator[dict[str, Any]]:
        """Every command: reference data first, then all careers merged by time."""
        yield from self.reference()
        timeline: list[tuple[datetime, int, dict[str, Any]]] = []
        seq = 0
        for i in range(1, self.n_officers + 1):
            for at, cmd in self.career(i):
                seq += 1
                timeline.append((at, seq, cmd))
                if self.rng.random() < self.invalid_share:
                    seq += 1
                    timeline.append((at, seq, self.invalid(at, cmd["officer_id"])))
        # A few FRAC revisions during the period change required levels of
        # everyone on those posts.
        for post_id in self.rng.sample(sorted(self.post_defs), max(1, len(self.post_defs) // 10)):
            post = self.post_defs[post_id]
            revised = self._post(post_id, post["org_id"], post["title"])
            when = START + timedelta(days=self.rng.uniform(200, 900))
            seq += 1
            timeline.append((when, seq, self._cmd("define_post", **revised, occurred_at=_iso(when))))
        for when, cmd in self.plans():
            seq += 1
            timeline.append((when, seq, cmd))
        heapq.heapify(timeline)
        while timeline:
            yield heapq.heappop(timeline)[2]

    def plans(self) -> list[tuple[datetime, dict[str, Any]]]:
        """Annual Capacity Building Plans: most ministries, two financial years, some
        revised mid-year, and a few declarations that must be rejected.

        Drawn from a random stream of their own, so the careers stay as they were."""
        rng = random.Random(self.seed * 7919 + 13)
        out: list[tuple[datetime, dict[str, Any]]] = []
        for mid, _, _ in MINISTRIES:
            for year in (2024, 2025):
                if rng.random() < 0.2:
                    continue
                fy = f"{year}-{(year + 1) % 100:02d}"
                when = datetime(year, 4, 1, 10, 0, tzinfo=IST) + timedelta(days=rng.uniform(0, 60))
                out.append((when, self._plan(rng, mid, fy, when)))
                if rng.random() < 0.3:  # a revision later in the year
                    when = when + timedelta(days=rng.uniform(90, 200))
                    out.append((when, self._plan(rng, mid, fy, when)))
        when = datetime(2025, 5, 1, 10, 0, tzinfo=IST)
        department = next(org for org, ministry in self.orgs if org != ministry)
        for bad in (
            {"ministry_id": department, "fy": "2025-26"},  # not a ministry
            {"ministry_id": MINISTRIES[0][0], "fy": "2025-27"},  # malformed year
            {"ministry_id": MINISTRIES[0][0], "fy": "2025-26",
             "targets": [{"competency_id": "NO-SUCH", "level": 2, "officers": 10}]},  # unknown competency
        ):
            cmd = self._plan(rng, MINISTRIES[0][0], "2025-26", when)
            cmd.update(bad)
            out.append((when, cmd))
        return out

    def _plan(self, rng: random.Random, ministry_id: str, fy: str, when: datetime) -> dict[str, Any]:
        chosen = rng.sample(self.competencies, rng.randint(2, 6))
        targets = [{"competency_id": c, "level": rng.randint(1, 4), "officers": rng.choice((5, 10, 20, 50))}
                   for c in chosen]
        return self._cmd("declare_capacity_plan", ministry_id=ministry_id, fy=fy,
                         min_learning_hours=float(rng.choice((8, 12, 16, 20))), targets=targets,
                         occurred_at=_iso(when))


def generate_lines(officers: int, seed: int) -> Iterator[str]:
    """The generated stream as JSON Lines text (without newlines)."""
    for command in Generator(officers, seed).commands():
        yield json.dumps(command, separators=(",", ":"))
