"""A minimal statement check and shape helpers, until ``ledger.xapi.validate`` and
``ledger.xapi.shape`` (written on their own branch) take over.
"""

from __future__ import annotations

import json
from typing import Any

def agent_key(agent: Any) -> str | None:
    """The agent's inverse functional identifier as one string, or None (anonymous group)."""
    if not isinstance(agent, dict):
        return None
    if isinstance(agent.get("mbox"), str):
        return "mbox:" + agent["mbox"]
    if isinstance(agent.get("mbox_sha1sum"), str):
        return "mbox_sha1sum:" + agent["mbox_sha1sum"].lower()
    if isinstance(agent.get("openid"), str):
        return "openid:" + agent["openid"]
    account = agent.get("account")
    if isinstance(account, dict):
        return f"account:{account.get('homePage')}|{account.get('name')}"
    return None


_NOT_COMPARED = ("id", "stored", "authority", "version", "timestamp")


def same_statement(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two statements say the same (properties the LRS sets are not compared)."""
    def strip(s: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in s.items() if k not in _NOT_COMPARED}, sort_keys=True)
    return strip(a) == strip(b)


def formatted(stmt: dict[str, Any], fmt: str, languages: list[str]) -> dict[str, Any]:
    if fmt != "ids":
        return stmt
    out = dict(stmt)
    out["verb"] = {"id": stmt["verb"]["id"]}
    return out


def parse_accept_language(header: str | None) -> list[str]:
    return [part.split(";")[0].strip() for part in (header or "").split(",") if part.strip()]
