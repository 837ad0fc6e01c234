"""The retract and correct forms: what the reviewer typed, the command it makes, and sending it.

A form's values become exactly the command ``POST /commands`` would take, checked by the
command parser before the confirmation step (a 422 names the field, as the API's answer
does). Once confirmed, the command goes through the API's group committer with the
session's sender (its token's role and name), so the ledger applies the same per-command
role rules (``ledger.write.unit.check_sender``) and records who made the correction beside
it (``correction_actors``), as for any API client. The confirmation page carries a fresh
``command_id``: sending the same confirmation twice is answered ``duplicate``, never
applied twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi import HTTPException

from ledger.api.auth import Principal
from ledger.api.body import safe_text
from ledger.api.deps import Rule, Services
from ledger.console.corrections import RETRACTION_CHOICES
from ledger.console.instants import instant_of
from ledger.domain.errors import LedgerError
from ledger.domain.values import ID_PATTERN
from ledger.write.application import Outcome
from ledger.write.commands import Sender, parse_command
from ledger.write.unit import CORRECTORS

# Who may open these forms: the roles whose tokens may send corrections (DOMAIN.md "Who may correct").
CORRECT = Rule(CORRECTORS, "correct officers' records")
_SEPARATORS = re.compile(r"[\s,]+")
_MAX_DIGITS = 19  # more than any version can have (the parser's bound is 2**62)


@dataclass(frozen=True)
class Kind:
    """One of the two forms: its command type, its fields, its templates and what it is called."""

    name: str
    type: str
    fields: tuple[str, ...]
    noun: str

    @property
    def form(self) -> str:
        return f"{self.name}.html"

    @property
    def confirm(self) -> str:
        return f"{self.name}_confirm.html"

    def values(self, form: dict[str, str]) -> dict[str, str]:
        """The form's fields as typed, trimmed ("" for one not sent); any other field is ignored."""
        return {f: form.get(f, "").strip() for f in self.fields}


RETRACT = Kind("retract", "retract", ("officer_id", "versions", "reason", "ticket"), "retraction")
CORRECT_DETAILS = Kind("correct", "correct_officer_details", ("officer_id", "name", "email", "occurred_at"),
                       "correction")
REASONS = RETRACTION_CHOICES


def versions_of(text: str) -> list[int]:
    """``"5, 6"`` as ``[5, 6]`` (commas and/or spaces between), else 422 naming ``versions``."""
    tokens = [t for t in _SEPARATORS.split(text) if t]
    if not tokens:
        raise HTTPException(422, "versions: give the versions to retract, e.g. 5, 6")
    for token in tokens:
        if not (token.isascii() and token.isdigit()):
            raise HTTPException(422, "versions: list version numbers separated by commas, e.g. 5, 6")
        if len(token) > _MAX_DIGITS:
            raise HTTPException(422, f"versions: a version number has at most {_MAX_DIGITS} digits")
    return [int(t) for t in tokens]


def command_of(kind: Kind, values: dict[str, str], command_id: str = "") -> dict[str, Any]:
    """The command the form's values make, checked as POST /commands checks it (else 422).

    A correction without ``occurred_at`` takes effect from the registration: that instant is
    filled in when it is sent (``from_registration``)."""
    command: dict[str, Any] = {"type": kind.type, "officer_id": values["officer_id"]}
    if kind is RETRACT:
        command.update(versions=versions_of(values["versions"]), reason=values["reason"])
        if values["ticket"]:
            command["ticket"] = values["ticket"]
    else:
        command.update({f: values[f] for f in ("name", "email") if values[f]})
        if values["occurred_at"]:
            command["occurred_at"] = instant_of(values["occurred_at"], "occurred_at", day_starts=True).isoformat()
    if command_id:
        command["command_id"] = command_id
    placeholder = {} if "occurred_at" in command or kind is RETRACT else {"occurred_at": _now()}
    try:
        parse_command({**command, **placeholder})
    except LedgerError as exc:
        raise HTTPException(422, safe_text(str(exc))) from None
    return command


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def new_command_id() -> str:
    """The idempotency key a confirmation page carries (so a second send changes nothing)."""
    return f"console-{secrets.token_urlsafe(18)}"


def from_registration(services: Services, command: dict[str, Any]) -> dict[str, Any]:
    """A detail correction without ``occurred_at``, given the registration's (blocking: a read). The
    instant is not shown to the reviewer; an officer who is not registered gets now, which the
    ledger answers with its own refusal."""
    if command["type"] != CORRECT_DETAILS.type or "occurred_at" in command:
        return command
    officer_id = command["officer_id"]
    events = services.ledger.officer_events(officer_id) if ID_PATTERN.fullmatch(officer_id) else []
    return {**command, "occurred_at": events[0]["occurred_at"] if events else _now()}


async def submit(services: Services, who: Principal, command: dict[str, Any]) -> Outcome:
    """Send ``command`` through the group committer as ``who``; its outcome (503 if the store is down)."""
    CORRECT.check(who)
    future = services.committer.submit([json.dumps(command)], Sender(who.role, who.name))
    try:
        outcomes = await asyncio.wrap_future(future)
    except Exception as exc:
        raise HTTPException(503, f"the event store is unavailable: {type(exc).__name__}") from None
    return outcomes[0]
