"""Request parameters are validated as the same types are in statements (xAPI 1.0.3
Data 2.2.s4.b4; Communication 2.1.3 and 2.3-2.7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ledger.xapi.errors import XapiInvalid
from ledger.xapi.params import agent_param, id_param, instant_param, iri_param, uuid_param


def test_verb_and_activity_parameters_are_iris() -> None:
    assert iri_param("verb", "http://adlnet.gov/expapi/verbs/completed") == "http://adlnet.gov/expapi/verbs/completed"
    for bad in ("not.a.valid.iri.com/verb", "", "http://a b", "http://a/\ud800"):
        with pytest.raises(XapiInvalid, match="^verb: "):
            iri_param("verb", bad)


def test_uuid_parameters() -> None:
    assert uuid_param("statementId", "FD41C918-B88B-4B20-A0A5-A4C32391AAA0") == "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"
    for bad in ("wrong", "", "fd41c918-b88b-4b20-a0a5-a4c32391aaa0 "):
        with pytest.raises(XapiInvalid, match="^registration: "):
            uuid_param("registration", bad)


def test_since_and_until_are_timestamps() -> None:
    expected = datetime(2024, 5, 1, 4, 30, tzinfo=UTC)
    assert instant_param("since", "2024-05-01T10:00:00+05:30", "2.0.0") == expected
    assert instant_param("since", "2024-05-01T04:30:00", "1.0.3") == expected
    for bad, version in (("2024-05-01T04:30:00", "2.0.0"), ("yesterday", "1.0.3"), ("2024-05-01T04:30:00-00:00", "1.0.3")):
        with pytest.raises(XapiInvalid, match="^until: "):
            instant_param("until", bad, version)


@pytest.mark.parametrize("good", [
    '{"mbox": "mailto:a@example.org"}',
    '{"objectType": "Agent", "name": "A", "account": {"homePage": "http://h.example", "name": "a"}}',
    '{"objectType": "Group", "openid": "http://g.example/1"}',
    {"mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975"},
])
def test_agent_parameters_are_agents_or_identified_groups(good: str | dict[str, str]) -> None:
    found = agent_param("agent", good)
    assert found == (json.loads(good) if isinstance(good, str) else good)


@pytest.mark.parametrize(("bad", "message"), [
    ("wrong", "^agent: must be the JSON"),
    ("[1]", "^agent: must be the JSON"),
    ('{"mbox": "a@example.org"}', r'^agent\.mbox: '),
    ('{"name": "A"}', "^agent: an Agent must have"),
    ('{"mbox": "mailto:a@example.org", "openid": "http://o.example"}', "^agent: must have exactly one"),
    ('{"objectType": "Group", "member": [{"mbox": "mailto:a@example.org"}]}', "^agent: an anonymous Group"),
    ('{"mbox": "mailto:a@example.org", "extra": 1}', r"^agent\.extra: "),
    ('{"mbox": NaN}', "^agent: must be the JSON"),
    ('{"n": ' + "9" * 5000 + "}", "^agent: must be the JSON"),
    ("[" * 100_000 + "]" * 100_000, "^agent: too long"),
    ("[" * 20_000 + "]" * 20_000, "^agent: must be the JSON"),
    ('{"mbox": "mailto:a\\ud800@example.org"}', r"^agent\.mbox: "),
])
def test_malformed_agent_parameters_are_refused(bad: str, message: str) -> None:
    with pytest.raises(XapiInvalid, match=message):
        agent_param("agent", bad)


def test_a_document_agent_may_be_required_to_be_an_agent() -> None:
    with pytest.raises(XapiInvalid, match="^agent: must be an Agent, not a Group"):
        agent_param("agent", '{"objectType": "Group", "openid": "http://g.example/1"}', group=False)


def test_document_ids_are_non_empty_text() -> None:
    assert id_param("stateId", "bookmark 1") == "bookmark 1"
    for bad in ("", "x\udc00"):
        with pytest.raises(XapiInvalid, match="^stateId: "):
            id_param("stateId", bad)
