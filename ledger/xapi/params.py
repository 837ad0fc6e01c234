"""Query and document parameters checked as their statement counterparts are.

xAPI 1.0.3 Data 2.2.s4.b4: "The LRS MUST validate parameter values to the same
standards required for values of the same types in Statements" (string parameter values
are not quoted as they are in JSON); used by Communication 2.1.3 (GET statements: agent,
verb, activity, registration, since, until, statementId, voidedStatementId) and 2.3-2.7
(document resources: agent, activityId, registration, stateId, profileId, since).
IEEE 9274.1.1-2023 4.1.6 keeps the rule. Each check raises ``XapiInvalid`` naming the
parameter.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ledger.xapi import agents, formats
from ledger.xapi.errors import XapiInvalid

_MAX_AGENT_JSON = 64 * 1024


def iri_param(name: str, value: str) -> str:
    """An absolute IRI (verb, activity, activityId)."""
    if not formats.is_iri(value):
        raise XapiInvalid(f"{name}: must be an absolute IRI with a scheme")
    return value


def uuid_param(name: str, value: str) -> str:
    """A UUID (statementId, voidedStatementId, registration), answered in lower case."""
    if not formats.is_uuid(value):
        raise XapiInvalid(f"{name}: must be a UUID (8-4-4-4-12 hex digits)")
    return value.lower()


def instant_param(name: str, value: str, version: str) -> datetime:
    """An ISO 8601 timestamp (since, until); 2.0.0 needs its time zone, 1.0.3 reads a
    time without one as UTC."""
    parsed = formats.parse_timestamp(value, need_zone=version == "2.0.0")
    if parsed is None:
        zone = " with its time zone" if version == "2.0.0" else ""
        raise XapiInvalid(f"{name}: must be an ISO 8601 timestamp{zone}")
    return parsed


def agent_param(name: str, value: str | dict[str, Any], *, group: bool = True) -> dict[str, Any]:
    """The JSON of an Agent (or, when ``group``, an identified Group) with exactly one
    inverse functional identifier, checked as in a statement; the parsed object."""
    found: object = value
    if isinstance(value, str):
        if len(value) > _MAX_AGENT_JSON:
            raise XapiInvalid(f"{name}: too long for an Agent")
        try:
            found = json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise XapiInvalid(f"{name}: must be the JSON of an Agent") from None
    if not isinstance(found, dict):
        raise XapiInvalid(f"{name}: must be the JSON of an Agent")
    if found.get("objectType") == "Group":
        if not group:
            raise XapiInvalid(f"{name}: must be an Agent, not a Group")
        agents.group(found, name)
        if not any(key in found for key in agents.IFIS):
            raise XapiInvalid(f"{name}: an anonymous Group cannot be looked up; use an identified one")
    else:
        agents.agent(found, name)
    return found


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def id_param(name: str, value: str) -> str:
    """A document id (stateId, profileId): any non-empty text (Communication 2.3-2.7),
    without lone surrogates."""
    if not value:
        raise XapiInvalid(f"{name}: must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise XapiInvalid(f"{name}: must be Unicode text") from None
    return value
