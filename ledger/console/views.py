"""What each console page shows, gathered through the API's authorization (blocking: run on the thread pool).

Each function takes the signed-in principal, refuses exactly as the matching API
endpoint would (the same ``HTTPException``: 403, 404 alike for unknown and not
yours, 422), and returns plain data for a template.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import HTTPException

from ledger.api import access, auth
from ledger.api.auth import Principal
from ledger.api.deps import (
    ADMINISTER,
    READ_MINISTRIES,
    READ_OFFICERS,
    READ_STATUS,
    Rule,
    Services,
    apply_erasure,
    check_ministry_scope,
    readable_officer,
)
from ledger.console import charts, corrections, verification
from ledger.console.instants import instant_of, local_text, text_of
from ledger.domain.values import ERASURE_REASONS, IST, financial_year
from ledger.projections.record import fold
from ledger.read.audit import correction_actors

# The integrity page's own rule: verify has no API endpoint, and the issue gives it to auditors.
VERIFY = Rule(("auditor",), "verify the ledger's integrity")
# The erasure form's choices: each reason code with what it means (every code has one).
_REASON_LABELS = {
    "data_principal_request": "The officer asked for it (data principal's request)",
    "purpose_served": "The purpose is served: the data need no longer be kept",
    "legal_order": "An order of a court or another authority",
    "other": "Another reason (record the reference as the ticket)",
}
ERASURE_CHOICES = [(code, _REASON_LABELS[code]) for code in ERASURE_REASONS]
# How many access-log entries the officer page shows (newest first).
READERS_SHOWN = 200


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key in value:
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "course_id" in v for v in value):
        for v in value:
            _flatten({k: x for k, x in v.items() if k != "course_id"}, f"{prefix}[{v['course_id']}]", out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i + 1}]", out)
    else:
        out[prefix] = value


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each field of a learning record that differs between two versions of it: (field, before, after)."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(before or {}, "", a)
    _flatten(after or {}, "", b)
    return [{"field": k, "before": a.get(k), "after": b.get(k)} for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


def _records(officer_id: str, events: list[dict[str, Any]], decrypt: Any, current: dict[str, Any],
             controls: dict[str, str]) -> dict[str, Any]:
    """The record the controls ask for (now; as of T; as known at K; both) and, with "compare", what
    changed between the two business times, both as known at K. Refused as GET /officers/{id}/record."""
    as_of, known_at, compare = controls["as_of"], controls["known_at"], controls["compare"]
    then = instant_of(as_of, "as_of") if as_of else None
    known = instant_of(known_at, "known_at") if known_at else None
    other = instant_of(compare, "compare") if compare else None
    shown = current if then is None and known is None else fold(officer_id, events, decrypt, then, known)
    if known is not None and shown is None:  # the API's answer to ?known_at= before the registration was recorded
        raise HTTPException(404, f"officer {officer_id!r} was not registered as known at {known_at}")
    found: dict[str, Any] = {"record": shown, "known": known, "as_of_instant": text_of(then), "known_at_instant": text_of(known),
                             "known_at_local": local_text(known), "changes": None, "earlier": None, "later": None}
    if other is not None:  # what changed from the earlier of the two instants to the later ("now" when no as-of)
        earlier, later = (other, then) if then is None or other <= then else (then, other)
        found.update(changes=diff(fold(officer_id, events, decrypt, earlier, known),
                                  fold(officer_id, events, decrypt, later, known)),
                     earlier=text_of(earlier), later=text_of(later))
    return found


def officer_page(services: Services, who: Principal, officer_id: str, as_of: str, compare: str,
                 known_at: str = "") -> dict[str, Any]:
    """The officer page: record (now, as of, as known at), history, competencies, diff, and who read it (the
    officer and auditors; token names only for auditors, as GET /officers/{id}/access-log)."""
    READ_OFFICERS.check(who)
    found = readable_officer(officer_id, who, services)
    events = services.ledger.officer_events(officer_id)
    controls = {"as_of": as_of, "known_at": known_at, "compare": compare}
    shown = _records(officer_id, events, services.ledger.decrypter(officer_id), found.record, controls)
    history = services.audit.history(officer_id)
    profile = services.reads().competency_profile(officer_id)
    db = services.db()
    actors = correction_actors(db, officer_id) if who.role in corrections.SEES_ACTORS else None
    auth.log_access(db, who, officer_id, "console:officer")
    readers = None
    if who.role in access.READ_ACCESS_LOG.roles:  # an officer here is this officer: readable_officer said so
        readers = access.entries(db, officer_id, names=who.role == "auditor", limit=READERS_SHOWN)
    return {
        "officer_id": officer_id, "current": found.record, **controls, **shown,
        "timeline": corrections.timeline(history, who.role in corrections.PERSONAL_DATA_READERS),
        "corrections": corrections.panel(history, who.role, actors, shown["known"]), "profile": profile,
        "chart": charts.competency_chart(profile) if profile else None, "readers": readers,
    }


def integrity_page(services: Services, who: Principal) -> dict[str, Any]:
    """The integrity page: the latest verification (run in the background, see
    ``ledger.console.verification``), its checkpoint, and the status."""
    VERIFY.check(who)
    return {"verification": verification.state(services), "status": status_fragment(services, who)}


def request_verification(services: Services, who: Principal) -> bool:
    """An auditor asks for a fresh verification; whether one was started (else one is running)."""
    VERIFY.check(who)
    return verification.request_run(services)


def status_fragment(services: Services, who: Principal) -> dict[str, Any]:
    """What ``ledger status`` reports (GET /status's rule), with the dead letters themselves."""
    READ_STATUS.check(who)
    report = services.status.report()  # shared by every page polling it
    return {"report": report, "dead_letters": services.reads().dead_letters()[:100]}


def _fy_now() -> str:
    return financial_year(datetime.now(IST))


def _previous_fy(fy: str) -> str:
    start = int(fy[:4]) - 1
    return f"{start}-{(start + 1) % 100:02d}"


def ministry_page(services: Services, who: Principal, ministry_id: str) -> dict[str, Any]:
    """Headcount and yearly aggregates as charts; plans per year and the gap report."""
    READ_MINISTRIES.check(who)
    check_ministry_scope(who, ministry_id)
    reads = services.reads()
    found = reads.ministry(ministry_id)
    if found is None:
        raise HTTPException(404, f"ministry {ministry_id!r} is not in the read model")
    years = sorted(found["years"])
    rows = [(fy, [float(found["years"][fy]["enrolments"]), float(found["years"][fy]["completions"]),
                  float(found["years"][fy]["officers_completed"])]) for fy in years]
    activity = charts.bars("Enrolments, completions and officers completed per financial year",
                           "; ".join(f"{fy}: {int(v[0])} enrolments, {int(v[1])} completions, "
                                     f"{int(v[2])} officers completed" for fy, v in rows) or "no activity",
                           ["enrolments", "completions", "officers completed"], rows)
    hours = charts.bars("Learning hours per financial year",
                        "; ".join(f"{fy}: {found['years'][fy]['learning_hours']:g} hours" for fy in years)
                        or "no hours", ["learning hours"],
                        [(fy, [float(found["years"][fy]["learning_hours"])]) for fy in years])
    now = _fy_now()
    plans = []
    for fy in sorted(set(years) | {now, _previous_fy(now)}, reverse=True):
        plan = reads.plan(ministry_id, fy)
        if plan is not None:
            progress = charts.bars(
                f"Plan {fy}: officers who reached each target", "; ".join(
                    f"{t['competency_id']} level {t['level']}: {t['achieved']} of {t['officers']} "
                    f"({t['percent']}%)" for t in plan["targets"]) or "no targets",
                ["target", "achieved"],
                [(f"{t['competency_id']} ≥ {t['level']}", [float(t["officers"]), float(t["achieved"])])
                 for t in plan["targets"]])
            plans.append({"plan": plan, "chart": progress})
    return {"ministry": found, "activity": activity, "hours": hours, "plans": plans,
            "gaps": reads.gap_report(ministry_id)}


def gaps_csv(services: Services, who: Principal, ministry_id: str) -> str:
    """The gap report as CSV, as GET /ministries/{id}/gaps with ``Accept: text/csv`` answers it."""
    from ledger.projections.gaps import to_csv

    READ_MINISTRIES.check(who)
    check_ministry_scope(who, ministry_id)
    found = services.reads().gap_report(ministry_id)
    if found is None:
        raise HTTPException(404, f"ministry {ministry_id!r} is not in the read model")
    return to_csv([found])


def _erase_request(reason: str, ticket: str) -> Any:
    """The form's reason and ticket as POST /officers/{id}/erase takes them (an empty ticket: none), else 422."""
    from pydantic import ValidationError

    from ledger.api.body import validation_message
    from ledger.api.models import EraseRequest

    try:
        return EraseRequest(reason=reason, ticket=ticket or None)
    except ValidationError as exc:
        raise HTTPException(422, validation_message(exc.errors())) from None


def erase(services: Services, who: Principal, officer_id: str, reason: str, ticket: str = "") -> dict[str, Any]:
    """Erase as POST /officers/{id}/erase does (same checks, same answer)."""
    ADMINISTER.check(who)
    body = _erase_request(reason, ticket)
    return apply_erasure(services, officer_id, body.reason, body.ticket)


def erase_check(who: Principal, officer_id: str, reason: str, ticket: str = "") -> None:
    """Refuse, before the confirmation step, what the erasure itself would refuse without a lookup."""
    from ledger.domain.values import ID_PATTERN

    ADMINISTER.check(who)
    if ID_PATTERN.fullmatch(officer_id) is None:  # as apply_erasure answers it
        raise HTTPException(404, f"officer_id: officer {officer_id!r} is not registered")
    _erase_request(reason, ticket)
