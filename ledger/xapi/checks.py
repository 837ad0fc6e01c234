"""Typed property checks that name the offending property path (xAPI 1.0.3 Data 2.2.s4).

The LRS rejects a statement with a null value outside extensions, a wrong JSON type (a
string where a number or boolean is required, a boolean where a number is), a key not
allowed or in the wrong case, a value that does not follow its format, or an IRI without
a scheme (Data 2.2.s4.b1; IEEE 9274.1.1 4.2.1). Every failure raises ``XapiInvalid``
with ``"<path>: <rule>"``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable
from typing import Any, NoReturn

from ledger.xapi import formats
from ledger.xapi.errors import XapiInvalid

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN = 100
_SHOWN_PATH = 2 * _SHOWN + 3  # both ends and the dots between
# Beyond the double range a JSON number cannot be kept with IEEE 754 precision either way.
_MAX_INT_BITS = 1024


def fail(path: str, rule: str) -> NoReturn:
    """Reject the statement at ``path``: one short line, whatever the keys in the path (a
    long path is cut in the middle, one with unprintable text is shown JSON-escaped)."""
    shown = path or "statement"
    if len(shown) > _SHOWN_PATH:
        shown = shown[:_SHOWN] + "..." + shown[-_SHOWN:]
    if not shown.isprintable():
        shown = json.dumps(shown)
    raise XapiInvalid(f"{shown}: {rule}")


def child(path: str, key: str) -> str:
    """The path of property ``key`` inside ``path``."""
    return path + "." + key if path else key


def item(path: str, index: int) -> str:
    """The path of element ``index`` of the array at ``path``."""
    return f"{path}[{index}]"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "not a JSON value"


def obj(value: object, path: str) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        fail(path, f"must be an object, not {_kind(value)}")
    return value


def array(value: object, path: str, *, non_empty: bool = False) -> list[Any]:
    """A JSON array (optionally with at least one element)."""
    if not isinstance(value, list):
        fail(path, f"must be an array, not {_kind(value)}")
    if non_empty and not value:
        fail(path, "must not be empty")
    return value


def keys(
    value: dict[str, Any], path: str, allowed: Collection[str], required: Iterable[str] = ()
) -> None:
    """Only ``allowed`` properties (case-sensitive), and every ``required`` one."""
    for key in value:
        if key not in allowed:
            if not isinstance(key, str):
                fail(path, "has a key that is not a string")
            fail(child(path, key), "is not a property allowed here")
    for key in required:
        if key not in value:
            fail(child(path, key), "is required")


def string(value: object, path: str) -> str:
    """A JSON string of Unicode text (no lone surrogates, which JSON's \\u escapes allow)."""
    if not isinstance(value, str):
        fail(path, f"must be a string, not {_kind(value)}")
    if not value.isascii() and _SURROGATE.search(value):
        fail(path, "contains a lone surrogate (not Unicode text)")
    return value


def boolean(value: object, path: str) -> bool:
    """true or false (never a string or number)."""
    if not isinstance(value, bool):
        fail(path, f"must be a boolean, not {_kind(value)}")
    return value


def number(value: object, path: str) -> int | float:
    """A finite JSON number (never a boolean or a string holding digits)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(path, f"must be a number, not {_kind(value)}")
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        fail(path, "is too large a number")
    if isinstance(value, float) and not math.isfinite(value):
        fail(path, "must be a finite number")
    return value


def iri(value: object, path: str) -> str:
    """An absolute IRI with a scheme."""
    text = string(value, path)
    if not formats.is_iri(text):
        fail(path, "must be an absolute IRI with a scheme")
    return text


def uuid(value: object, path: str) -> str:
    """A UUID in standard string form."""
    text = string(value, path)
    if not formats.is_uuid(text):
        fail(path, "must be a UUID (8-4-4-4-12 hex digits)")
    return text


def language_tag(value: object, path: str) -> str:
    """An RFC 5646 language tag."""
    text = string(value, path)
    if not formats.is_language_tag(text):
        fail(path, "must be an RFC 5646 language tag")
    return text


def language_map(value: object, path: str) -> dict[str, Any]:
    """An object whose keys are RFC 5646 language tags and whose values are strings."""
    mapping = obj(value, path)
    for key, text in mapping.items():
        if not isinstance(key, str):
            fail(path, "has a key that is not a string")
        if not formats.is_language_tag(key):
            fail(child(path, key), "the key must be an RFC 5646 language tag")
        string(text, child(path, key))
    return mapping


def extensions(value: object, path: str) -> dict[str, Any]:
    """An object whose keys are IRIs; its values are any JSON this LRS can keep (Data 4.1:
    an LRS does not reject a statement for its extension values, ``json_tree`` aside)."""
    mapping = obj(value, path)
    for key, inner in mapping.items():
        if not isinstance(key, str):
            fail(path, "has a key that is not a string")
        if not formats.is_iri(key):
            fail(child(path, key), "an extension key must be an absolute IRI")
        json_tree(inner, child(path, key))
    return mapping


# A link is (parent link, key or index): the path is only spelled out for a failure.
_Link = tuple[Any, str | int] | None


def json_tree(value: object, path: str) -> None:
    """The whole value is JSON this LRS can keep: nesting at most ``MAX_DEPTH`` deep, no
    lone surrogates in strings or keys, numbers within the double range.

    Iterative, so a 100,000-deep value is refused without recursion.
    """
    stack: list[tuple[object, int, _Link]] = [(value, 0, None)]
    while stack:
        node, depth, link = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and _SURROGATE.search(node):
                fail(_spelled(path, link), "contains a lone surrogate (not Unicode text)")
        elif isinstance(node, dict):
            if node and depth >= MAX_DEPTH:
                fail(_spelled(path, link), f"is nested more than {MAX_DEPTH} levels deep")
            for key, inner in node.items():
                if not isinstance(key, str):
                    fail(_spelled(path, link), "has a key that is not a string")
                if not key.isascii() and _SURROGATE.search(key):
                    fail(_spelled(path, link), "has a key with a lone surrogate (not Unicode text)")
                stack.append((inner, depth + 1, (link, key)))
        elif isinstance(node, list):
            if node and depth >= MAX_DEPTH:
                fail(_spelled(path, link), f"is nested more than {MAX_DEPTH} levels deep")
            stack.extend((inner, depth + 1, (link, index)) for index, inner in enumerate(node))
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if node.bit_length() > _MAX_INT_BITS:
                number(node, _spelled(path, link))
        elif isinstance(node, float):
            if not math.isfinite(node):
                number(node, _spelled(path, link))
        else:
            fail(_spelled(path, link), "is not a JSON value")


def _spelled(path: str, link: _Link) -> str:
    steps: list[str | int] = []
    while link is not None:
        link, step = link
        steps.append(step)
    for step in reversed(steps):
        path = item(path, step) if isinstance(step, int) else child(path, step)
    return path
