"""Hostile statements: deep nesting, huge numbers, lone surrogates, NUL, non-JSON values.

Each is refused with ``XapiInvalid`` naming where (or accepted where the specification
allows anything, such as text in a name), never with another exception; the message is
one short line whatever the input.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.xapi.errors import XapiInvalid
from ledger.xapi.validate import validate_statement
from tests.xapi_statements import changed, for_version, full, minimal, substatement

BOTH = ("1.0.3", "2.0.0")
EXT = "http://example.org/ext"


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": [value]}
    return value


def _refused(stmt: object, version: str = "2.0.0") -> str:
    with pytest.raises(XapiInvalid) as caught:
        validate_statement(stmt, version)
    message = caught.value.message
    assert "\n" not in message and len(message) < 400, message
    return message


def test_an_extension_nested_100_000_deep_is_refused_without_recursion() -> None:
    stmt = minimal()
    stmt["result"] = {"extensions": {EXT: _nested(100_000)}}
    message = _refused(stmt)
    assert message.startswith("result.extensions.http://example.org/ext.a[0]") and "nested" in message


def test_substatements_nested_5_000_deep_are_refused_at_the_second_level() -> None:
    deep: Any = minimal()
    for _ in range(5_000):
        outer = minimal()
        outer["object"] = {"objectType": "SubStatement", **deep}
        deep = outer
    assert _refused(deep).startswith("object.object.objectType: a SubStatement must not contain")


def test_moderate_nesting_inside_extensions_is_fine() -> None:
    validate_statement(changed(minimal(), result={"extensions": {EXT: _nested(20)}}), "2.0.0")


@pytest.mark.parametrize("where", ["actor", "verb.display", "result.score", "context.contextActivities"])
def test_deep_values_where_the_model_expects_a_shape_are_refused_at_the_top(where: str) -> None:
    stmt = minimal()
    parent: Any = stmt
    steps = where.split(".")
    for step in steps[:-1]:
        parent = parent.setdefault(step, {})
    parent[steps[-1]] = {"x": _nested(100_000)} if where != "verb.display" else {"en": _nested(100_000)}
    _refused(stmt)


@pytest.mark.parametrize("where", ["result.score.raw", "result.extensions", "context.extensions"])
def test_a_5000_digit_number_is_refused_cleanly(where: str) -> None:
    huge = 10**5000
    if where == "result.score.raw":
        stmt = changed(minimal(), result={"score": {"raw": huge}})
    elif where == "result.extensions":
        stmt = changed(minimal(), result={"extensions": {EXT: [huge]}})
    else:
        stmt = changed(minimal(), context={"extensions": {EXT: {"n": -huge}}})
    assert "too large" in _refused(stmt)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    assert "finite" in _refused(changed(minimal(), result={"score": {"scaled": value}}))


def test_big_but_representable_numbers_are_compared_exactly() -> None:
    big = 10**300
    validate_statement(changed(minimal(), result={"score": {"raw": big, "min": 0, "max": big + 1}}), "2.0.0")
    _refused(changed(minimal(), result={"score": {"raw": big + 2, "min": 0, "max": big + 1}}))


@pytest.mark.parametrize(("field", "value"), [
    ("verb__id", "http://example.org/\ud800"),
    ("actor__name", "Asha\udc00"),
    ("object__id", "http://example.org/\x00"),
    ("actor__mbox", "mailto:a\x00@example.org"),
    ("verb__display", {"en\x00": "x"}),
    ("verb__display", {"en-US": "completed\ud83d"}),
    ("context", {"language": "en\x00"}),
    ("context", {"extensions": {"http://e.example/\ud800": 1}}),
    ("result", {"extensions": {EXT: "text \udfff"}}),
    ("result", {"response": "\ud800"}),
])
def test_lone_surrogates_anywhere_and_nul_in_formatted_values_are_refused(field: str, value: Any) -> None:
    _refused(changed(minimal(), **{field: value}))


def test_nul_in_free_text_is_kept_as_text() -> None:
    validate_statement(changed(minimal(), actor__name="A\x00B", result={"response": "\x00"}), "2.0.0")


def test_a_proper_surrogate_pair_is_text() -> None:
    validate_statement(changed(minimal(), actor__name="Asha \U0001f600"), "2.0.0")


def test_a_huge_unknown_key_is_named_short_and_escaped() -> None:
    message = _refused(changed(minimal(), **{"x\n" * 50_000: 1}))
    assert message.startswith('"x\\nx\\n') and "..." in message


@pytest.mark.parametrize("value", [b"bytes", (1, 2), {1, 2}, object(), 1j])
def test_values_that_are_not_json_are_refused(value: object) -> None:
    _refused(changed(minimal(), result={"extensions": {EXT: value}}))


@pytest.mark.parametrize("where", ["", "actor", "verb.display", "context.extensions", "result.extensions"])
def test_a_key_that_is_not_a_string_is_refused(where: str) -> None:
    stmt: dict[Any, Any] = minimal()
    node = stmt
    for step in [s for s in where.split(".") if s]:
        node = node.setdefault(step, {})
    node[1] = "x"
    if where == "result.extensions":
        node.pop(1)
        node[EXT] = {2: "y"}
    assert "not a string" in _refused(stmt)


def _json_values(keys: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    key_strategy = st.text(max_size=10) if keys is None else keys
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key_strategy, inner, max_size=4),
        max_leaves=25,
    )


@settings(max_examples=300, deadline=None)
@given(body=_json_values(), version=st.sampled_from(BOTH))
def test_any_json_is_answered_with_a_verdict_never_a_crash(body: Any, version: str) -> None:
    try:
        validate_statement(body, version)
    except XapiInvalid as error:
        assert "\n" not in error.message
    else:
        assert isinstance(body, dict) and {"actor", "verb", "object"} <= body.keys()


@settings(max_examples=200, deadline=None)
@given(
    body=st.fixed_dictionaries({"actor": _json_values(st.text(max_size=5) | st.integers()),
                                "verb": _json_values(st.sampled_from(["id", "display", 0])),
                                "object": _json_values(st.sampled_from(["id", "objectType", "definition", 1.5]))}),
    version=st.sampled_from(BOTH),
)
def test_python_values_with_keys_of_any_type_get_a_verdict(body: dict[str, Any], version: str) -> None:
    try:
        validate_statement(body, version)
    except XapiInvalid as error:
        assert "\n" not in error.message


_PATHS = st.sampled_from([
    "id", "actor", "actor.mbox", "actor.name", "actor.objectType", "verb", "verb.id", "verb.display",
    "object", "object.id", "object.definition", "object.definition.name", "object.definition.interactionType",
    "object.definition.choices", "result", "result.score", "result.score.scaled", "result.duration",
    "context", "context.registration", "context.team", "context.contextActivities",
    "context.contextActivities.parent", "context.language", "timestamp", "stored", "authority", "version",
    "attachments", "attachments.0.sha2", "context.contextAgents", "context.contextAgents.0.agent",
])


@settings(max_examples=400, deadline=None)
@given(path=_PATHS, value=_json_values(), version=st.sampled_from(BOTH), base=st.sampled_from(["full", "sub"]))
def test_one_property_replaced_by_anything_gets_a_verdict(path: str, value: Any, version: str, base: str) -> None:
    stmt = for_version(full() if base == "full" else substatement(), version)
    node: Any = stmt
    steps = path.split(".")
    for step in steps[:-1]:
        node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        if not isinstance(node, dict | list):
            return
    if isinstance(node, list):
        return
    node[steps[-1]] = value
    try:
        validate_statement(stmt, version)
    except XapiInvalid as error:
        assert "\n" not in error.message and len(error.message) < 400
    json.dumps(stmt)  # what was validated is still plain JSON
