"""Personal data in statements, encrypted with a key per person (DOMAIN.md "xAPI statements").

Every agent a statement names (actor, an agent or group as object, authority, a context's
instructor and team, a group's members, the same inside a sub-statement) keeps only its
``objectType`` and ``member`` in the clear; its identifying fields (``name``, ``mbox``,
``mbox_sha1sum``, ``openid``, ``account``) become ``{"$p": person, "$c": ciphertext}``, sealed
(AES-256-GCM, :mod:`ledger.integrity.crypto`) with the person's key:

- an officer of this ledger (``account.homePage`` = the officer homepage, ``account.name`` an
  officer id with a data key) uses the officer's data key, so ``ledger erase`` of the officer
  makes their statements' personal data unreadable;
- anyone else gets a key of their own in ``xapi_person_keys``, under a person reference that
  is a SHA-256 of their identifier (never the identifier itself).

The query index keeps only such hashes of agent identifiers (``agent_ref``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from ledger.integrity import crypto

PERSONAL = ("name", "mbox", "mbox_sha1sum", "openid", "account")
OFFICER = "o:"
PERSON = "p:"
FIELD = "xapi-agent"
# What an agent whose key was destroyed reads as: an identifier that names nobody.
ERASED_NAME = "erased"


def clone(value: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object (orjson's round trip; the standard library's for what orjson
    cannot write, e.g. integers beyond 64 bits)."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError):
        copied = copy.deepcopy(value)
    return copied


def agent_ref(key: str) -> str:
    """The hashed form of an agent identifier (``shape.agent_key``) the index and keys use."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def agent_slots(stmt: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, bool]]:
    """Each agent dict of a statement as (container, key, main): ``main`` for the actor and an
    agent object, else False (authority, instructor, team, sub-statement agents)."""
    yield from _slots(stmt, main=True)
    authority = stmt.get("authority")
    if isinstance(authority, dict):
        yield stmt, "authority", False


def _slots(stmt: dict[str, Any], main: bool) -> Iterator[tuple[dict[str, Any], str, bool]]:
    if isinstance(stmt.get("actor"), dict):
        yield stmt, "actor", main
    obj = stmt.get("object")
    if isinstance(obj, dict):
        if obj.get("objectType") in ("Agent", "Group"):
            yield stmt, "object", main
        elif obj.get("objectType") == "SubStatement":
            yield from _slots(obj, main=False)
    context = stmt.get("context")
    if isinstance(context, dict):
        for key in ("instructor", "team"):
            if isinstance(context.get(key), dict):
                yield context, key, False
        for holder, key in (("contextAgents", "agent"), ("contextGroups", "group")):  # xAPI 2.0
            entries = context.get(holder)
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get(key), dict):
                    yield entry, key, False


def members(agent: dict[str, Any]) -> list[dict[str, Any]]:
    found = agent.get("member")
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def person_of(agent: dict[str, Any], key_of: Callable[[dict[str, Any]], str | None], homepage: str,
              fallback: Callable[[], str]) -> str:
    """The person whose key seals this agent: ``o:<officer id>`` or ``p:<hash>``."""
    account = agent.get("account")
    if (isinstance(account, dict) and account.get("homePage") == homepage and isinstance(account.get("name"), str)
            and "mbox" not in agent and "openid" not in agent and "mbox_sha1sum" not in agent):
        return OFFICER + str(account["name"])
    key = key_of(agent)
    return PERSON + agent_ref(key if key is not None else fallback())


def seal(stmt: dict[str, Any], persons: Callable[[dict[str, Any]], str], keys: dict[str, bytes]) -> dict[str, Any]:
    """A deep copy of ``stmt`` with every agent's personal fields sealed (``keys`` by person)."""
    out = clone(stmt)
    for container, key, _ in list(agent_slots(out)):
        container[key] = _seal_agent(container[key], persons, keys)
    return out


def _seal_agent(agent: dict[str, Any], persons: Callable[[dict[str, Any]], str], keys: dict[str, bytes]) -> dict[str, Any]:
    person = persons(agent)
    personal = {k: agent[k] for k in PERSONAL if k in agent}
    out = {k: v for k, v in agent.items() if k not in PERSONAL}
    if "member" in out and isinstance(out["member"], list):
        out["member"] = [_seal_agent(m, persons, keys) if isinstance(m, dict) else m for m in out["member"]]
    if personal:
        out["$p"] = person
        out["$c"] = crypto.encrypt(keys[person], person, FIELD, json.dumps(personal, ensure_ascii=False))
    return out


def persons_in(sealed: dict[str, Any]) -> set[str]:
    """Every person reference a sealed statement names."""
    found: set[str] = set()

    def walk(agent: dict[str, Any]) -> None:
        if isinstance(agent.get("$p"), str):
            found.add(agent["$p"])
        for m in members(agent):
            walk(m)

    for container, key, _ in agent_slots(sealed):
        walk(container[key])
    return found


def unseal(sealed: dict[str, Any], keys: dict[str, bytes], homepage: str) -> dict[str, Any]:
    """The statement as received, as far as the keys allow (an erased person's agent names nobody)."""
    out = clone(sealed)
    for container, key, _ in list(agent_slots(out)):
        container[key] = _unseal_agent(container[key], keys, homepage)
    return out


def _unseal_agent(agent: dict[str, Any], keys: dict[str, bytes], homepage: str) -> dict[str, Any]:
    out = {k: v for k, v in agent.items() if k not in ("$p", "$c")}
    if "member" in out and isinstance(out["member"], list):
        out["member"] = [_unseal_agent(m, keys, homepage) if isinstance(m, dict) else m for m in out["member"]]
    person = agent.get("$p")
    if isinstance(person, str):
        plain = crypto.decrypt(keys.get(person), person, FIELD, str(agent.get("$c", "")))
        if plain is None:
            out["account"] = {"homePage": homepage, "name": ERASED_NAME}
        else:
            out.update(json.loads(plain))
    return out
