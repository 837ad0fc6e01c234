"""Credentials as a pure function of events: what each one says, before it is signed.

Everything here is derived from the events alone (plus the issuer's profile and each
credential's status list entry, itself assigned in log order): ids come from event ids and
business ids (uuid5), the subject's salt from the registration's event id, times from
``occurred_at``. The same events give the same documents, in the
same key order, so the same signed bytes. The subject is a salted hash of the officer
id: no name, email or raw officer id appears anywhere, ids included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from ledger.credentials.contexts import ACHIEVEMENT_CONTEXT, CLR_CONTEXT
from ledger.domain.history import business_history
from ledger.domain.values import parse_instant

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:igot-karmayogi:learning-record-ledger:credentials")
FRAMEWORK = "FRAC (Framework of Roles, Activities and Competencies)"
CLR_NAME = "Comprehensive Learner Record"


def urn(kind: str, *parts: str) -> str:
    """A stable ``urn:uuid:`` for ``kind`` and the ids it is made from."""
    return f"urn:uuid:{uuid5(_NAMESPACE, kind + ':' + chr(31).join(parts))}"


def utc_text(instant: str) -> str:
    """An event's instant as an xsd:dateTimeStamp in UTC (``...Z``)."""
    return parse_instant(instant).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def decimal_text(number: float) -> str:
    """A score as a plain decimal string: 75.0 -> "75", 72.5 -> "72.5"."""
    text = format(Decimal(repr(float(number))).normalize(), "f")
    return text


def number(value: float) -> int | float:
    """A JSON number that every JSON-LD processor turns into the same literal (4, not 4.0)."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class Completion:
    """One completed course of an officer, with the score that passed its assessment."""

    event_id: str
    course_id: str
    completed_at: str
    score: float | None


@dataclass(frozen=True)
class OfficerFacts:
    """What an officer's events say that credentials need."""

    officer_id: str
    registration_id: str
    erased: bool
    completions: list[Completion]


def officer_facts(officer_id: str, events: Iterable[Mapping[str, Any]]) -> OfficerFacts | None:
    """Fold an officer's business history (None when never registered).

    ``events``: all of the officer's public events. Retracted events and the retractions
    themselves are left out and late facts take their place by ``occurred_at``
    (:func:`ledger.domain.history.business_history`), so a retracted completion has no
    credential and a late one has, in its place among the others.
    """
    registration: str | None = None
    erased = False
    passing: dict[str, float | None] = {}
    done: list[Completion] = []
    for event in business_history(list(events)):
        kind = event["type"]
        if kind == "OfficerRegistered":
            registration = str(event["event_id"])
        elif kind == "CourseEnrolled":
            passing[event["course_id"]] = None  # a new enrolment starts afresh
        elif kind == "AssessmentAttempted" and event["passed"]:
            passing[event["course_id"]] = float(event["score"])
        elif kind == "CourseCompleted":
            course = event["course_id"]
            done.append(Completion(str(event["event_id"]), course, event["occurred_at"], passing.get(course)))
        elif kind == "OfficerErased":
            erased = True
    if registration is None:
        return None
    return OfficerFacts(officer_id, registration, erased, done)


def identity(facts: OfficerFacts) -> dict[str, Any]:
    """The subject: ``sha256$hex(sha256(officer_id + salt))``, the salt derived from the events."""
    salt = hashlib.sha256(f"credential-salt:{facts.registration_id}".encode()).hexdigest()[:32]
    digest = hashlib.sha256((facts.officer_id + salt).encode("utf-8")).hexdigest()
    return {
        "type": "IdentityObject",
        "hashed": True,
        "identityType": "identifier",
        "identityHash": f"sha256${digest}",
        "salt": salt,
    }


def achievement(course: Mapping[str, Any], competencies: Callable[[str], Mapping[str, Any]]) -> dict[str, Any]:
    """The course as an Open Badges Achievement (the same for every officer who completes it)."""
    course_id, title, provider = course["course_id"], course["title"], course["provider"]
    hours = number(course["duration_hours"])
    assessment = course.get("assessment")
    narrative = f"Complete every part of the course {title!r} (progress 100%)"
    if assessment is not None:
        narrative += f" and pass its assessment with a score of at least {assessment['pass_mark']} out of 100"
    out: dict[str, Any] = {
        "id": urn("Achievement", course_id),
        "type": ["Achievement"],
        "achievementType": "Course",
        "name": title,
        "description": f"{title}: a course of {hours} learning hours by {provider}.",
        "criteria": {"narrative": narrative + "."},
        "creator": {"id": urn("Provider", provider), "type": ["Profile"], "name": provider},
        "creditsAvailable": hours,
        "humanCode": course_id,
    }
    alignments = []
    for need in course.get("competencies") or []:
        cid, level = need["competency_id"], need["level"]
        competency = competencies(cid)
        name = competency["name"]
        alignments.append({
            "type": ["Alignment"],
            "targetCode": cid,
            "targetName": name,
            "targetDescription": f"Proficiency level {level} of 5 in {name} ({competency['kind']} competency)",
            "targetFramework": FRAMEWORK,
            "targetUrl": f"urn:igot-karmayogi:frac:competency:{cid}",
        })
    if alignments:
        out["alignment"] = alignments
    if assessment is not None:
        out["resultDescription"] = [{
            "id": urn("ResultDescription", course_id),
            "type": ["ResultDescription"],
            "name": "Assessment score",
            "resultType": "Percent",
            "requiredValue": str(assessment["pass_mark"]),
            "valueMin": "0",
            "valueMax": "100",
        }]
    return out


def achievement_credential(
    facts: OfficerFacts,
    completion: Completion,
    issuer: Mapping[str, Any],
    course: Mapping[str, Any],
    competencies: Callable[[str], Mapping[str, Any]],
    *,
    status: Mapping[str, Any],
) -> dict[str, Any]:
    """One OB 3.0 AchievementCredential for one completion (unsigned), with its ``credentialStatus``."""
    subject: dict[str, Any] = {
        "type": ["AchievementSubject"],
        "identifier": [identity(facts)],
        "achievement": achievement(course, competencies),
    }
    if course.get("assessment") is not None and completion.score is not None:
        subject["result"] = [{"type": ["Result"], "value": decimal_text(completion.score)}]
    return {
        "@context": list(ACHIEVEMENT_CONTEXT),
        "id": urn("AchievementCredential", issuer["id"], completion.event_id),
        "type": ["VerifiableCredential", "AchievementCredential"],
        "issuer": dict(issuer),
        "validFrom": utc_text(completion.completed_at),
        "name": course["title"],
        "credentialStatus": dict(status),
        "credentialSubject": subject,
    }


def clr_credential(facts: OfficerFacts, issuer: Mapping[str, Any], signed: list[dict[str, Any]], *,
                   created_by: str, status: Mapping[str, Any]) -> dict[str, Any]:
    """The officer's CLR 2.0 ClrCredential holding their signed AchievementCredentials (unsigned).

    A new one is made each time the set of current completions changes: ``created_by`` is
    the id of the event that changed it (a completion, or a retraction of one), so each has
    an id and a ``credentialStatus`` of its own.
    """
    latest = max((c["validFrom"] for c in signed), key=parse_instant)
    return {
        "@context": list(CLR_CONTEXT),
        "id": urn("ClrCredential", issuer["id"], created_by),
        "type": ["VerifiableCredential", "ClrCredential"],
        "issuer": dict(issuer),
        "validFrom": latest,
        "name": CLR_NAME,
        "credentialStatus": dict(status),
        "credentialSubject": {
            "type": ["ClrSubject"],
            "identifier": [identity(facts)],
            "verifiableCredential": signed,
        },
    }
