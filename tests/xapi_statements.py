"""Statements for the xAPI validation tests, built from the examples of the xAPI
specification's data model (1.0.3 Data 2.4, IEEE 9274.1.1-2023 4.2), and a way to change
one property of them by its path."""

from __future__ import annotations

import copy
from typing import Any

DELETE = object()

MBOX = {"mbox": "mailto:learner@example.org"}
ACTIVITY = {"objectType": "Activity", "id": "http://example.org/courses/c-1"}
VERB = {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}}


def minimal() -> dict[str, Any]:
    """The smallest valid statement: actor, verb and object."""
    return {"actor": dict(MBOX), "verb": {"id": VERB["id"]}, "object": {"id": ACTIVITY["id"]}}


def full() -> dict[str, Any]:
    """A statement that uses every property a client may send (2.0.0 adds contextAgents
    and contextGroups, removed by ``full_103``)."""
    return {
        "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0",
        "actor": {"objectType": "Agent", "name": "Asha Rao", "mbox": "mailto:asha@example.org"},
        "verb": copy.deepcopy(VERB),
        "object": {
            "objectType": "Activity",
            "id": "http://example.org/courses/c-1/q1",
            "definition": {
                "name": {"en-US": "Question 1", "hi-IN": "प्रश्न 1"},
                "description": {"en-US": "Pick one"},
                "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                "moreInfo": "https://example.org/courses/c-1/q1.html",
                "interactionType": "choice",
                "correctResponsesPattern": ["golf[,]tetris"],
                "choices": [
                    {"id": "golf", "description": {"en-US": "Golf"}},
                    {"id": "tetris", "description": {"en-US": "Tetris"}},
                ],
                "extensions": {"http://example.org/ext/difficulty": {"any": ["json", 1, None]}},
            },
        },
        "result": {
            "score": {"scaled": 0.95, "raw": 95, "min": 0, "max": 100},
            "success": True,
            "completion": True,
            "response": "golf[,]tetris",
            "duration": "PT1H2M3.45S",
            "extensions": {"https://w3id.org/xapi/cmi5/result/extensions/progress": 100},
        },
        "context": {
            "registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
            "instructor": {"name": "Tutor", "account": {"homePage": "https://lms.example.org", "name": "t-9"}},
            "team": {"objectType": "Group", "name": "Batch 7", "member": [dict(MBOX)]},
            "contextActivities": {
                "parent": {"id": "http://example.org/courses/c-1"},
                "grouping": [{"id": "http://example.org/programmes/p-1"}],
                "category": [{"id": "https://w3id.org/xapi/cmi5/context/categories/cmi5"}],
                "other": [],
            },
            "revision": "r2",
            "platform": "Moodle 4.3",
            "language": "en-US",
            "statement": {"objectType": "StatementRef", "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"},
            "extensions": {"http://example.org/ext/session": "s-1"},
            "contextAgents": [{
                "objectType": "contextAgent",
                "agent": {"openid": "https://openid.example.org/asha"},
                "relevantTypes": ["http://example.org/types/mentor"],
            }],
            "contextGroups": [{
                "objectType": "contextGroup",
                "group": {"objectType": "Group", "mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975"},
                "relevantTypes": ["http://example.org/types/cohort"],
            }],
        },
        "timestamp": "2024-05-01T10:00:00.123+05:30",
        "stored": "2024-05-01T04:30:01.000Z",
        "authority": {"objectType": "Agent", "account": {"homePage": "https://ledger.example.org", "name": "lrs-moodle"}},
        "version": "2.0.0",
        "attachments": [{
            "usageType": "http://adlnet.gov/expapi/attachments/signature",
            "display": {"en-US": "Signature"},
            "description": {"en-US": "A signature"},
            "contentType": "application/octet-stream",
            "length": 4235,
            "sha2": "672fa5fa658017f1b72d65036f13379c6ab05d4ab3b6664908d8acf0b6a0c634",
            "fileUrl": "https://example.org/files/sig",
        }],
    }


def full_103() -> dict[str, Any]:
    """``full`` as a 1.0.3 client sends it (no 2.0 properties, a 1.0.x version)."""
    stmt = full()
    del stmt["context"]["contextAgents"], stmt["context"]["contextGroups"]
    stmt["version"] = "1.0.3"
    return stmt


def substatement() -> dict[str, Any]:
    """A statement whose object is a SubStatement (Data 2.4.4.3)."""
    stmt = minimal()
    stmt["object"] = {
        "objectType": "SubStatement",
        "actor": {"objectType": "Group", "member": [dict(MBOX)]},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
        "object": dict(ACTIVITY),
        "result": {"success": False},
        "context": {"platform": "Moodle", "contextActivities": {"parent": {"id": ACTIVITY["id"]}}},
        "timestamp": "2024-05-01T10:00:00Z",
    }
    return stmt


def changed(stmt: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``stmt`` with each property path (``a__b`` is ``a.b``; ``a__0`` an index)
    set to its value, or removed when the value is ``DELETE``."""
    out = copy.deepcopy(stmt)
    for dotted, value in changes.items():
        set_path(out, dotted.replace("__", "."), value)
    return out


def set_path(stmt: Any, path: str, value: Any) -> None:
    """Set (or, with ``DELETE``, remove) the property at a dotted path; digits index arrays."""
    steps: list[str | int] = [int(part) if part.isdigit() else part for part in path.split(".")]
    node = stmt
    for step in steps[:-1]:
        node = node[step]
    last = steps[-1]
    if value is DELETE:
        del node[last]
    else:
        node[last] = copy.deepcopy(value)


def for_version(stmt: dict[str, Any], version: str) -> dict[str, Any]:
    """``stmt`` as a client of ``version`` sends it: for 1.0.3 without the 2.0 context
    properties and with a 1.0.x version."""
    out = copy.deepcopy(stmt)
    if version == "1.0.3":
        if isinstance(out.get("context"), dict):
            out["context"].pop("contextAgents", None)
            out["context"].pop("contextGroups", None)
        if out.get("version") == "2.0.0":
            out["version"] = "1.0.0"
    return out
