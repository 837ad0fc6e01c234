"""Activities and their definitions, interaction activities included.

xAPI 1.0.3 Data 2.4.4.1 (When the "Object" is an Activity: id, definition, interaction
activities, interaction components) and 4.1 (Extensions); IEEE 9274.1.1-2023 4.2.2.3
(Object requirements, Activity Definition) and 4.2.2.5 (contextActivities' Activities).
"""

from __future__ import annotations

from typing import Any

from ledger.xapi.checks import (
    array,
    child,
    extensions,
    fail,
    iri,
    item,
    keys,
    language_map,
    obj,
    string,
)

INTERACTION_TYPES = (
    "true-false", "choice", "fill-in", "long-fill-in", "matching",
    "performance", "sequencing", "likert", "numeric", "other",
)
# Which interaction component lists each interactionType supports (Data 2.4.4.1,
# "Interaction Components"); the other types support none.
_COMPONENT_LISTS: dict[str, tuple[str, ...]] = {
    "choice": ("choices",),
    "sequencing": ("choices",),
    "likert": ("scale",),
    "matching": ("source", "target"),
    "performance": ("steps",),
}
_ALL_LISTS = ("choices", "scale", "source", "target", "steps")
_DEFINITION_KEYS = (
    "name", "description", "type", "moreInfo", "extensions",
    "interactionType", "correctResponsesPattern", *_ALL_LISTS,
)


def activity(value: object, path: str) -> None:
    """An Activity: objectType "Activity" when present, an IRI id, an optional definition."""
    found = obj(value, path)
    if "objectType" in found and found["objectType"] != "Activity":
        fail(child(path, "objectType"), 'must be "Activity"')
    keys(found, path, ("objectType", "id", "definition"), ("id",))
    iri(found["id"], child(path, "id"))
    if "definition" in found:
        definition(found["definition"], child(path, "definition"))


def definition(value: object, path: str) -> None:
    """An Activity Definition, with the interaction properties when it has an interactionType."""
    found = obj(value, path)
    keys(found, path, _DEFINITION_KEYS)
    for key in ("name", "description"):
        if key in found:
            language_map(found[key], child(path, key))
    for key in ("type", "moreInfo"):
        if key in found:
            iri(found[key], child(path, key))
    if "extensions" in found:
        extensions(found["extensions"], child(path, "extensions"))
    _interaction(found, path)


def _interaction(found: dict[str, Any], path: str) -> None:
    kind = found.get("interactionType")
    lists = [key for key in _ALL_LISTS if key in found]
    if kind is None:
        if "interactionType" in found:
            fail(child(path, "interactionType"), "must be a string, not null")
        if "correctResponsesPattern" in found or lists:
            fail(child(path, "interactionType"),
                 "is required when correctResponsesPattern or interaction components are given")
        return
    if kind not in INTERACTION_TYPES:
        fail(child(path, "interactionType"), f"must be one of {', '.join(INTERACTION_TYPES)}")
    if "correctResponsesPattern" in found:
        where = child(path, "correctResponsesPattern")
        for index, pattern in enumerate(array(found["correctResponsesPattern"], where)):
            string(pattern, item(where, index))
    supported = _COMPONENT_LISTS.get(kind, ())
    for key in lists:
        if key not in supported:
            fail(child(path, key), f'is not an interaction component list of "{kind}"')
        _components(found[key], child(path, key))


def _components(value: object, path: str) -> None:
    """Interaction components: each an id (distinct within the list) and a description."""
    seen: set[str] = set()
    for index, entry in enumerate(array(value, path)):
        where = item(path, index)
        component = obj(entry, where)
        keys(component, where, ("id", "description"), ("id",))
        ident = string(component["id"], child(where, "id"))
        if ident in seen:
            fail(child(where, "id"), "must be distinct within the list")
        seen.add(ident)
        if "description" in component:
            language_map(component["description"], child(where, "description"))
