"""The officer's rules as pure functions (decide, evolve, check) over a compact state, replayed
over the *business history* (events except retractions and what they retract, by occurred_at as
an instant, ties by version) to accept commands, late ones too, retractions and as-of reads."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import accumulate
from typing import Any, NamedTuple, Protocol

from ledger.domain import errors
from ledger.domain.errors import InvalidCommand, RuleViolation
from ledger.domain.values import check_id, format_instant, parse_instant

Event = Mapping[str, Any]
Body = dict[str, Any]
# (field, ciphertext in force) -> is the command's new value its plaintext? (closes over the key)
SameAsInForce = Callable[[str, str], bool]

ENROLLED, COMPLETED, WITHDRAWN = "enrolled", "completed", "withdrawn"
RETRACTION = "EventsRetracted"
REASONS = ("recorded_in_error", "duplicate", "wrong_officer", "withdrawn_by_provider", "other")
COMMAND_EVENTS = {  # the commands decided on a state, and the event each records
    "register_officer": "OfficerRegistered", "transfer_officer": "OfficerTransferred",
    "enrol": "CourseEnrolled", "record_progress": "ProgressRecorded",
    "attempt_assessment": "AssessmentAttempted", "complete_course": "CourseCompleted",
    "withdraw": "CourseWithdrawn", "correct_officer_details": "OfficerDetailsCorrected",
}
COURSE_EVENTS = ("CourseEnrolled", "ProgressRecorded", "AssessmentAttempted", "CourseCompleted", "CourseWithdrawn")
BUSINESS_EVENTS = frozenset({*COMMAND_EVENTS.values(), "OfficerErased"})


@dataclass(frozen=True)
class CourseInfo:
    """What the rules need of a published course (assessment: pass_mark, max_attempts)."""
    course_id: str
    duration_hours: float
    competencies: list[dict[str, Any]] = field(default_factory=list)
    assessment: dict[str, int] | None = None


@dataclass(frozen=True)
class OrgInfo:
    """An organisation and the ministry above it."""
    org_id: str
    kind: str
    ministry_id: str


@dataclass(frozen=True)
class PostInfo:
    """A post and the organisation it belongs to."""
    post_id: str
    org_id: str


class Reference(Protocol):
    """Reference data as the officer rules see it (None: not defined)."""
    def course(self, course_id: str) -> CourseInfo | None: ...
    def org(self, org_id: str) -> OrgInfo | None: ...
    def post(self, post_id: str) -> PostInfo | None: ...


class DictReference:
    """A Reference over dicts (tests, batch tools)."""
    def __init__(self, courses: Mapping[str, CourseInfo], orgs: Mapping[str, OrgInfo], posts: Mapping[str, PostInfo]) -> None:
        self.courses, self.orgs, self.posts = courses, orgs, posts
        self.course, self.org, self.post = courses.get, orgs.get, posts.get


@dataclass(frozen=True, slots=True)
class EnrolmentState:
    """The officer's latest enrolment in one course."""
    status: str = ENROLLED
    progress: int = 0
    attempts: int = 0
    passed: bool = False


@dataclass(frozen=True, slots=True)
class OfficerState:
    """An officer at one point of its business history. Never mutated: evolve copies."""
    officer_id: str
    registered: bool = False
    erased: bool = False
    org_id: str | None = None
    ministry_id: str | None = None
    post_id: str | None = None
    enrolments: Mapping[str, EnrolmentState] = field(default_factory=dict)
    name_ct: str = ""  # the details in force (ciphertext)
    email_ct: str = ""
    last_at: datetime | None = None  # the latest occurred_at


def instant(event: Event, key: str = "occurred_at") -> datetime:
    """An event's time as an aware datetime (compare instants, never text)."""
    return parse_instant(event[key], key)


def evolve(state: OfficerState, event: Event) -> OfficerState:
    """The state after one business event (one ``check`` refuses changes nothing more)."""
    kind, at = event["type"], instant(event)
    last = at if state.last_at is None or at > state.last_at else state.last_at
    if kind in COURSE_EVENTS:
        return _evolve_enrolment(state, kind, event, last)
    if kind in ("OfficerRegistered", "OfficerTransferred"):
        state = replace(state, org_id=event["org_id"], ministry_id=event["ministry_id"],
                        post_id=event.get("post_id"), last_at=last)
        if kind == "OfficerTransferred":
            return state
        return replace(state, registered=True, name_ct=event["name_ct"], email_ct=event["email_ct"])
    if kind == "OfficerDetailsCorrected":
        name, email = event.get("name_ct"), event.get("email_ct")
        return replace(state, name_ct=state.name_ct if name is None else name,
                       email_ct=state.email_ct if email is None else email, last_at=last)
    if kind == "OfficerErased":
        return replace(state, erased=True, name_ct="", email_ct="", last_at=last)
    raise ValueError(f"{kind} is not a business event of an officer")


def _evolve_enrolment(state: OfficerState, kind: str, event: Event, last: datetime) -> OfficerState:
    course_id = event["course_id"]
    current = state.enrolments.get(course_id)
    if kind == "CourseEnrolled":
        new = EnrolmentState()  # after a withdrawal an enrolment starts afresh
    elif current is None:
        return replace(state, last_at=last)
    elif kind == "ProgressRecorded":
        new = replace(current, progress=max(current.progress, int(event["percent"])))
    elif kind == "AssessmentAttempted":  # counted: a late attempt makes stored numbers stale
        new = replace(current, attempts=current.attempts + 1, passed=current.passed or bool(event["passed"]))
    else:
        new = replace(current, status=COMPLETED if kind == "CourseCompleted" else WITHDRAWN)
    return replace(state, enrolments={**state.enrolments, course_id: new}, last_at=last)


def replay(state: OfficerState, events: Iterable[Event]) -> OfficerState:
    """Evolve ``state`` through ``events`` in the order given."""
    for event in events:
        state = evolve(state, event)
    return state


# Each rule once: its error, its message for a command, its phrase for a stored event it breaks.
_RULES: dict[str, tuple[type[RuleViolation], str, str]] = {
    "registered": (errors.AlreadyExists, "officer_id: officer {who!r} is already registered", "repeats the registration"),
    "unregistered": (errors.NotFound, "officer_id: officer {who!r} is not registered", "is before the registration"),
    "erased": (errors.OfficerErasedError, "officer_id: officer {who!r} was erased", "is after the officer's erasure"),
    "org": (errors.NotFound, "org_id: organisation {org!r} is not defined", "names organisation {org!r}, which is not defined"),
    "post": (RuleViolation, "post_id: post {post!r} is not defined", "names post {post!r}, which is not defined"),
    "post_org": (RuleViolation, "post_id: post {post!r} belongs to {owner!r}, not {org!r}", "names post {post!r} of another organisation"),
    "same_posting": (RuleViolation, "org_id: officer is already in that organisation and post", "repeats the officer's current organisation and post"),
    "course": (errors.NotFound, "course_id: course {course!r} is not published", "names course {course!r}, which is not published"),
    "enrolled": (RuleViolation, "course_id: already {status} in course {course!r}", "finds the course already {status}"),
    "no_enrolment": (RuleViolation, "course_id: no enrolment in course {course!r}, not enrolled", "has no enrolment"),
    "not_enrolled": (RuleViolation, "course_id: enrolment is {status} in course {course!r}, not enrolled", "finds the enrolment {status}"),
    "no_assessment": (RuleViolation, "course_id: course {course!r} has no assessment", "is for a course without an assessment"),
    "passed": (RuleViolation, "course_id: assessment of {course!r} already passed", "follows a passed attempt"),
    "used_up": (RuleViolation, "score: all {most} attempts at {course!r} are used up", "past the course's {most} attempts"),
    "progress": (RuleViolation, "course_id: progress in {course!r} is {progress}, below 100", "has progress {progress}, below 100"),
    "not_passed": (RuleViolation, "course_id: the assessment of {course!r} has not been passed", "has the course's assessment not passed"),
}


class Breach(NamedTuple):
    """One broken rule of ``_RULES`` and the values its wording names."""
    rule: str
    args: dict[str, Any]

    def error(self) -> RuleViolation:
        kind, message, _ = _RULES[self.rule]
        return kind(message.format(**self.args))

    def phrase(self) -> str:
        return _RULES[self.rule][2].format(**self.args)


def _breach(state: OfficerState, kind: str, f: Mapping[str, Any], ref: Reference) -> Breach | None:
    """The first rule an event of ``kind`` with fields ``f`` breaks at ``state``, or None."""
    who = {"who": state.officer_id}
    if kind == "OfficerRegistered" and state.registered:
        return Breach("registered", who)
    if kind != "OfficerRegistered" and not state.registered:
        return Breach("unregistered", who)
    if state.erased:
        return Breach("erased", who)
    if kind in COURSE_EVENTS:
        return _enrolment_breach(state, kind, f, ref)
    if kind in ("OfficerDetailsCorrected", "OfficerErased"):
        return None
    org_id, post_id = f["org_id"], f.get("post_id")
    post = None if post_id is None else ref.post(post_id)
    if ref.org(org_id) is None:
        return Breach("org", {"org": org_id})
    if post_id is not None and post is None:
        return Breach("post", {"post": post_id})
    if post is not None and post.org_id != org_id:
        return Breach("post_org", {"post": post_id, "owner": post.org_id, "org": org_id})
    if kind == "OfficerTransferred" and (org_id, post_id) == (state.org_id, state.post_id):
        return Breach("same_posting", {})
    return None


def _enrolment_breach(state: OfficerState, kind: str, f: Mapping[str, Any], ref: Reference) -> Breach | None:
    said = {"course": f["course_id"]}
    course = None
    if kind in ("CourseEnrolled", "AssessmentAttempted", "CourseCompleted"):
        course = ref.course(f["course_id"])
        if course is None:
            return Breach("course", said)
    current = state.enrolments.get(f["course_id"])
    if kind == "CourseEnrolled":
        if current is not None and current.status in (ENROLLED, COMPLETED):
            return Breach("enrolled", {**said, "status": current.status})
        return None
    if current is None:
        return Breach("no_enrolment", said)
    if current.status != ENROLLED:
        return Breach("not_enrolled", {**said, "status": current.status})
    if course is None:  # progress and withdrawal need no course facts
        return None
    if kind == "AssessmentAttempted":
        if course.assessment is None:
            return Breach("no_assessment", said)
        if current.passed:
            return Breach("passed", said)
        if current.attempts >= course.assessment["max_attempts"]:
            return Breach("used_up", {**said, "most": course.assessment["max_attempts"]})
        return None
    if current.progress < 100:
        return Breach("progress", {**said, "progress": current.progress})
    if course.assessment is not None and not current.passed:
        return Breach("not_passed", said)
    return None


def check(state: OfficerState, event: Event, ref: Reference) -> str | None:
    """Why a stored event would not be valid at ``state`` (a short phrase), or None."""
    if event["type"] not in BUSINESS_EVENTS:
        return "is not a business event"
    breach = _breach(state, event["type"], event, ref)
    return None if breach is None else breach.phrase()


def decide(state: OfficerState, command_type: str, fields: Mapping[str, Any], ref: Reference,
           same_as_in_force: SameAsInForce | None = None) -> Body | None:
    """The event body (with ``type``) a command records at ``state``, None for nothing; or raises."""
    kind = COMMAND_EVENTS[command_type]  # KeyError: not an officer command decided on a state
    if (breach := _breach(state, kind, fields, ref)) is not None:
        raise breach.error()
    own = _own_fields(state, kind, fields, ref, same_as_in_force)
    return None if own is None else {"type": kind, "officer_id": state.officer_id, **own,
                                     "occurred_at": format_instant(fields["occurred_at"])}


def _own_fields(state: OfficerState, kind: str, f: Mapping[str, Any], ref: Reference,
                same: SameAsInForce | None) -> Body | None:
    if kind in ("OfficerRegistered", "OfficerTransferred"):
        org = ref.org(f["org_id"])
        assert org is not None  # _breach checked it
        posting = {"org_id": org.org_id, "ministry_id": org.ministry_id, "post_id": f.get("post_id")}
        return posting if kind == "OfficerTransferred" else {"name_ct": f["name_ct"], "email_ct": f["email_ct"], **posting}
    if kind == "OfficerDetailsCorrected":
        given = [name for name in ("name", "email") if f.get(f"{name}_ct") is not None]
        if not given:
            raise InvalidCommand("name: give a name, an email or both to correct")
        in_force = {"name": state.name_ct, "email": state.email_ct}
        # Without a comparer, equal ciphertexts mean equal values (tests, deterministic ciphers).
        equal = same or (lambda name, ciphertext: bool(f[f"{name}_ct"] == ciphertext))
        if all(equal(name, in_force[name]) for name in given):
            raise RuleViolation(f"{', '.join(given)}: every given value equals the one in force at "
                                f"{format_instant(f['occurred_at'])}; nothing to correct")
        return {"name_ct": f.get("name_ct"), "email_ct": f.get("email_ct")}
    course_id, course = f["course_id"], ref.course(f["course_id"])
    if kind == "ProgressRecorded":  # a percent not above the current one: accepted, records nothing
        return None if f["percent"] <= state.enrolments[course_id].progress else {"course_id": course_id, "percent": f["percent"]}
    if kind == "AssessmentAttempted":
        assert course is not None and course.assessment is not None  # _breach checked them
        score = float(f["score"])
        return {"course_id": course_id, "score": score, "passed": score >= course.assessment["pass_mark"],
                "attempt": state.enrolments[course_id].attempts + 1}
    if kind == "CourseCompleted":
        assert course is not None
        return {"course_id": course_id, "duration_hours": course.duration_hours, "competencies": list(course.competencies)}
    return {"course_id": course_id}


def retracted_by(events: Iterable[Event], known_at: datetime | None = None) -> dict[int, int]:
    """{retracted version: version of its retraction}, over retractions recorded by ``known_at``."""
    return {version: e["version"] for e in events
            if e["type"] == RETRACTION and (known_at is None or instant(e, "recorded_at") <= known_at)
            for version in e["versions"]}


def business_history(events: Iterable[Event], known_at: datetime | None = None) -> list[Event]:
    """The business history as the ledger knew it at ``known_at`` (None: all recorded)."""
    known = [e for e in events if known_at is None or instant(e, "recorded_at") <= known_at]
    gone = retracted_by(known)
    kept = [e for e in known if e["type"] != RETRACTION and e["version"] not in gone]
    return sorted(kept, key=lambda e: (instant(e), e["version"]))


def late_versions(events: Iterable[Event]) -> set[int]:
    """Versions occurring before an event of a lower version (retractions count on neither side)."""
    kept = sorted((e for e in events if e["type"] != RETRACTION), key=lambda e: int(e["version"]))
    times = [instant(e) for e in kept]
    return {e["version"] for e, at, before in zip(kept[1:], times[1:], accumulate(times, max), strict=False) if at < before}


def fold(events: Sequence[Event], as_of: datetime | None = None, known_at: datetime | None = None) -> OfficerState:
    """The officer as the ledger knew it at ``known_at``, up to business time ``as_of``."""
    history = business_history(events, known_at)
    if as_of is not None:
        history = [e for e in history if instant(e) <= as_of]
    return replay(OfficerState(events[0]["officer_id"] if events else ""), history)


def describe_event(event: Event) -> str:
    """``version 9 (AssessmentAttempted K1)``: how errors name an event."""
    subject = event.get("course_id") or event.get("org_id")
    return f"version {event['version']} ({event['type']}{'' if subject is None else ' ' + subject})"


def first_invalid(state: OfficerState, events: Iterable[Event], ref: Reference) -> tuple[Event, str] | None:
    """Replay ``events`` from ``state``: the first one ``check`` refuses and why, or None."""
    for event in events:
        if (why := check(state, event, ref)) is not None:
            return event, why
        state = evolve(state, event)
    return None


def is_late(state: OfficerState, at: datetime) -> bool:
    """Whether a command at ``at`` goes before the end of the history ``state`` ends."""
    return state.last_at is not None and at < state.last_at


def accept_at_end(state: OfficerState, command_type: str, fields: Mapping[str, Any], ref: Reference,
                  same_as_in_force: SameAsInForce | None = None) -> Body | None:
    """Decide a command that is not late on the end state alone: O(1), no events, no replay."""
    if is_late(state, fields["occurred_at"]):
        raise ValueError("a late command is inserted into the history: call accept(events, ...)")
    return decide(state, command_type, fields, ref, same_as_in_force)


def accept(events: Sequence[Event], command_type: str, fields: Mapping[str, Any], ref: Reference,
           same_as_in_force: SameAsInForce | None = None) -> Body | None:
    """Decide a command against all the officer's events, inserting it at its occurred_at."""
    if command_type == "retract":
        return decide_retract(events, fields, ref)
    history = business_history(events)
    start = OfficerState(fields["officer_id"])
    if not history or command_type == "register_officer" or any(e["type"] == "OfficerErased" for e in history):
        return decide(replay(start, history), command_type, fields, ref, same_as_in_force)  # nothing to insert into
    at: datetime = fields["occurred_at"]
    if at < instant(history[0]):  # the registration: nothing precedes it, nothing retracts it
        raise RuleViolation(f"occurred_at: {format_instant(at)} is before the officer's "
                            f"registration ({history[0]['occurred_at']})")
    cut = bisect.bisect_right(history, at, key=instant)
    state = replay(start, history[:cut])
    body = decide(state, command_type, fields, ref, same_as_in_force)
    if body is None or cut == len(history):
        return body
    if (broken := first_invalid(evolve(state, body), history[cut:], ref)) is not None:
        raise RuleViolation(f"occurred_at: inserted at {format_instant(at)} it would leave "
                            f"{describe_event(broken[0])} {broken[1]}")
    return body


def decide_retract(events: Sequence[Event], fields: Mapping[str, Any], ref: Reference) -> Body:
    """The EventsRetracted body of ``retract`` (the caller defaults occurred_at to now)."""
    versions, reason, ticket = fields.get("versions"), fields.get("reason"), fields.get("ticket")
    if not (isinstance(versions, list) and 1 <= len(versions) <= 100
            and all(type(v) is int for v in versions) and len(set(versions)) == len(versions)):
        raise InvalidCommand("versions: must be a list of 1..100 distinct integers")
    if reason not in REASONS:
        raise InvalidCommand(f"reason: must be one of {', '.join(REASONS)}")
    if ticket is not None:
        check_id(ticket, "ticket")
    officer_id, versions = fields["officer_id"], sorted(versions)
    if not events or any(e["type"] == "OfficerErased" for e in events):
        raise Breach("erased" if events else "unregistered", {"who": officer_id}).error()
    by_version, gone = {e["version"]: e for e in events}, retracted_by(events)
    for v in versions:
        why = ("does not exist" if v not in by_version else "is the registration" if v == 1
               else "is a retraction" if by_version[v]["type"] == RETRACTION
               else f"is already retracted by version {gone[v]}" if v in gone else None)
        if why is not None:
            raise RuleViolation(f"versions: version {v} {why}; it cannot be retracted")
    left = [e for e in business_history(events) if e["version"] not in versions]
    if (broken := first_invalid(OfficerState(officer_id), left, ref)) is not None:
        names = [describe_event(by_version[v]).removeprefix("version ") for v in versions]
        without = f"version {names[0]}" if len(names) == 1 else f"versions {', '.join(names[:-1])} and {names[-1]}"
        raise RuleViolation(f"versions: without {without}, {describe_event(broken[0])} {broken[1]}; "
                            "retract them together")
    return {"type": RETRACTION, "officer_id": officer_id, "versions": versions, "reason": reason,
            "ticket": ticket, "occurred_at": format_instant(fields["occurred_at"])}
