"""One handler per command type: look up what the command names, call the aggregate.

A handler gets the batch's unit of work and the command's checked fields, and
raises a domain error to reject. A new command type is one function here and one
entry in ``HANDLERS`` (plus its schema in :mod:`ledger.write.commands`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ledger.domain.errors import AlreadyExists, NotFound, OfficerErasedError
from ledger.domain.history import CourseInfo, OrgInfo, PostInfo
from ledger.domain.officer import Officer
from ledger.domain.plan import CapacityPlan
from ledger.domain.reference import Competency, Course, Organisation, Post, already_defined
from ledger.integrity import crypto

if TYPE_CHECKING:
    from ledger.write.unit import UnitOfWork

Fields = dict[str, Any]
Handler = Callable[["UnitOfWork", Fields], None]


# ---- lookups ------------------------------------------------------------------


def _org(unit: UnitOfWork, org_id: str) -> Organisation:
    org = unit.get(Organisation, Organisation.create_id(org_id))
    if org is None:
        raise NotFound(f"org_id: organisation {org_id!r} is not defined")
    return org


def _officer(unit: UnitOfWork, officer_id: str) -> Officer:
    officer = unit.get(Officer, Officer.create_id(officer_id))
    if officer is None:
        raise NotFound(f"officer_id: officer {officer_id!r} is not registered")
    return officer


def _competency(unit: UnitOfWork, competency_id: str, field: str) -> None:
    if unit.get(Competency, Competency.create_id(competency_id)) is None:
        raise NotFound(f"{field}: competency {competency_id!r} is not defined")


def _at(f: Fields) -> datetime:
    at: datetime = f["occurred_at"]
    return at


def _stamp(f: Fields) -> str:
    return _at(f).isoformat()


# ---- reference data -------------------------------------------------------------


def define_organisation(unit: UnitOfWork, f: Fields) -> None:
    if unit.get(Organisation, Organisation.create_id(f["org_id"])) is not None:
        raise already_defined("organisation", "org_id", f["org_id"])
    parent_id = f.get("parent_id")
    parent = (
        None if parent_id is None else unit.get(Organisation, Organisation.create_id(parent_id))
    )
    unit.add(Organisation.define(f["org_id"], f["name"], f["kind"], parent, parent_id, _stamp(f)))


def define_competency(unit: UnitOfWork, f: Fields) -> None:
    if unit.get(Competency, Competency.create_id(f["competency_id"])) is not None:
        raise already_defined("competency", "competency_id", f["competency_id"])
    unit.add(Competency.define(f["competency_id"], f["name"], f["kind"], _stamp(f)))


def define_post(unit: UnitOfWork, f: Fields) -> None:
    """Define a post, or revise its FRAC roles when it exists in the same organisation."""
    _org(unit, f["org_id"])
    for r, role in enumerate(f["roles"]):
        for a, activity in enumerate(role["activities"]):
            for c, need in enumerate(activity["competencies"]):
                _competency(
                    unit,
                    need["competency_id"],
                    f"roles[{r}].activities[{a}].competencies[{c}].competency_id",
                )
    existing = unit.get(Post, Post.create_id(f["post_id"]))
    if existing is None:
        unit.add(Post.define(f["post_id"], f["org_id"], f["title"], f["roles"], _stamp(f)))
    else:
        existing.revise(f["org_id"], f["title"], f["roles"], _stamp(f))


def declare_capacity_plan(unit: UnitOfWork, f: Fields) -> None:
    """Declare a ministry's plan for a financial year, or revise (replace) the declared one."""
    ministry_id, fy, targets = f["ministry_id"], f["fy"], f["targets"]
    ministry = unit.get(Organisation, Organisation.create_id(ministry_id))
    CapacityPlan.check(ministry, ministry_id, f["min_learning_hours"], targets)
    for t, target in enumerate(targets):
        _competency(unit, target["competency_id"], f"targets[{t}].competency_id")
    existing = unit.get(CapacityPlan, CapacityPlan.create_id(ministry_id, fy))
    if existing is None:
        unit.add(CapacityPlan.declare(ministry_id, fy, f["min_learning_hours"], targets, _stamp(f)))
    else:
        existing.revise(f["min_learning_hours"], targets, _stamp(f))


def publish_course(unit: UnitOfWork, f: Fields) -> None:
    if unit.get(Course, Course.create_id(f["course_id"])) is not None:
        raise AlreadyExists(f"course_id: course {f['course_id']!r} is already published")
    needs = f.get("competencies", [])
    for c, need in enumerate(needs):
        _competency(unit, need["competency_id"], f"competencies[{c}].competency_id")
    unit.add(
        Course.publish(
            f["course_id"],
            f["title"],
            f["provider"],
            f["duration_hours"],
            needs,
            f.get("assessment"),
            _stamp(f),
        )
    )


# ---- officers -------------------------------------------------------------------


# Aggregate ids of the reference data officer commands name (a name-based UUID, a SHA-1
# each), remembered: nearly every officer command looks one up.
_course_id = lru_cache(maxsize=1 << 14)(Course.create_id)
_org_id = lru_cache(maxsize=1 << 14)(Organisation.create_id)
_post_id = lru_cache(maxsize=1 << 16)(Post.create_id)


class UnitReference:
    """Reference data as the officer rules see it, looked up in the batch's unit of work."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    def course(self, course_id: str) -> CourseInfo | None:
        found = self.unit.get(Course, _course_id(course_id))
        return None if found is None else CourseInfo(found.course_id, found.duration_hours,
                                                     found.competencies, found.assessment)

    def org(self, org_id: str) -> OrgInfo | None:
        found = self.unit.get(Organisation, _org_id(org_id))
        return None if found is None else OrgInfo(found.org_id, found.kind, found.ministry_id)

    def post(self, post_id: str) -> PostInfo | None:
        found = self.unit.get(Post, _post_id(post_id))
        return None if found is None else PostInfo(found.post_id, found.org_id)


def register_officer(unit: UnitOfWork, f: Fields) -> None:
    """Register an officer; name and email reach the event only as ciphertext under a new key."""
    if unit.bulk is not None:
        unit.bulk.register(f, UnitReference(unit))
        return
    officer_id = f["officer_id"]
    if unit.get(Officer, Officer.create_id(officer_id)) is not None:
        raise AlreadyExists(f"officer_id: officer {officer_id!r} is already registered")
    key = crypto.new_data_key()
    sealed = {**f, "name_ct": crypto.encrypt(key, officer_id, "name", f["name"]),
              "email_ct": crypto.encrypt(key, officer_id, "email", f["email"])}
    officer = Officer.register(sealed, UnitReference(unit))
    unit.add_key(officer_id, key)
    unit.add(officer)


def officer_command(command_type: str) -> Handler:
    """The handler of an officer command that the rules decide on the officer's history."""

    def handle(unit: UnitOfWork, f: Fields) -> None:
        if unit.bulk is not None:
            unit.bulk.execute(command_type, f, UnitReference(unit))
            return
        officer = _officer(unit, f["officer_id"])
        officer.execute(command_type, f, UnitReference(unit))

    handle.__name__ = command_type
    return handle


def correct_officer_details(unit: UnitOfWork, f: Fields) -> None:
    """Correct name and/or email: encrypted under the officer's key like the registration's,
    so erasure makes every version unreadable; a value equal to the one in force is no change."""
    if unit.bulk is not None:
        unit.bulk.correct_details(f, UnitReference(unit))
        return
    officer = _officer(unit, f["officer_id"])
    sealed, same_as_in_force = sealed_details(unit, f, officer.erased)
    officer.execute("correct_officer_details", sealed, UnitReference(unit), same_as_in_force)


def sealed_details(unit: Any, f: Mapping[str, Any], erased: bool) -> tuple[Fields, Callable[[str, str], bool]]:
    """A detail correction's fields with the new values sealed under the officer's key, and
    the test of whether a sealed value equals the new one (no change). The plain handler's
    and the fast path's (``ledger.write.bulk``); refused for an erased officer."""
    officer_id = f["officer_id"]
    if erased:
        raise OfficerErasedError(f"officer_id: officer {officer_id!r} was erased")
    key = unit.key_of(officer_id)
    if key is None:
        raise OfficerErasedError(f"officer_id: officer {officer_id!r} has no data key (erased)")
    sealed = dict(f)
    for field in ("name", "email"):
        if field in f:
            sealed[f"{field}_ct"] = crypto.encrypt(key, officer_id, field, f[field])

    def same_as_in_force(field: str, ciphertext: str) -> bool:
        return bool(ciphertext) and crypto.decrypt(key, officer_id, field, ciphertext) == f[field]

    return sealed, same_as_in_force


HANDLERS: dict[str, Handler] = {
    "define_organisation": define_organisation,
    "define_competency": define_competency,
    "define_post": define_post,
    "publish_course": publish_course,
    "register_officer": register_officer,
    **{kind: officer_command(kind) for kind in (
        "transfer_officer", "enrol", "record_progress", "attempt_assessment", "complete_course", "withdraw",
        "retract")},
    "correct_officer_details": correct_officer_details,
    "declare_capacity_plan": declare_capacity_plan,
}
