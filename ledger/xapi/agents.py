"""Actors: Agents, Groups, their identifiers and accounts.

xAPI 1.0.3 Data 2.4.2 (2.4.2.1 Agent, 2.4.2.2 Group, 2.4.2.3 Inverse Functional
Identifier, 2.4.2.4 Account), 2.4.9 (Authority); IEEE 9274.1.1-2023 4.2.2.1 (Actor) and
4.2.4.2 (Authority), 4.2.2.5 (contextAgents and contextGroups, xAPI 2.0 only).
"""

from __future__ import annotations

from typing import Any

from ledger.xapi import formats
from ledger.xapi.checks import array, child, fail, iri, item, keys, obj, string

IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_AGENT_KEYS = ("objectType", "name", *IFIS)
_GROUP_KEYS = ("objectType", "name", "member", *IFIS)


def _ifi(value: dict[str, Any], path: str) -> str | None:
    """Check the identifiers present and answer which one there is (at most one allowed)."""
    present = [key for key in IFIS if key in value]
    if len(present) > 1:
        fail(path, f"must have exactly one inverse functional identifier, has {', '.join(present)}")
    if not present:
        return None
    key = present[0]
    where = child(path, key)
    found = value[key]
    if key == "mbox":
        if not formats.is_mailto(string(found, where)):
            fail(where, 'must be a "mailto:" IRI of one mailbox')
    elif key == "mbox_sha1sum":
        if not formats.is_sha1_hex(string(found, where)):
            fail(where, "must be the hex SHA-1 digest of a mailto IRI (40 hex digits)")
    elif key == "openid":
        iri(found, where)
    else:
        account(found, where)
    return key


def account(value: object, path: str) -> None:
    """An account: homePage (an IRL) and name, both required, nothing else."""
    found = obj(value, path)
    keys(found, path, ("homePage", "name"), ("homePage", "name"))
    iri(found["homePage"], child(path, "homePage"))
    string(found["name"], child(path, "name"))


def agent(value: object, path: str, *, object_type_required: bool = False) -> None:
    """An Agent: objectType "Agent" (when present), an optional name, exactly one IFI."""
    found = obj(value, path)
    if "objectType" in found:
        if found["objectType"] != "Agent":
            fail(child(path, "objectType"), 'must be "Agent"')
    elif object_type_required:
        fail(child(path, "objectType"), 'is required ("Agent")')
    keys(found, path, _AGENT_KEYS)
    if "name" in found:
        string(found["name"], child(path, "name"))
    if _ifi(found, path) is None:
        fail(path, "an Agent must have exactly one inverse functional identifier "
                   "(mbox, mbox_sha1sum, openid or account)")


def group(value: object, path: str) -> None:
    """A Group: objectType "Group"; identified (one IFI, members optional) or anonymous
    (no IFI, members required); members are Agents, never Groups."""
    found = obj(value, path)
    if found.get("objectType") != "Group":
        fail(child(path, "objectType"), 'must be "Group"')
    keys(found, path, _GROUP_KEYS)
    if "name" in found:
        string(found["name"], child(path, "name"))
    identified = _ifi(found, path) is not None
    if "member" in found:
        members = array(found["member"], child(path, "member"))
        for index, member in enumerate(members):
            where = item(child(path, "member"), index)
            if isinstance(member, dict) and member.get("objectType") == "Group":
                fail(child(where, "objectType"), "a Group's members must be Agents, not Groups")
            agent(member, where)
    elif not identified:
        fail(child(path, "member"), "is required in an anonymous Group (one without an identifier)")


def actor(value: object, path: str) -> None:
    """An Agent (objectType "Agent" or absent) or a Group (objectType "Group")."""
    found = obj(value, path)
    kind = found.get("objectType", "Agent")
    if kind == "Group":
        group(found, path)
    elif kind == "Agent":
        agent(found, path)
    else:
        fail(child(path, "objectType"), 'must be "Agent" or "Group"')


def authority(value: object, path: str) -> None:
    """An Agent, or (three-legged OAuth) an anonymous Group of exactly two Agents
    (Data 2.4.9.s3.b1, 2.4.9.s7)."""
    found = obj(value, path)
    actor(found, path)
    if found.get("objectType") == "Group":
        if any(key in found for key in IFIS):
            fail(path, "an authority Group must be anonymous (the OAuth consumer and user)")
        members = found.get("member")
        if not isinstance(members, list) or len(members) != 2:
            fail(child(path, "member"), "an authority Group must have exactly two Agents "
                                        "(the OAuth consumer and the user)")


def context_agents(value: object, path: str) -> None:
    """xAPI 2.0 contextAgents: contextAgent objects, each an Agent with relevant types."""
    for index, entry in enumerate(array(value, path)):
        where = item(path, index)
        found = obj(entry, where)
        keys(found, where, ("objectType", "agent", "relevantTypes"), ("objectType", "agent"))
        if found["objectType"] != "contextAgent":
            fail(child(where, "objectType"), 'must be "contextAgent"')
        agent(found["agent"], child(where, "agent"))
        if "relevantTypes" in found:
            _relevant_types(found["relevantTypes"], child(where, "relevantTypes"))


def context_groups(value: object, path: str) -> None:
    """xAPI 2.0 contextGroups: contextGroup objects, each a Group with relevant types."""
    for index, entry in enumerate(array(value, path)):
        where = item(path, index)
        found = obj(entry, where)
        keys(found, where, ("objectType", "group", "relevantTypes"), ("objectType", "group"))
        if found["objectType"] != "contextGroup":
            fail(child(where, "objectType"), 'must be "contextGroup"')
        group(found["group"], child(where, "group"))
        if "relevantTypes" in found:
            _relevant_types(found["relevantTypes"], child(where, "relevantTypes"))


def _relevant_types(value: object, path: str) -> None:
    for index, entry in enumerate(array(value, path, non_empty=True)):
        iri(entry, item(path, index))
