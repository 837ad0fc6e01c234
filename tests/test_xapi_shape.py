"""Stored statements' shapes: contextActivities as arrays (Data 2.4.6.2), the GET format
parameter with Accept-Language (Communication 2.1.3), agent keys (Data 2.4.2.3) and the
statement comparison rules (Data 2.3.1, IEEE 9274.1.1-2023 4.2.7)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger.xapi.shape import (
    agent_key,
    formatted,
    normalise,
    parse_accept_language,
    pick_language,
    same_statement,
)
from tests.xapi_statements import MBOX, changed, full, minimal, substatement

GROUP = {"objectType": "Group", "name": "Batch 7", "mbox": "mailto:batch7@example.org",
         "member": [{"name": "A", **MBOX}]}


def test_normalise_returns_every_context_activity_value_as_an_array() -> None:
    stmt = full()
    stmt["object"] = substatement()["object"]
    stored = normalise(stmt)
    activities = stored["context"]["contextActivities"]
    assert activities["parent"] == [{"id": "http://example.org/courses/c-1"}]
    assert activities["grouping"] == [{"id": "http://example.org/programmes/p-1"}]
    assert activities["other"] == []
    assert stored["object"]["context"]["contextActivities"]["parent"] == [{"id": "http://example.org/courses/c-1"}]
    assert stmt["context"]["contextActivities"]["parent"] == {"id": "http://example.org/courses/c-1"}


def test_exact_format_is_the_statement_as_stored() -> None:
    stmt = normalise(full())
    assert formatted(stmt, "exact", ["de"]) == stmt


def test_ids_format_keeps_only_identifiers() -> None:
    stmt = normalise(full())
    stmt["object"] = substatement()["object"]
    stmt["object"]["actor"] = copy.deepcopy(GROUP)
    stmt["context"]["team"] = {"objectType": "Group", "name": "Batch", "member": [{"name": "A", **MBOX}]}
    out = formatted(stmt, "ids", [])
    assert out["actor"] == {"objectType": "Agent", "mbox": "mailto:asha@example.org"}
    assert out["verb"] == {"id": "http://adlnet.gov/expapi/verbs/completed"}
    assert out["object"]["actor"] == {"objectType": "Group", "mbox": "mailto:batch7@example.org"}
    assert out["object"]["verb"] == {"id": "http://adlnet.gov/expapi/verbs/attempted"}
    assert out["object"]["object"] == {"id": "http://example.org/courses/c-1"}
    assert out["context"]["team"] == {"objectType": "Group", "member": [dict(MBOX)]}
    assert out["context"]["instructor"] == {"account": {"homePage": "https://lms.example.org", "name": "t-9"}}
    assert out["context"]["contextActivities"]["grouping"] == [{"id": "http://example.org/programmes/p-1"}]
    assert out["context"]["contextAgents"][0]["agent"] == {"openid": "https://openid.example.org/asha"}
    assert out["context"]["statement"] == stmt["context"]["statement"]
    assert out["result"] == stmt["result"] and out["id"] == stmt["id"]
    assert out["authority"] == stmt["authority"]
    assert stmt["actor"]["name"] == "Asha Rao"  # the stored statement is untouched


def test_canonical_format_keeps_one_language_chosen_by_accept_language() -> None:
    stmt = normalise(full())
    stmt["verb"]["display"] = {"en-US": "completed", "en-GB": "completed (GB)", "hi": "पूर्ण"}
    stmt["context"]["contextActivities"]["category"][0]["definition"] = {
        "name": {"en-US": "cmi5", "en-GB": "cmi5 GB"}, "description": {"en-US": "d", "en-GB": "d GB"}}
    out = formatted(stmt, "canonical", parse_accept_language("en-GB,en;q=0.8"))
    assert out["verb"]["display"] == {"en-GB": "completed (GB)"}
    category = out["context"]["contextActivities"]["category"][0]["definition"]
    assert category == {"name": {"en-GB": "cmi5 GB"}, "description": {"en-GB": "d GB"}}
    definition = out["object"]["definition"]
    assert definition["name"] == {"en-US": "Question 1"}  # no en-GB: a tag of "en" is next
    assert all(len(c["description"]) == 1 for c in definition["choices"])
    assert out["actor"] == stmt["actor"]  # Agents and Groups as in "exact"
    hindi = formatted(stmt, "canonical", ["hi-IN", "en"])
    assert hindi["verb"]["display"] == {"hi": "पूर्ण"}
    assert hindi["object"]["definition"]["name"] == {"hi-IN": "प्रश्न 1"}


def test_canonical_format_reaches_into_a_substatement() -> None:
    stmt = normalise(substatement())
    stmt["object"]["verb"]["display"] = {"en-US": "attempted", "fr": "tenté"}
    stmt["object"]["object"]["definition"] = {"name": {"en-US": "A", "fr": "B"}}
    out = formatted(stmt, "canonical", ["fr"])
    assert out["object"]["verb"]["display"] == {"fr": "tenté"}
    assert out["object"]["object"]["definition"]["name"] == {"fr": "B"}


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="format"):
        formatted(minimal(), "full", [])


@pytest.mark.parametrize(("header", "ranges"), [
    (None, []), ("", []), ("en-US", ["en-US"]),
    ("en-US,en;q=0.8", ["en-US", "en"]),
    ("fr;q=0.5, de, *;q=0.1", ["de", "fr", "*"]),
    ("da, en-gb;q=0.8, en;q=0.7", ["da", "en-gb", "en"]),
    ("de;q=0, en", ["en"]),
    ("en;q=abc, fr", ["fr"]),
    ("en;q=1.5, fr;q=1", ["fr"]),
    ("  , ;q=1, en_US, hi", ["hi"]),
    ("a" * 20 + ", en", ["en"]),
])
def test_accept_language_ranges_in_order_of_preference(header: str | None, ranges: list[str]) -> None:
    assert parse_accept_language(header) == ranges


@pytest.mark.parametrize(("keys", "ranges", "chosen"), [
    (["en-US", "en-GB"], ["en-GB"], "en-GB"),
    (["en-US", "en-GB"], ["EN-gb"], "en-GB"),
    (["de", "en-US"], ["en"], "en-US"),
    (["de", "en"], ["en-GB"], "en"),
    (["de", "fr"], ["en"], "de"),
    (["de", "fr"], ["*"], "de"),
    (["de", "fr"], ["ja", "fr"], "fr"),
    (["de", "fr"], [], "de"),
])
def test_picking_a_language(keys: list[str], ranges: list[str], chosen: str) -> None:
    assert pick_language({key: key for key in keys}, ranges) == chosen
    assert pick_language({}, ranges) is None


@pytest.mark.parametrize(("agent", "key"), [
    ({"mbox": "mailto:Asha@Example.ORG"}, "mbox:mailto:Asha@example.org"),
    ({"objectType": "Agent", "name": "x", "mbox": "mailto:a@b.example"}, "mbox:mailto:a@b.example"),
    ({"mbox_sha1sum": "CD9B00A5611F94EAA7B1661EDAB976068E364975"}, "mbox_sha1sum:cd9b00a5611f94eaa7b1661edab976068e364975"),
    ({"openid": "https://openid.example.org/A"}, "openid:https://openid.example.org/A"),
    ({"account": {"homePage": "https://ledger.example.org", "name": "OFF-1"}}, "account:https://ledger.example.org|OFF-1"),
    (GROUP, "mbox:mailto:batch7@example.org"),
    ({"objectType": "Group", "member": [MBOX]}, None),
    ("mailto:a@b.example", None),
    ({"account": {"homePage": "https://x.example"}}, None),
])
def test_agent_key_is_the_identifier_as_one_string(agent: Any, key: str | None) -> None:
    assert agent_key(agent) == key


def _stored(stmt: dict[str, Any]) -> dict[str, Any]:
    """What the LRS kept: normalised, with the properties it assigns."""
    out = normalise(stmt)
    out.update(stored="2024-05-01T04:30:01.000Z", version="2.0.0",
               authority={"account": {"homePage": "https://ledger.example.org", "name": "lrs-a"}})
    out.setdefault("timestamp", "2024-05-01T04:30:01.000Z")
    out.setdefault("id", "fd41c918-b88b-4b20-a0a5-a4c32391aaa0")
    return out


SAME: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("assigned properties", minimal(), _stored(minimal())),
    ("timestamp in another zone", changed(minimal(), timestamp="2024-05-01T10:00:00.123+05:30"),
     changed(minimal(), timestamp="2024-05-01T04:30:00.123Z")),
    ("timestamp beyond milliseconds", changed(minimal(), timestamp="2024-05-01T04:30:00.1234Z"),
     changed(minimal(), timestamp="2024-05-01T04:30:00.1239Z")),
    ("group members in another order",
     changed(minimal(), actor={"objectType": "Group", "member": [MBOX, {"openid": "http://o.example/b"}]}),
     changed(minimal(), actor={"objectType": "Group", "member": [{"openid": "http://o.example/b"}, MBOX]})),
    ("mbox domain case", changed(minimal(), actor={"mbox": "mailto:Asha@EXAMPLE.org"}),
     changed(minimal(), actor={"mbox": "mailto:Asha@example.org"})),
    ("verb display", changed(minimal(), verb__display={"en-US": "done"}), minimal()),
    ("activity definition", changed(minimal(), object__definition={"name": {"en": "A"}}), minimal()),
    ("one context activity or an array", changed(minimal(), context={"contextActivities": {"parent": {"id": "http://a.example"}}}),
     changed(minimal(), context={"contextActivities": {"parent": [{"id": "http://a.example"}]}})),
    ("duration beyond 0.01 s", changed(minimal(), result={"duration": "PT1.2345S"}),
     changed(minimal(), result={"duration": "PT1.23S"})),
    ("registration case", changed(minimal(), context={"registration": "EC531277-B57B-4C15-8D91-D292C5B2B8F7"}),
     changed(minimal(), context={"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7"})),
    ("attachment digest case", full(), changed(full(), attachments__0__sha2=full()["attachments"][0]["sha2"].upper())),
    ("agent objectType implied", minimal(), changed(minimal(), actor={"objectType": "Agent", **MBOX})),
    ("numbers 1 and 1.0", changed(minimal(), result={"score": {"raw": 1}}), changed(minimal(), result={"score": {"raw": 1.0}})),
]

DIFFERENT: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("verb id", minimal(), changed(minimal(), verb__id="http://adlnet.gov/expapi/verbs/passed")),
    ("object id", minimal(), changed(minimal(), object__id="http://example.org/courses/c-2")),
    ("actor", minimal(), changed(minimal(), actor={"mbox": "mailto:other@example.org"})),
    ("actor name", minimal(), changed(minimal(), actor__name="Asha")),
    ("mbox local part case", changed(minimal(), actor={"mbox": "mailto:Asha@example.org"}),
     changed(minimal(), actor={"mbox": "mailto:asha@example.org"})),
    ("result", changed(minimal(), result={"success": True}), changed(minimal(), result={"success": False})),
    ("result present", minimal(), changed(minimal(), result={"completion": True})),
    ("timestamp instant", changed(minimal(), timestamp="2024-05-01T04:30:00Z"),
     changed(minimal(), timestamp="2024-05-01T04:30:01Z")),
    ("duration", changed(minimal(), result={"duration": "PT1H"}), changed(minimal(), result={"duration": "PT60M"})),
    ("extension value", changed(minimal(), context={"extensions": {"http://e.example/x": 1}}),
     changed(minimal(), context={"extensions": {"http://e.example/x": 2}})),
    ("context activity order", changed(minimal(), context={"contextActivities": {"parent": [{"id": "http://a.example"}, {"id": "http://b.example"}]}}),
     changed(minimal(), context={"contextActivities": {"parent": [{"id": "http://b.example"}, {"id": "http://a.example"}]}})),
    ("substatement timestamp", substatement(), changed(substatement(), object__timestamp="2024-05-01T10:00:01Z")),
    ("substatement verb", substatement(), changed(substatement(), object__verb__id="http://adlnet.gov/expapi/verbs/failed")),
    ("attachment", full(), changed(full(), attachments__0__length=1)),
]


@pytest.mark.parametrize(("a", "b"), [pytest.param(a, b, id=i) for i, a, b in SAME])
def test_differences_the_exceptions_allow_are_ignored(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert same_statement(a, b) and same_statement(b, a)
    assert same_statement(_stored(a), b)


@pytest.mark.parametrize(("a", "b"), [pytest.param(a, b, id=i) for i, a, b in DIFFERENT])
def test_every_other_difference_counts(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert not same_statement(a, b) and not same_statement(b, a)
    assert not same_statement(_stored(a), b)
