"""The Agents and Activities Resources: a Person object, an Activity's canonical definition.

xAPI 1.0.3 Communication 2.4 and 2.5; IEEE 9274.1.1-2023 4.1.6.3 and 4.1.6.4. Both are read
from the statements the reader may read (an ``lrs`` token: those it wrote; an auditor: all),
the most recent ``RECENT`` of them that name the agent or activity, so the cost of a lookup
does not grow with the activity's history.

- A Person gathers the names the agent went by in those statements (unsealed with the
  person's key; an erased person has none) and the agent's identifier. This LRS does not
  link different identifiers to one person, so a Person has the one identifier asked for.
- An Activity's definition is the fold of the definitions those statements gave it, oldest
  first: a later statement's properties replace earlier ones, except the language maps
  (``name``, ``description``) and ``extensions``, which are merged key by key, so two
  statements in two languages give both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from ledger.store.db import Database
from ledger.xapi import privacy
from ledger.xapi.compat import agent_key

RECENT = 200
_MERGED = ("name", "description", "extensions")


def _docs(db: Database, table: str, column: str, value: str, writer: str | None) -> list[dict[str, Any]]:
    """The most recent ``RECENT`` statements (as stored) whose ``table`` row has ``column`` = value,
    oldest first: a walk down the table's (value, seq) key that stops after ``RECENT``."""
    recent = f"SELECT DISTINCT t.seq FROM {table} t"
    params: list[Any] = [value]
    if writer is not None:
        recent += " JOIN xapi_statements w ON w.seq = t.seq AND w.writer = ?"
        params.insert(0, writer)
    recent += f" WHERE t.{column} = ? ORDER BY t.seq DESC LIMIT {RECENT}"
    with db.reading() as c:
        c.execute(f"SELECT s.doc FROM xapi_statements s WHERE s.seq IN ({recent}) ORDER BY s.seq", params)
        rows = c.fetchall()
    return [json.loads(r[0]) for r in rows]


def person(db: Database, agent: dict[str, Any], writer: str | None,
           unseal: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> dict[str, Any]:
    """The Person object of ``agent`` (an Agent with an identifier)."""
    key = agent_key(agent)
    out: dict[str, Any] = {"objectType": "Person"}
    if key is None:
        return out
    names: list[str] = []
    for stmt in unseal(_docs(db, "xapi_agents", "agent", privacy.agent_ref(key), writer)):
        for found in _agents(stmt):
            name = found.get("name")
            if agent_key(found) == key and isinstance(name, str) and name not in names:
                names.append(name)
    if names:
        out["name"] = names
    for ifi in ("mbox", "mbox_sha1sum", "openid", "account"):
        if ifi in agent:
            out[ifi] = [agent[ifi]]
    return out


def _agents(stmt: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for container, slot, _ in privacy.agent_slots(stmt):
        found = container[slot]
        if isinstance(found, dict):
            yield found
            yield from privacy.members(found)


def activity(db: Database, activity_id: str, writer: str | None) -> dict[str, Any]:
    """The Activity object with its canonical definition (an id alone when none is known)."""
    definition: dict[str, Any] = {}
    for stmt in _docs(db, "xapi_activities", "activity_id", activity_id, writer):
        for found in _activities(stmt):
            if found.get("id") == activity_id and isinstance(found.get("definition"), dict):
                _fold(definition, found["definition"])
    out: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if definition:
        out["definition"] = definition
    return out


def _fold(into: dict[str, Any], definition: dict[str, Any]) -> None:
    for key, value in definition.items():
        if key in _MERGED and isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


def _activities(stmt: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for s in (stmt, stmt.get("object")):
        if not isinstance(s, dict):
            continue
        obj = s.get("object")
        if isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity":
            yield obj
        context = s.get("context")
        groups = context.get("contextActivities") if isinstance(context, dict) else None
        for group in groups.values() if isinstance(groups, dict) else []:
            for found in group if isinstance(group, list) else [group]:
                if isinstance(found, dict):
                    yield found
