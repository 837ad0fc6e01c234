"""The public shape of events: what history shows, projections fold and Kafka carries.

Each stored domain event becomes a plain dict with ``type`` (the contract's event
name), ``version`` (per aggregate), ``recorded_at`` and the event's own fields.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol

OFFICER_EVENTS = (
    "OfficerRegistered",
    "OfficerTransferred",
    "CourseEnrolled",
    "ProgressRecorded",
    "AssessmentAttempted",
    "CourseCompleted",
    "CourseWithdrawn",
    "OfficerErased",
    "OfficerDetailsCorrected",
    "EventsRetracted",
)
REFERENCE_EVENTS = ("OrganisationDefined", "CompetencyDefined", "PostDefined", "CoursePublished",
                    "CapacityPlanDeclared")
# The xAPI Learning Record Store's statements (ledger.xapi.statement), on <prefix>.xapi.
XAPI_EVENTS = ("StatementStored",)

# A FRAC revision is a second PostDefined for the same post; inside the aggregate it
# needs its own class, so its class name differs from its public name.
_PUBLIC_NAMES = {"PostRevised": "PostDefined", "CapacityPlanRevised": "CapacityPlanDeclared"}
_HIDDEN = ("originator_id", "originator_version", "timestamp", "originator_topic")


def public_type(event: object) -> str:
    """The contract's name for a domain event."""
    name = type(event).__name__
    return _PUBLIC_NAMES.get(name, name)


def to_public(event: DomainEventProtocol[Any]) -> dict[str, Any]:
    """A domain event as the contract's plain dict."""
    body = {k: v for k, v in event.__dict__.items() if k not in _HIDDEN}
    return {
        "type": public_type(event),
        "version": event.originator_version,
        "recorded_at": event.timestamp.isoformat(),  # type: ignore[attr-defined]
        **body,
    }


def is_officer_event(public: dict[str, Any]) -> bool:
    return public["type"] in OFFICER_EVENTS


_REFERENCE_KEYS = ("post_id", "course_id", "competency_id", "org_id")


def reference_key(public: dict[str, Any]) -> str | None:
    """A reference event's business key: its message key on the reference topic, and the
    id ``ledger dead-letters retry`` finds its entity by (a plan's is ``ministry:fy``)."""
    if public["type"] == "CapacityPlanDeclared":  # one plan per ministry and financial year
        return f"{public['ministry_id']}:{public['fy']}"
    for field in _REFERENCE_KEYS:
        if public.get(field):
            return str(public[field])
    return None


def reference_entity(public: dict[str, Any]) -> str | None:
    """The reference entity an event versions: its public type and key (a post and a
    course may share an id; a FRAC revision has its definition's public type)."""
    key = reference_key(public)
    return None if key is None else f"{public['type']}:{key}"
