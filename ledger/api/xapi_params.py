"""GET /xapi/statements: its query parameters checked and turned into ``ledger.xapi.query.Filters``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ledger.api.xapi_http import XapiError
from ledger.xapi import params, privacy
from ledger.xapi.compat import agent_key
from ledger.xapi.query import Filters

QUERY_PARAMS = {"statementId", "voidedStatementId", "agent", "verb", "activity", "registration",
                "related_activities", "related_agents", "since", "until", "limit", "format", "attachments",
                "ascending", "cursor"}
SINGLE_ALLOWED = {"statementId", "voidedStatementId", "format", "attachments"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FORMATS = ("exact", "ids", "canonical")


def check_uuid(name: str, value: str) -> str:
    return params.uuid_param(name, value)


def _bool(name: str, params: dict[str, str]) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise XapiError(400, f"{name}: true or false")
    return value == "true"


def instant_us(name: str, value: str, version: str) -> int:
    parsed = params.instant_param(name, value, version)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return (parsed - _EPOCH) // timedelta(microseconds=1)


def agent_ref_of(value: str) -> str:
    """The index key of the ``agent`` parameter (an Agent or identified Group, checked as in a statement)."""
    key = agent_key(params.agent_param("agent", value))
    if key is None:
        raise XapiError(400, "agent: no inverse functional identifier")
    return privacy.agent_ref(key)


def common(params: dict[str, str]) -> tuple[str, bool]:
    """``format`` and ``attachments`` (allowed with any GET)."""
    fmt = params.get("format", "exact")
    if fmt not in FORMATS:
        raise XapiError(400, f"format: one of {', '.join(FORMATS)}")
    return fmt, _bool("attachments", params)


def check_names(params: dict[str, str]) -> None:
    unknown = sorted(set(params) - QUERY_PARAMS)
    if unknown:
        raise XapiError(400, f"{unknown[0]}: not a parameter of GET statements")
    if "statementId" in params and "voidedStatementId" in params:
        raise XapiError(400, "statementId and voidedStatementId: at most one of them")
    if ("statementId" in params or "voidedStatementId" in params) and set(params) - SINGLE_ALLOWED:
        extra = sorted(set(params) - SINGLE_ALLOWED)[0]
        raise XapiError(400, f"{extra}: not allowed with statementId or voidedStatementId")


def filters(given: dict[str, str], writer: str | None, version: str) -> Filters:
    """The filters of a GET statements without a statement id."""
    values: dict[str, Any] = {"writer": writer}
    if "agent" in given:
        values["agent"] = agent_ref_of(given["agent"])
    if "verb" in given:
        values["verb"] = params.iri_param("verb", given["verb"])
    if "activity" in given:
        values["activity"] = params.iri_param("activity", given["activity"])
    if "registration" in given:
        values["registration"] = check_uuid("registration", given["registration"])
    values["related_activities"] = _bool("related_activities", given)
    values["related_agents"] = _bool("related_agents", given)
    values["ascending"] = _bool("ascending", given)
    if "since" in given:
        values["since_us"] = instant_us("since", given["since"], version)
    if "until" in given:
        values["until_us"] = instant_us("until", given["until"], version)
    if "limit" in given:
        limit = given["limit"]
        if not (limit.isascii() and limit.isdigit()) or len(limit) > 9:
            raise XapiError(400, "limit: a non-negative integer")
        values["limit"] = int(limit)
    if "cursor" in given:
        cursor = given["cursor"]
        if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
            raise XapiError(400, "cursor: not one this LRS gave")
        values["cursor"] = int(cursor)
    return Filters(**values)
