"""The officer page's history as reviewers read it: the timeline with its marks, and the
Corrections panel (DOMAIN.md "Late facts, corrections and retractions").

Both are built from ``AuditReader.history`` (every event, retracted ones included, with
``retracted_by`` and ``late``). The panel lists the retractions (reason code, ticket, which
versions and what they were), the detail corrections (which fields and, to a role that may
read the officer's personal data, their values) and the late facts, each with its business
time and the time it was recorded; for auditors, who made each correction
(``correction_actors``: a token's role and name, or the command line).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ledger.api.deps import READ_OFFICERS
from ledger.console.instants import local_text
from ledger.domain.values import parse_instant
from ledger.store.receipts import Actor
from ledger.write.commands import RETRACTION_REASONS

RETRACTION, CORRECTION = "EventsRetracted", "OfficerDetailsCorrected"
PERSONAL = ("name", "email")
# The roles that read an officer's personal data (name, email) through the API: GET /officers/{id}/record.
PERSONAL_DATA_READERS = READ_OFFICERS.roles
# Who sees who made each correction (token names are staff identities), as the access log's names.
SEES_ACTORS = ("auditor",)
# The fields a timeline entry names, besides its type and times.
_DETAILS = ("name", "email", "org_id", "ministry_id", "post_id", "course_id", "percent", "score", "passed",
            "duration_hours", "versions", "reason", "ticket")
# What each retraction reason code means (every code of ledger.write.commands.RETRACTION_REASONS has one).
_REASON_LABELS = {
    "recorded_in_error": "Recorded in error",
    "duplicate": "A duplicate of another event",
    "wrong_officer": "Recorded for the wrong officer",
    "withdrawn_by_provider": "Withdrawn by the course provider",
    "other": "Another reason (record the reference as the ticket)",
}
RETRACTION_CHOICES = [(code, _REASON_LABELS[code]) for code in RETRACTION_REASONS]


def _shown(value: Any) -> Any:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else value


def entry(event: dict[str, Any], personal: bool) -> dict[str, Any]:
    """One event as the timeline shows it: type, version, both times, its details, its marks.
    Without ``personal``, a name or email is named but its value left out."""
    details = [(k, _shown(event[k]) if personal or k not in PERSONAL else "(not shown)")
               for k in _DETAILS if event.get(k) is not None]
    return {"type": event["type"], "version": event.get("version"), "occurred_at": event["occurred_at"],
            "recorded_at": event.get("recorded_at"), "details": details,
            "retracted_by": event.get("retracted_by"), "late": bool(event.get("late"))}


def timeline(history: list[dict[str, Any]], personal: bool) -> list[dict[str, Any]]:
    """Every event by business time (ties by version), retracted and late ones marked."""
    entries = [entry(e, personal) for e in history]
    entries.sort(key=lambda e: (parse_instant(e["occurred_at"]), e["version"] or 0))
    return entries


def _before(recorded_at: str) -> str | None:
    """The "as known at" control's value just before an event was recorded (to the millisecond)."""
    return local_text(parse_instant(recorded_at, "recorded_at") - timedelta(microseconds=1))


def _item(event: dict[str, Any], actors: dict[int, Actor] | None, known: datetime | None) -> dict[str, Any]:
    recorded = event["recorded_at"]
    actor = None if actors is None else actors.get(event["version"], Actor(event["officer_id"], 0, "", None))
    return {"version": event["version"], "occurred_at": event["occurred_at"], "recorded_at": recorded,
            "retracted_by": event.get("retracted_by"), "late": bool(event.get("late")),
            "known_before": _before(recorded),
            "unknown_then": known is not None and parse_instant(recorded, "recorded_at") > known,
            "actor": None if actor is None else {"role": actor.role or None, "token_name": actor.token_name}}


def panel(history: list[dict[str, Any]], who_role: str, actors: dict[int, Actor] | None,
          known: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    """The Corrections panel: retractions, detail corrections and late facts, in the order recorded.

    ``actors``: who made each correction, given only for auditors (None: not shown).
    ``known``: the page's "as known at" instant, to mark what was recorded after it.
    """
    personal = who_role in PERSONAL_DATA_READERS
    by_version = {e["version"]: e for e in history}
    found: dict[str, list[dict[str, Any]]] = {"retractions": [], "details": [], "late": []}
    for event in history:
        if event["type"] == RETRACTION:
            found["retractions"].append({
                **_item(event, actors, known), "reason": event["reason"],
                "reason_label": _REASON_LABELS.get(event["reason"], event["reason"]), "ticket": event.get("ticket"),
                "events": [entry(by_version[v], personal) for v in sorted(event["versions"]) if v in by_version]})
        elif event["type"] == CORRECTION:
            found["details"].append({
                **_item(event, actors, known),
                "fields": [{"field": f, "value": event[f] if personal else None, "shown": personal}
                           for f in PERSONAL if f in event]})
        elif event.get("late"):
            found["late"].append({**_item(event, None, known), "late": False, "event": entry(event, personal)})
    return found
