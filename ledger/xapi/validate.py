"""Validation of one xAPI statement against the data model, for versions 1.0.3 and 2.0.0.

xAPI 1.0.3 Data 2.2 (Formatting Requirements), 2.3.2 (Voiding), 2.4 (Statement
Properties: 2.4.1 id, 2.4.2 actor, 2.4.3 verb, 2.4.4 object with 2.4.4.3 StatementRef and
SubStatement, 2.4.5 result, 2.4.6 context, 2.4.7 timestamp, 2.4.8 stored, 2.4.9
authority, 2.4.10 version, 2.4.11 attachments), 4.1 (extensions); IEEE 9274.1.1-2023
(xAPI 2.0) 4.2.1-4.2.7, where 2.0.0 adds context.contextAgents and contextGroups and a
timestamp must carry its time zone. Actors are in ``agents``, Activities in
``activities``, string formats in ``formats``.

``validate_statement(stmt, version)`` returns None or raises ``XapiInvalid`` naming the
first offending property path, e.g. ``actor.mbox: must be a "mailto:" IRI of one mailbox``.
"""

from __future__ import annotations

from typing import Any

from ledger.xapi import agents, formats
from ledger.xapi.activities import activity
from ledger.xapi.checks import (
    array,
    boolean,
    child,
    extensions,
    fail,
    iri,
    item,
    keys,
    language_map,
    language_tag,
    number,
    obj,
    string,
    uuid,
)
from ledger.xapi.errors import XapiInvalid

VERSIONS = ("1.0.3", "2.0.0")
VOIDED = "http://adlnet.gov/expapi/verbs/voided"

_STATEMENT_KEYS = (
    "id", "actor", "verb", "object", "result", "context",
    "timestamp", "stored", "authority", "version", "attachments",
)
_SUBSTATEMENT_KEYS = (
    "objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments",
)
_REQUIRED = ("actor", "verb", "object")
_CONTEXT_KEYS = (
    "registration", "instructor", "team", "contextActivities", "revision",
    "platform", "language", "statement", "extensions",
)
_CONTEXT_KEYS_2 = (*_CONTEXT_KEYS, "contextAgents", "contextGroups")
_CONTEXT_ACTIVITY_KEYS = ("parent", "grouping", "category", "other")
_ATTACHMENT_KEYS = (
    "usageType", "display", "description", "contentType", "length", "sha2", "fileUrl",
)


def validate_statement(stmt: object, version: str) -> None:
    """Raise ``XapiInvalid`` unless ``stmt`` is a valid statement under ``version``
    (the request's X-Experience-API-Version, "1.0.3" or "2.0.0")."""
    if version not in VERSIONS:
        raise XapiInvalid(f"X-Experience-API-Version: must be one of {', '.join(VERSIONS)}")
    if not isinstance(stmt, dict):
        raise XapiInvalid("statement: must be a JSON object")
    _statement(stmt, "", version, sub=False)


def _statement(found: dict[str, Any], path: str, version: str, *, sub: bool) -> None:
    keys(found, path, _SUBSTATEMENT_KEYS if sub else _STATEMENT_KEYS, _REQUIRED)
    if "id" in found:
        uuid(found["id"], child(path, "id"))
    agents.actor(found["actor"], child(path, "actor"))
    verb_id = _verb(found["verb"], child(path, "verb"))
    target = obj(found["object"], child(path, "object"))
    _object(target, child(path, "object"), version, sub=sub)
    if verb_id == VOIDED and not sub and target.get("objectType") != "StatementRef":
        fail(child(path, "object"), "a voiding statement's object must be a StatementRef")
    if "result" in found:
        _result(found["result"], child(path, "result"))
    if "context" in found:
        is_activity = target.get("objectType", "Activity") == "Activity"
        _context(found["context"], child(path, "context"), version, is_activity)
    for key in ("timestamp", "stored"):
        if key in found:
            _timestamp(found[key], child(path, key), version)
    if "authority" in found:
        agents.authority(found["authority"], child(path, "authority"))
    if "version" in found:
        text = string(found["version"], child(path, "version"))
        if not formats.is_statement_version(text, version):
            allowed = '"1.0.x"' if version == "1.0.3" else '"1.0.x" or "2.0.x"'
            fail(child(path, "version"), f"must be {allowed}")
    if "attachments" in found:
        _attachments(found["attachments"], child(path, "attachments"))


def _verb(value: object, path: str) -> str:
    found = obj(value, path)
    keys(found, path, ("id", "display"), ("id",))
    verb_id = iri(found["id"], child(path, "id"))
    if "display" in found:
        language_map(found["display"], child(path, "display"))
    return verb_id


def _object(found: dict[str, Any], path: str, version: str, *, sub: bool) -> None:
    kind = found.get("objectType", "Activity")
    if kind == "Activity":
        activity(found, path)
    elif kind == "Agent":
        agents.agent(found, path, object_type_required=True)
    elif kind == "Group":
        agents.group(found, path)
    elif kind == "StatementRef":
        statement_ref(found, path)
    elif kind == "SubStatement":
        if sub:
            fail(child(path, "objectType"), "a SubStatement must not contain a SubStatement")
        _statement(found, path, version, sub=True)
    else:
        fail(child(path, "objectType"),
             'must be "Activity", "Agent", "Group", "StatementRef" or "SubStatement"')


def statement_ref(value: object, path: str) -> None:
    """A Statement Reference: objectType "StatementRef" and the UUID of a statement."""
    found = obj(value, path)
    keys(found, path, ("objectType", "id"), ("objectType", "id"))
    if found["objectType"] != "StatementRef":
        fail(child(path, "objectType"), 'must be "StatementRef"')
    uuid(found["id"], child(path, "id"))


def _result(value: object, path: str) -> None:
    found = obj(value, path)
    keys(found, path, ("score", "success", "completion", "response", "duration", "extensions"))
    if "score" in found:
        _score(found["score"], child(path, "score"))
    for key in ("success", "completion"):
        if key in found:
            boolean(found[key], child(path, key))
    if "response" in found:
        string(found["response"], child(path, "response"))
    if "duration" in found:
        text = string(found["duration"], child(path, "duration"))
        if not formats.is_duration(text):
            fail(child(path, "duration"), "must be an ISO 8601 duration such as PT1H30M or P4W")
    if "extensions" in found:
        extensions(found["extensions"], child(path, "extensions"))


def _score(value: object, path: str) -> None:
    """scaled within -1..1; min < max; raw within min..max (Data 2.4.5.1)."""
    found = obj(value, path)
    keys(found, path, ("scaled", "raw", "min", "max"))
    got = {key: number(found[key], child(path, key)) for key in found}
    if "scaled" in got and not -1 <= got["scaled"] <= 1:
        fail(child(path, "scaled"), "must be between -1 and 1")
    if "min" in got and "max" in got and not got["min"] < got["max"]:
        fail(child(path, "max"), "must be greater than min")
    if "raw" in got:
        if "min" in got and got["raw"] < got["min"]:
            fail(child(path, "raw"), "must not be less than min")
        if "max" in got and got["raw"] > got["max"]:
            fail(child(path, "raw"), "must not be greater than max")


def _context(value: object, path: str, version: str, object_is_activity: bool) -> None:
    found = obj(value, path)
    keys(found, path, _CONTEXT_KEYS_2 if version == "2.0.0" else _CONTEXT_KEYS)
    if "registration" in found:
        uuid(found["registration"], child(path, "registration"))
    if "instructor" in found:
        agents.actor(found["instructor"], child(path, "instructor"))
    if "team" in found:
        team = obj(found["team"], child(path, "team"))
        if team.get("objectType") != "Group":
            fail(child(path, "team.objectType"), 'the team must be a Group ("Group")')
        agents.group(team, child(path, "team"))
    if "contextActivities" in found:
        _context_activities(found["contextActivities"], child(path, "contextActivities"))
    for key in ("revision", "platform"):
        if key in found:
            string(found[key], child(path, key))
            if not object_is_activity:
                fail(child(path, key), "may only be used when the statement's object is an Activity")
    if "language" in found:
        language_tag(found["language"], child(path, "language"))
    if "statement" in found:
        statement_ref(found["statement"], child(path, "statement"))
    if "extensions" in found:
        extensions(found["extensions"], child(path, "extensions"))
    if "contextAgents" in found:
        agents.context_agents(found["contextAgents"], child(path, "contextAgents"))
    if "contextGroups" in found:
        agents.context_groups(found["contextGroups"], child(path, "contextGroups"))


def _context_activities(value: object, path: str) -> None:
    """parent, grouping, category, other: each an Activity or an array of Activities."""
    found = obj(value, path)
    keys(found, path, _CONTEXT_ACTIVITY_KEYS)
    for key, entry in found.items():
        where = child(path, key)
        if isinstance(entry, list):
            for index, one in enumerate(entry):
                activity(one, item(where, index))
        else:
            activity(obj(entry, where), where)


def _timestamp(value: object, path: str, version: str) -> None:
    text = string(value, path)
    if formats.parse_timestamp(text, need_zone=version == "2.0.0") is None:
        zone = " with its time zone" if version == "2.0.0" else ""
        fail(path, f"must be an ISO 8601 date and time{zone}, "
                   'such as 2024-05-01T10:00:00.000Z (an offset of "-00:00" is not allowed)')


def _attachments(value: object, path: str) -> None:
    for index, entry in enumerate(array(value, path)):
        where = item(path, index)
        found = obj(entry, where)
        keys(found, where, _ATTACHMENT_KEYS, ("usageType", "display", "contentType", "length", "sha2"))
        iri(found["usageType"], child(where, "usageType"))
        language_map(found["display"], child(where, "display"))
        if "description" in found:
            language_map(found["description"], child(where, "description"))
        if not formats.is_media_type(string(found["contentType"], child(where, "contentType"))):
            fail(child(where, "contentType"), "must be an Internet media type such as text/plain")
        length = number(found["length"], child(where, "length"))
        if not isinstance(length, int) or length < 0:
            fail(child(where, "length"), "must be a whole number of octets, 0 or more")
        if not formats.is_sha2_hex(string(found["sha2"], child(where, "sha2"))):
            fail(child(where, "sha2"), "must be a hex SHA-2 digest (SHA-224, 256, 384 or 512)")
        if "fileUrl" in found:
            iri(found["fileUrl"], child(where, "fileUrl"))
