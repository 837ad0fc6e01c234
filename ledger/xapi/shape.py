"""Shapes of stored statements the Statement Resource returns.

- ``normalise``: xAPI 1.0.3 Data 2.4.6.2.s4.b3-b4 (every contextActivities value returned
  as an array) and IEEE 9274.1.1-2023 4.2.2.5.
- ``formatted``: the GET ``format`` parameter, Communication 2.1.3 (table row 12): "exact",
  "ids" (only what identifies Agents, Groups, members of anonymous Groups, Activities
  and Verbs), "canonical" (one language per language map of Activities and Verbs,
  chosen with ``Accept-Language``, Communication 2.1.3.s4 "Language Filtering").
- ``parse_accept_language``: the header of RFC 7231 5.3.5 (RFC 2616 14.4), ranges in
  order of preference.
- ``agent_key``: the Inverse Functional Identifier of Data 2.4.2.3 as one string.
- ``same_statement`` is in ``ledger.xapi.compare`` and re-exported here.
"""

from __future__ import annotations

from typing import Any

from ledger.xapi.compare import same_statement

__all__ = [
    "agent_key",
    "formatted",
    "normalise",
    "parse_accept_language",
    "pick_language",
    "same_statement",
]

_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")


def normalise(stmt: dict[str, Any]) -> dict[str, Any]:
    """A copy of a valid statement as the LRS keeps and returns it: each contextActivities
    value an array (a single Activity becomes an array of one), in a SubStatement too."""
    out: dict[str, Any] = _copy(stmt)
    for one in (out, out.get("object")):
        if not isinstance(one, dict):
            continue
        context = one.get("context")
        if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
            activities = context["contextActivities"]
            for key, value in activities.items():
                if not isinstance(value, list):
                    activities[key] = [value]
    return out


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value (several times faster than ``copy.deepcopy``; a stored
    statement is nested a bounded number of levels, see ``checks.MAX_DEPTH``)."""
    if isinstance(value, dict):
        return {key: _copy(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_copy(inner) for inner in value]
    return value


def agent_key(agent: object) -> str | None:
    """The Agent's or identified Group's identifier as one canonical string, or None for an
    anonymous Group (or anything without one).

    ``mbox:mailto:<local>@<domain>`` with the domain in lower case (domains are case
    insensitive, Data 2.4.2.3.s4), ``mbox_sha1sum:<lower-case hex>``, ``openid:<IRI>``,
    ``account:<homePage>|<name>`` (an IRL holds no "|", so the split is unambiguous).
    """
    if not isinstance(agent, dict):
        return None
    mbox = agent.get("mbox")
    if isinstance(mbox, str):
        local, at, domain = mbox.rpartition("@")
        return "mbox:" + (f"{local}@{domain.lower()}" if at else mbox)
    sha1 = agent.get("mbox_sha1sum")
    if isinstance(sha1, str):
        return "mbox_sha1sum:" + sha1.lower()
    openid = agent.get("openid")
    if isinstance(openid, str):
        return "openid:" + openid
    account = agent.get("account")
    if isinstance(account, dict):
        home, name = account.get("homePage"), account.get("name")
        if isinstance(home, str) and isinstance(name, str):
            return f"account:{home}|{name}"
    return None


def parse_accept_language(header: str | None) -> list[str]:
    """The language ranges of an Accept-Language header, most preferred first.

    Ranges with q=0 (not acceptable) and malformed parts are dropped; equal q values keep
    their order in the header. ``None`` or an empty header gives [].
    """
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        fields = [field.strip() for field in part.split(";")]
        tag = fields[0]
        if not tag or not _is_range(tag):
            continue
        quality = 1.0
        for field in fields[1:]:
            name, _, value = field.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if not 0 < quality <= 1:
            continue
        ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def _is_range(tag: str) -> bool:
    if tag == "*":
        return True
    parts = tag.split("-")
    return all(0 < len(p) <= 8 and p.isascii() and p.isalnum() for p in parts)


def pick_language(mapping: dict[str, Any], languages: list[str]) -> str | None:
    """The key of a language map that best answers the ranges, or None for an empty map.

    Per range in order of preference: the exact tag (case-insensitive), then a tag the
    range is a prefix of ("en" matches "en-GB", RFC 2616 14.4), then the range shortened
    subtag by subtag ("hi-IN" finds "hi", RFC 4647 3.4); "*" takes any tag. Failing all
    ranges, the map's first key.
    """
    if not mapping:
        return None
    tags = list(mapping)
    lowered = [tag.lower() for tag in tags]
    for wanted in languages:
        want = wanted.lower()
        if want == "*":
            return tags[0]
        if want in lowered:
            return tags[lowered.index(want)]
        for index, tag in enumerate(lowered):
            if tag.startswith(want + "-"):
                return tags[index]
        parts = want.split("-")
        while len(parts) > 1:
            parts.pop()
            shorter = "-".join(parts)
            if shorter in lowered:
                return tags[lowered.index(shorter)]
    return tags[0]


def formatted(stmt: dict[str, Any], fmt: str, languages: list[str]) -> dict[str, Any]:
    """The statement in the GET ``format``: "exact" (as stored), "ids" or "canonical".

    ``languages`` are the Accept-Language ranges (``parse_accept_language``), used by
    "canonical" only. Returns a new dict; ``stmt`` is left as it is.
    """
    out: dict[str, Any] = _copy(stmt)
    if fmt == "ids":
        _to_ids(out)
    elif fmt == "canonical":
        _to_canonical(out, languages)
    elif fmt != "exact":
        raise ValueError(f'format must be "exact", "ids" or "canonical", not {fmt!r}')
    return out


def _agent_ids(agent: Any) -> Any:
    """Only what identifies an Agent or Group (and the members of an anonymous Group)."""
    if not isinstance(agent, dict):
        return agent
    out: dict[str, Any] = {}
    if "objectType" in agent:
        out["objectType"] = agent["objectType"]
    identified = False
    for key in _IFIS:
        if key in agent:
            out[key] = agent[key]
            identified = True
    if not identified and isinstance(agent.get("member"), list):
        out["member"] = [_agent_ids(member) for member in agent["member"]]
    return out


def _activity_ids(activity: Any) -> Any:
    return {"id": activity["id"]} if isinstance(activity, dict) and "id" in activity else activity


def _object_ids(target: Any) -> Any:
    if not isinstance(target, dict):
        return target
    kind = target.get("objectType", "Activity")
    if kind == "Activity":
        return _activity_ids(target)
    if kind in ("Agent", "Group"):
        return _agent_ids(target)
    if kind == "SubStatement":
        _to_ids(target)
    return target


def _to_ids(stmt: dict[str, Any]) -> None:
    for key in ("actor", "authority"):
        if key in stmt:
            stmt[key] = _agent_ids(stmt[key])
    if isinstance(stmt.get("verb"), dict) and "id" in stmt["verb"]:
        stmt["verb"] = {"id": stmt["verb"]["id"]}
    if "object" in stmt:
        stmt["object"] = _object_ids(stmt["object"])
    context = stmt.get("context")
    if not isinstance(context, dict):
        return
    for key in ("instructor", "team"):
        if key in context:
            context[key] = _agent_ids(context[key])
    activities = context.get("contextActivities")
    if isinstance(activities, dict):
        for key, value in activities.items():
            if isinstance(value, list):
                activities[key] = [_activity_ids(one) for one in value]
            else:
                activities[key] = _activity_ids(value)
    for key, inner in (("contextAgents", "agent"), ("contextGroups", "group")):
        entries = context.get(key)
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict) and inner in entry:
                    entry[inner] = _agent_ids(entry[inner])


def _one_language(mapping: Any, languages: list[str]) -> Any:
    if not isinstance(mapping, dict):
        return mapping
    chosen = pick_language(mapping, languages)
    return {} if chosen is None else {chosen: mapping[chosen]}


def _activity_canonical(activity: Any, languages: list[str]) -> None:
    if not isinstance(activity, dict) or not isinstance(activity.get("definition"), dict):
        return
    definition = activity["definition"]
    for key in ("name", "description"):
        if key in definition:
            definition[key] = _one_language(definition[key], languages)
    for key in _COMPONENT_LISTS:
        components = definition.get(key)
        if isinstance(components, list):
            for component in components:
                if isinstance(component, dict) and "description" in component:
                    component["description"] = _one_language(component["description"], languages)


def _to_canonical(stmt: dict[str, Any], languages: list[str]) -> None:
    verb = stmt.get("verb")
    if isinstance(verb, dict) and "display" in verb:
        verb["display"] = _one_language(verb["display"], languages)
    target = stmt.get("object")
    if isinstance(target, dict):
        kind = target.get("objectType", "Activity")
        if kind == "Activity":
            _activity_canonical(target, languages)
        elif kind == "SubStatement":
            _to_canonical(target, languages)
    context = stmt.get("context")
    if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
        for value in context["contextActivities"].values():
            for one in value if isinstance(value, list) else [value]:
                _activity_canonical(one, languages)
