"""Statements that report learning in this ledger become its commands (DOMAIN.md "xAPI statements").

A statement maps when its actor is an officer of this ledger (an ``account`` with ``homePage``
= the officer homepage and ``name`` = a registered officer id) and its object is
``<activity base>/<course_id>`` of a published course:

- ``registered`` -> ``enrol``; ``completed`` -> ``complete_course``;
- ``progressed`` with the cmi5 progress extension -> ``record_progress``;
- ``passed`` / ``failed`` -> ``attempt_assessment``, the score on 0..100 from ``result.score``
  (``scaled``, or ``raw`` within ``min`` and ``max``);
- ``voided`` of a mapped statement -> ``retract`` of the officer events it produced, reason
  ``withdrawn_by_provider``, only when the same ``lrs`` token wrote both.

``occurred_at`` is the statement's ``timestamp`` (else ``stored``); the command id is
``xapi:<statement id>``. The commands run in the statement's own transaction
(``Ledger.apply_with``); one the ledger's rules refuse leaves the statement stored and listed
in ``xapi_unmapped`` with the rule it broke.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from ledger.config import Settings
from ledger.domain.errors import LedgerError
from ledger.domain.officer import Officer
from ledger.domain.reference import Course
from ledger.ops.metrics import XAPI_UNMAPPED
from ledger.write.commands import Sender, parse_command
from ledger.write.unit import ACCEPTED, REJECTED, UnitOfWork

VERBS = "http://adlnet.gov/expapi/verbs/"
PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
COMMANDS = {"registered": "enrol", "progressed": "record_progress", "passed": "attempt_assessment",
            "failed": "attempt_assessment", "completed": "complete_course", "voided": "retract"}


class Unmappable(LedgerError):
    """The statement maps to a command that cannot even be written (the rule in the message)."""


def _score(stmt: dict[str, Any]) -> float:
    result = stmt.get("result")
    score = result.get("score") if isinstance(result, dict) else None
    if isinstance(score, dict):
        if isinstance(score.get("scaled"), (int, float)):
            return round(float(score["scaled"]) * 100, 4)
        raw, low, high = score.get("raw"), score.get("min"), score.get("max")
        if isinstance(raw, (int, float)) and isinstance(low, (int, float)) and isinstance(high, (int, float)) \
                and high > low:
            return round((float(raw) - low) / (high - low) * 100, 4)
    raise Unmappable("result.score: scaled, or raw with min and max, is required to record an assessment")


def _progress(stmt: dict[str, Any]) -> Any:
    result = stmt.get("result")
    extensions = result.get("extensions") if isinstance(result, dict) else None
    if not isinstance(extensions, dict) or PROGRESS not in extensions:
        return None
    return extensions[PROGRESS]


def officer_and_course(stmt: dict[str, Any], settings: Settings) -> tuple[str, str] | None:
    actor, obj = stmt.get("actor"), stmt.get("object")
    account = actor.get("account") if isinstance(actor, dict) else None
    if not isinstance(account, dict) or account.get("homePage") != settings.officer_homepage:
        return None
    if actor.get("objectType", "Agent") != "Agent" or not isinstance(account.get("name"), str):  # type: ignore[union-attr]
        return None
    base = settings.course_activity_base + "/"
    if not isinstance(obj, dict) or obj.get("objectType", "Activity") != "Activity":
        return None
    target = obj.get("id")
    if not isinstance(target, str) or not target.startswith(base) or "/" in target[len(base):]:
        return None
    return account["name"], target[len(base):]


@dataclasses.dataclass
class Mapper:
    """Maps one request's statements inside the unit of work; collects the rows to write."""

    settings: Settings
    writer: str
    mapped_before: Callable[[str], tuple[str, str, list[int]] | None]  # statement id -> (writer, officer, versions)
    mapped: list[tuple[str, str, str, str]] = dataclasses.field(default_factory=list)
    unmapped: list[tuple[str, int, str, str, str, str, int]] = dataclasses.field(default_factory=list)

    def command_of(self, unit: UnitOfWork, stmt: dict[str, Any]) -> dict[str, Any] | None:
        verb = str(stmt["verb"]["id"])
        name = verb[len(VERBS):] if verb.startswith(VERBS) else ""
        if name not in COMMANDS:
            return None
        when = stmt.get("timestamp") or stmt["stored"]
        if name == "voided":
            target = str(stmt["object"].get("id", "")).lower()
            now = {sid: (w, o, json.loads(v)) for sid, w, o, v in self.mapped}.get(target)
            found = now or self.mapped_before(target)
            if found is None:
                return None
            writer, officer, versions = found
            if writer != self.writer:
                raise Unmappable(f"object.id: statement {target} was mapped from another lrs token's statement; "
                                 "only that token may void what it reported")
            return {"type": "retract", "officer_id": officer, "versions": versions,
                    "reason": "withdrawn_by_provider", "occurred_at": when}
        found_ids = officer_and_course(stmt, self.settings)
        if found_ids is None:
            return None
        officer, course = found_ids
        if unit.ledger.access(officer) is None or unit.get(Course, Course.create_id(course)) is None:
            return None  # not an officer of this ledger, or not a published course: nothing to map
        command: dict[str, Any] = {"type": COMMANDS[name], "officer_id": officer, "course_id": course,
                                   "occurred_at": when}
        if name == "progressed":
            progress = _progress(stmt)
            if progress is None:
                return None
            command["percent"] = progress
        elif name in ("passed", "failed"):
            command["score"] = _score(stmt)
        return command

    def apply(self, unit: UnitOfWork, stmt: dict[str, Any], seq: int, stored_us: int) -> None:
        """Map one statement: its command applied in ``unit``, or the rule it broke noted."""
        sid = str(stmt["id"]).lower()
        verb = str(stmt["verb"]["id"])
        try:
            body = self.command_of(unit, stmt)
            if body is None:
                return
            command = dataclasses.replace(parse_command({**body, "command_id": f"xapi:{sid}"}),
                                          sender=Sender("lrs", self.writer))
        except LedgerError as exc:
            self._unmapped(sid, seq, verb, COMMANDS.get(verb[len(VERBS):], "?"), str(exc), stored_us)
            return
        officer = unit.get(Officer, Officer.create_id(command.fields["officer_id"]))
        before = officer.version if officer is not None else 0
        outcome = unit.handle_all([(1, command)])[0]
        if outcome.status == REJECTED:
            self._unmapped(sid, seq, verb, command.type, outcome.error or "rejected", stored_us)
        elif outcome.status == ACCEPTED and command.type != "retract":
            after = unit.get(Officer, Officer.create_id(command.fields["officer_id"]))
            versions = list(range(before + 1, (after.version if after is not None else before) + 1))
            self.mapped.append((sid, self.writer, command.fields["officer_id"], json.dumps(versions)))

    def _unmapped(self, sid: str, seq: int, verb: str, command: str, rule: str, stored_us: int) -> None:
        XAPI_UNMAPPED.labels(verb[len(VERBS):] if verb.startswith(VERBS) else "other").inc()
        self.unmapped.append((sid, seq, self.writer, verb, command, rule, stored_us))
