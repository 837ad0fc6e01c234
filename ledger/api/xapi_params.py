"""GET /xapi/statements: its query parameters checked and turned into ``ledger.xapi.query.Filters``."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger.api.xapi_http import XapiError
from ledger.xapi import privacy
from ledger.xapi.compat import agent_key
from ledger.xapi.query import Filters

QUERY_PARAMS = {"statementId", "voidedStatementId", "agent", "verb", "activity", "registration",
                "related_activities", "related_agents", "since", "until", "limit", "format", "attachments",
                "ascending", "cursor"}
SINGLE_ALLOWED = {"statementId", "voidedStatementId", "format", "attachments"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FORMATS = ("exact", "ids", "canonical")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def check_uuid(name: str, value: str) -> str:
    if not _UUID.match(value):
        raise XapiError(400, f"{name}: not a UUID")
    return value.lower()


def _bool(name: str, params: dict[str, str]) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise XapiError(400, f"{name}: true or false")
    return value == "true"


def instant_us(name: str, value: str) -> int:
    if not _INSTANT.match(value):
        raise XapiError(400, f"{name}: not an ISO 8601 timestamp with a time zone")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise XapiError(400, f"{name}: not an ISO 8601 timestamp") from None
    return (parsed - _EPOCH) // timedelta(microseconds=1)


def agent_ref_of(value: str) -> str:
    try:
        agent = json.loads(value)
    except ValueError:
        raise XapiError(400, "agent: not JSON") from None
    if not isinstance(agent, dict):
        raise XapiError(400, "agent: an Agent or identified Group object")
    identifiers = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in agent]
    if len(identifiers) != 1:
        raise XapiError(400, "agent: exactly one inverse functional identifier")
    key = agent_key(agent)
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


def filters(params: dict[str, str], writer: str | None) -> Filters:
    """The filters of a GET statements without a statement id."""
    values: dict[str, Any] = {"writer": writer}
    if "agent" in params:
        values["agent"] = agent_ref_of(params["agent"])
    if "verb" in params:
        values["verb"] = params["verb"]
    if "activity" in params:
        values["activity"] = params["activity"]
    if "registration" in params:
        values["registration"] = check_uuid("registration", params["registration"])
    values["related_activities"] = _bool("related_activities", params)
    values["related_agents"] = _bool("related_agents", params)
    values["ascending"] = _bool("ascending", params)
    if "since" in params:
        values["since_us"] = instant_us("since", params["since"])
    if "until" in params:
        values["until_us"] = instant_us("until", params["until"])
    if "limit" in params:
        limit = params["limit"]
        if not (limit.isascii() and limit.isdigit()) or len(limit) > 9:
            raise XapiError(400, "limit: a non-negative integer")
        values["limit"] = int(limit)
    if "cursor" in params:
        cursor = params["cursor"]
        if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
            raise XapiError(400, "cursor: not one this LRS gave")
        values["cursor"] = int(cursor)
    return Filters(**values)
