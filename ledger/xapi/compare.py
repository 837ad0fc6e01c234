"""Whether two statements are the same statement (xAPI 1.0.3 Data 2.3.1, "Statement
Comparison Requirements"; IEEE 9274.1.1-2023 4.2.3 and 4.2.7).

Differences that could come from the exceptions to statement immutability are ignored,
every other difference counts:

- properties the LRS may assign: id, authority, stored, version; a timestamp only one
  of the two has (the LRS may have set it);
- Activity Definitions and a Verb's display (not part of the statement; only ids count);
- serialisation of timestamps: compared as instants, to the millisecond;
- the order of a Group's members (an unordered list);
- case where it does not matter: the domain of an mbox, the hex of mbox_sha1sum and of
  an attachment's sha2, UUIDs, language tags (the keys of language maps);
- contextActivities given as one Activity or as an array of one;
- a result duration's precision beyond 0.01 seconds (IEEE 9274.1.1 4.2.7).

The result duration is otherwise compared as a string (Data 2.3.1.b8), and the order of
every other array counts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ledger.xapi import formats

_ASSIGNED = ("id", "authority", "stored", "version")
_LANGUAGE_MAPS = ("display", "description", "name")


def same_statement(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when ``a`` and ``b`` differ only where the specification says to ignore."""
    if not _same_timestamp(a.get("timestamp"), b.get("timestamp")):
        return False
    return bool(_comparable(a) == _comparable(b))


def _same_timestamp(first: Any, second: Any) -> bool:
    if first is None or second is None:
        return True
    return bool(_instant(first) == _instant(second))


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parsed = formats.parse_timestamp(value)
    if parsed is None:
        return value
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000).timestamp()


def _comparable(stmt: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in stmt.items():
        if key in _ASSIGNED or key == "timestamp":
            continue
        out[key] = _part(key, value)
    return out


def _part(key: str, value: Any) -> Any:
    if key in ("actor", "instructor", "team", "authority", "agent", "group"):
        return _agent(value)
    if key == "verb":
        return value.get("id") if isinstance(value, dict) else value
    if key == "object":
        return _object(value)
    if key == "context":
        return _context(value)
    if key == "result":
        return _result(value)
    if key == "attachments":
        return [_attachment(one) for one in value] if isinstance(value, list) else value
    return value


def _agent(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, inner in value.items():
        if key == "mbox" and isinstance(inner, str):
            local, at, domain = inner.rpartition("@")
            out[key] = f"{local}@{domain.lower()}" if at else inner
        elif key == "mbox_sha1sum" and isinstance(inner, str):
            out[key] = inner.lower()
        elif key == "member" and isinstance(inner, list):
            members = [_agent(member) for member in inner]
            out[key] = sorted(members, key=lambda m: json.dumps(m, sort_keys=True))
        else:
            out[key] = inner
    out.setdefault("objectType", "Agent")
    return out


def _activity(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def _object(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        return ("Activity", _activity(value))
    if kind in ("Agent", "Group"):
        return _agent(value)
    if kind == "StatementRef":
        ident = value.get("id")
        return ("StatementRef", ident.lower() if isinstance(ident, str) else ident)
    if kind == "SubStatement":
        inner = _comparable(value)
        stamp = value.get("timestamp")
        inner["timestamp"] = _instant(stamp) if stamp is not None else None
        return inner
    return value


def _context(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, inner in value.items():
        if key == "registration" and isinstance(inner, str):
            out[key] = inner.lower()
        elif key in ("instructor", "team"):
            out[key] = _agent(inner)
        elif key == "contextActivities" and isinstance(inner, dict):
            out[key] = {
                name: [_activity(one) for one in (acts if isinstance(acts, list) else [acts])]
                for name, acts in inner.items()
            }
        elif key == "statement" and isinstance(inner, dict):
            out[key] = _object(inner)
        elif key == "language" and isinstance(inner, str):
            out[key] = inner.lower()
        elif key in ("contextAgents", "contextGroups") and isinstance(inner, list):
            out[key] = [
                {k: _part(k, v) for k, v in entry.items()} if isinstance(entry, dict) else entry
                for entry in inner
            ]
        else:
            out[key] = inner
    return out


_SECONDS = re.compile(r"([0-9]+)(?:[.,]([0-9]+))?S$")


def _result(value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("duration"), str):
        return value
    out = dict(value)
    out["duration"] = _SECONDS.sub(_centiseconds, value["duration"])
    return out


def _centiseconds(found: re.Match[str]) -> str:
    fraction = (found[2] or "")[:2].rstrip("0")
    return f"{found[1]}.{fraction}S" if fraction else f"{found[1]}S"


def _attachment(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if isinstance(out.get("sha2"), str):
        out["sha2"] = out["sha2"].lower()
    for key in _LANGUAGE_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {tag.lower(): text for tag, text in out[key].items()}
    return out
