"""validate_statement against each MUST of the xAPI statement data model.

Written from xAPI 1.0.3 "Data" (sections in the test ids) and IEEE 9274.1.1-2023 (xAPI
2.0): every case changes one property of a valid statement and names the property path
the rejection must point at; valid variants must pass under both versions.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ledger.xapi.errors import XapiInvalid
from ledger.xapi.validate import validate_statement
from tests.xapi_statements import (
    DELETE,
    MBOX,
    changed,
    for_version,
    full,
    full_103,
    minimal,
    set_path,
    substatement,
)

BOTH = ("1.0.3", "2.0.0")
ANON_GROUP = {"objectType": "Group", "member": [MBOX]}
OAUTH_GROUP = {"objectType": "Group", "member": [
    {"account": {"homePage": "http://example.org/oauth", "name": "consumer-1"}}, MBOX]}
REF = {"objectType": "StatementRef", "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"}
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def rejects(stmt: object, version: str, path: str) -> None:
    with pytest.raises(XapiInvalid) as caught:
        validate_statement(stmt, version)
    message = caught.value.message
    assert message.startswith(path + ":"), message
    assert "\n" not in message and len(message) < 400


@pytest.mark.parametrize("version", BOTH)
def test_the_examples_of_every_property_are_valid(version: str) -> None:
    validate_statement(minimal(), version)
    validate_statement(substatement(), version)
    validate_statement(full() if version == "2.0.0" else full_103(), version)


# (id, the statement, the path the rejection names)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    # 2.2.s2.b3: actor, verb and object are required.
    ("2.2 actor required", changed(minimal(), actor=DELETE), "actor"),
    ("2.2 verb required", changed(minimal(), verb=DELETE), "verb"),
    ("2.2 object required", changed(minimal(), object=DELETE), "object"),
    # 2.2.s4.b1.b1: no null values outside extensions.
    ("2.2 null name", changed(minimal(), actor__name=None), "actor.name"),
    ("2.2 null display value", changed(minimal(), verb__display={"en-US": None}), "verb.display.en-US"),
    ("2.2 null registration", changed(minimal(), context={"registration": None}), "context.registration"),
    ("2.2 null result", changed(minimal(), result=None), "result"),
    # 2.2.s4.b1.b2-b3: the wrong JSON type, even a string holding a number or boolean.
    ("2.2 string score", changed(minimal(), result={"score": {"raw": "95"}}), "result.score.raw"),
    ("2.2 string boolean", changed(minimal(), result={"success": "true"}), "result.success"),
    ("2.2 boolean is not a number", changed(minimal(), result={"score": {"max": True}}), "result.score.max"),
    ("2.2 number is not a boolean", changed(minimal(), result={"completion": 1}), "result.completion"),
    ("2.2 number as string", changed(minimal(), actor__name=7), "actor.name"),
    ("2.2 array as object", changed(minimal(), verb=[]), "verb"),
    # 2.2.s4.b1.b4: format-following values, the empty string included.
    ("2.2 empty verb id", changed(minimal(), verb__id=""), "verb.id"),
    ("2.2 empty mbox", changed(minimal(), actor__mbox=""), "actor.mbox"),
    ("2.2 empty uuid", changed(minimal(), id=""), "id"),
    # 2.2.s4.b1.b5 / b7: keys in the wrong case and keys the spec does not allow.
    ("2.2 key case", changed(minimal(), Actor=MBOX), "Actor"),
    ("2.2 key case inner", changed(minimal(), verb__Display={"en-US": "x"}), "verb.Display"),
    ("2.2 unknown top key", changed(minimal(), extra=1), "extra"),
    ("2.2 unknown agent key", changed(minimal(), actor__age=3), "actor.age"),
    ("2.2 unknown result key", changed(minimal(), result={"grade": "A"}), "result.grade"),
    ("2.2 unknown score key", changed(minimal(), result={"score": {"percent": 5}}), "result.score.percent"),
    # 2.2.s4.b1.b6: enumerated values in their exact case.
    ("2.2 objectType case", changed(minimal(), actor__objectType="agent"), "actor.objectType"),
    ("2.2 interactionType case", changed(full(), object__definition__interactionType="Choice"),
     "object.definition.interactionType"),
    ("2.2 StatementRef case", changed(minimal(), object={"objectType": "statementref", "id": REF["id"]}),
     "object.objectType"),
    # 2.2.s4.b1.b8: IRIs and IRLs with a scheme.
    ("2.2 verb id scheme", changed(minimal(), verb__id="adlnet.gov/expapi/verbs/completed"), "verb.id"),
    ("2.2 activity id scheme", changed(minimal(), object__id="example.org/c-1"), "object.id"),
    ("2.2 openid scheme", changed(minimal(), actor={"openid": "openid.example.org/a"}), "actor.openid"),
    ("2.2 homePage scheme", changed(minimal(), actor={"account": {"homePage": "www.example.org", "name": "a"}}),
     "actor.account.homePage"),
    ("2.2 type scheme", changed(full(), object__definition__type="example.org/t"), "object.definition.type"),
    ("2.2 moreInfo scheme", changed(full(), object__definition__moreInfo="example.org/i"), "object.definition.moreInfo"),
    ("2.2 bad scheme", changed(minimal(), verb__id="ab=c://example.org/v"), "verb.id"),
    ("2.2 space in IRI", changed(minimal(), verb__id="http://example.org/a b"), "verb.id"),
    # 2.2.s4.b2: language map keys are RFC 5646 tags.
    ("2.2 language key", changed(minimal(), verb__display={"something": "x"}), "verb.display.something"),
    ("2.2 language key underscore", changed(minimal(), verb__display={"en_US": "x"}), "verb.display.en_US"),
    ("2.2 language map type", changed(minimal(), verb__display="completed"), "verb.display"),
    # 2.4.1: the id is a UUID.
    ("2.4.1 id not uuid", changed(minimal(), id="fd41c918-b88b-4b20-a0a5"), "id"),
    ("2.4.1 id too long", changed(minimal(), id="AA97B177-9383-4934-8543-0F91A7A028368"), "id"),
    ("2.4.1 id non hex", changed(minimal(), id="MA97B177-9383-4934-8543-0F91A7A02836"), "id"),
    ("2.4.1 id number", changed(minimal(), id=12345), "id"),
    # 2.4.2.1: an Agent has exactly one IFI; 2.4.2.3 their formats.
    ("2.4.2.1 agent no IFI", changed(minimal(), actor={"name": "x"}), "actor"),
    ("2.4.2.1 agent two IFIs", changed(minimal(), actor={**MBOX, "openid": "http://o.example.org/a"}), "actor"),
    ("2.4.2.3 mbox without mailto", changed(minimal(), actor__mbox="learner@example.org"), "actor.mbox"),
    ("2.4.2.3 mbox not an address", changed(minimal(), actor__mbox="mailto:learner"), "actor.mbox"),
    ("2.4.2.3 sha1 length", changed(minimal(), actor={"mbox_sha1sum": "cd9b00a5611f"}), "actor.mbox_sha1sum"),
    ("2.4.2.3 sha1 not hex", changed(minimal(), actor={"mbox_sha1sum": "z" * 40}), "actor.mbox_sha1sum"),
    ("2.4.2.3 openid number", changed(minimal(), actor={"openid": 1}), "actor.openid"),
    ("2.4.2.3 null IFI", changed(minimal(), actor={"mbox": None}), "actor.mbox"),
    # 2.4.2.4: an account has homePage and name, nothing else.
    ("2.4.2.4 account name required", changed(minimal(), actor={"account": {"homePage": "http://a.example"}}),
     "actor.account.name"),
    ("2.4.2.4 account homePage required", changed(minimal(), actor={"account": {"name": "a"}}),
     "actor.account.homePage"),
    ("2.4.2.4 account name string", changed(minimal(), actor={"account": {"homePage": "http://a.example", "name": {}}}),
     "actor.account.name"),
    ("2.4.2.4 account extra key", changed(minimal(), actor={"account": {"homePage": "http://a.example", "name": "a", "id": 1}}),
     "actor.account.id"),
    # 2.4.2.2: Groups.
    ("2.4.2.2 anonymous group needs member", changed(minimal(), actor={"objectType": "Group", "name": "g"}),
     "actor.member"),
    ("2.4.2.2 member not array", changed(minimal(), actor={"objectType": "Group", "member": MBOX}), "actor.member"),
    ("2.4.2.2 no group in anonymous group", changed(minimal(), actor={"objectType": "Group", "member": [ANON_GROUP]}),
     "actor.member[0].objectType"),
    ("2.4.2.2 no group in identified group",
     changed(minimal(), actor={"objectType": "Group", "openid": "http://g.example", "member": [ANON_GROUP]}),
     "actor.member[0].objectType"),
    ("2.4.2.2 identified group one IFI",
     changed(minimal(), actor={"objectType": "Group", "openid": "http://g.example", **MBOX}), "actor"),
    ("2.4.2.2 member needs IFI", changed(minimal(), actor={"objectType": "Group", "member": [{"name": "x"}]}),
     "actor.member[0]"),
    ("2.4.2 actor objectType", changed(minimal(), actor__objectType="Person"), "actor.objectType"),
    ("2.4.2 actor objectType number", changed(minimal(), actor__objectType=123), "actor.objectType"),
    # 2.4.3: a verb has an IRI id and a language map display.
    ("2.4.3 verb id required", changed(minimal(), verb={"display": {"en-US": "x"}}), "verb.id"),
    ("2.4.3 verb id IRI", changed(minimal(), verb__id="completed"), "verb.id"),
    ("2.4.3 display values strings", changed(minimal(), verb__display={"en-US": ["x"]}), "verb.display.en-US"),
    ("2.4.3 verb extra key", changed(minimal(), verb__name="x"), "verb.name"),
    # 2.4.4: objects.
    ("2.4.4 objectType unknown", changed(minimal(), object__objectType="Thing"), "object.objectType"),
    ("2.4.4.1 activity id required", changed(minimal(), object={"objectType": "Activity"}), "object.id"),
    ("2.4.4.1 agent as object needs objectType", changed(minimal(), object=MBOX), "object.mbox"),
    ("2.4.4.1 definition object", changed(minimal(), object__definition="x"), "object.definition"),
    ("2.4.4.1 definition extra", changed(minimal(), object__definition={"title": {}}), "object.definition.title"),
    ("2.4.4.1 name language map", changed(full(), object__definition__name={"en-US": 1}), "object.definition.name.en-US"),
    ("2.4.4.1 interactionType value", changed(full(), object__definition__interactionType="essay"),
     "object.definition.interactionType"),
    ("2.4.4.1 interactionType needed for pattern",
     changed(full(), object__definition__interactionType=DELETE), "object.definition.interactionType"),
    ("2.4.4.1 pattern array of strings", changed(full(), object__definition__correctResponsesPattern=[1]),
     "object.definition.correctResponsesPattern[0]"),
    ("2.4.4.1 pattern not a string", changed(full(), object__definition__correctResponsesPattern="golf"),
     "object.definition.correctResponsesPattern"),
    ("2.4.4.1 component list of another type", changed(full(), object__definition__scale=[{"id": "1"}]),
     "object.definition.scale"),
    ("2.4.4.1 component ids distinct",
     changed(full(), object__definition__choices=[{"id": "a"}, {"id": "a"}]), "object.definition.choices[1].id"),
    ("2.4.4.1 component id required", changed(full(), object__definition__choices=[{"description": {"en": "a"}}]),
     "object.definition.choices[0].id"),
    ("2.4.4.1 component extra key", changed(full(), object__definition__choices=[{"id": "a", "value": 1}]),
     "object.definition.choices[0].value"),
    ("2.4.4.1 component description", changed(full(), object__definition__choices=[{"id": "a", "description": "A"}]),
     "object.definition.choices[0].description"),
    ("4.1 extension key IRI", changed(full(), object__definition__extensions={"difficulty": 1}),
     "object.definition.extensions.difficulty"),
    ("4.1 extensions object", changed(full(), result__extensions=[1]), "result.extensions"),
    ("4.1 context extension key", changed(minimal(), context={"extensions": {"not.valid.com/x": 1}}),
     "context.extensions.not.valid.com/x"),
    # 2.4.4.3: StatementRef and SubStatement.
    ("2.4.4.3 StatementRef id uuid", changed(minimal(), object={"objectType": "StatementRef", "id": "x"}), "object.id"),
    ("2.4.4.3 StatementRef id required", changed(minimal(), object={"objectType": "StatementRef"}), "object.id"),
    ("2.4.4.3 StatementRef extra", changed(minimal(), object={**REF, "definition": {}}), "object.definition"),
    ("2.4.4.3 SubStatement no id", changed(substatement(), object__id=REF["id"]), "object.id"),
    ("2.4.4.3 SubStatement no stored", changed(substatement(), object__stored="2024-05-01T10:00:00Z"), "object.stored"),
    ("2.4.4.3 SubStatement no version", changed(substatement(), object__version="1.0.0"), "object.version"),
    ("2.4.4.3 SubStatement no authority", changed(substatement(), object__authority=MBOX), "object.authority"),
    ("2.4.4.3 SubStatement not nested", changed(substatement(), object__object=substatement()["object"]),
     "object.object.objectType"),
    ("2.4.4.3 SubStatement validated", changed(substatement(), object__verb__id="attempted"), "object.verb.id"),
    ("2.4.4.3 SubStatement needs actor", changed(substatement(), object__actor=DELETE), "object.actor"),
    # 2.4.5: result and score.
    ("2.4.5.1 scaled above 1", changed(minimal(), result={"score": {"scaled": 1.01}}), "result.score.scaled"),
    ("2.4.5.1 scaled below -1", changed(minimal(), result={"score": {"scaled": -1.5}}), "result.score.scaled"),
    ("2.4.5.1 raw below min", changed(minimal(), result={"score": {"raw": -1, "min": 0}}), "result.score.raw"),
    ("2.4.5.1 raw above max", changed(minimal(), result={"score": {"raw": 101, "max": 100}}), "result.score.raw"),
    ("2.4.5.1 min below max", changed(minimal(), result={"score": {"min": 10, "max": 10}}), "result.score.max"),
    ("2.4.5 response string", changed(minimal(), result={"response": 5}), "result.response"),
    ("4.6 duration format", changed(minimal(), result={"duration": "1 hour"}), "result.duration"),
    ("4.6 duration alternative format", changed(minimal(), result={"duration": "P0000-00-01T01:00:00"}), "result.duration"),
    ("4.6 duration weeks alone", changed(minimal(), result={"duration": "P4W1D"}), "result.duration"),
    ("4.6 duration number", changed(minimal(), result={"duration": 3600}), "result.duration"),
    ("4.6 duration T alone", changed(minimal(), result={"duration": "P1DT"}), "result.duration"),
    # 2.4.6: context.
    ("2.4.6 registration uuid", changed(minimal(), context={"registration": "r-1"}), "context.registration"),
    ("2.4.6 instructor agent", changed(minimal(), context={"instructor": {"name": "t"}}), "context.instructor"),
    ("2.4.6 team is a Group", changed(minimal(), context={"team": MBOX}), "context.team.objectType"),
    ("2.4.6 revision only for activity", changed(substatement(), object={**MBOX, "objectType": "Agent"},
                                                 context={"revision": "r1"}), "context.revision"),
    ("2.4.6 platform only for activity", changed(minimal(), object=REF, context={"platform": "p"}), "context.platform"),
    ("2.4.6 SubStatement platform", changed(substatement(), object__object=MBOX | {"objectType": "Agent"}),
     "object.context.platform"),
    ("2.4.6 revision string", changed(minimal(), context={"revision": 2}), "context.revision"),
    ("2.4.6 language tag", changed(minimal(), context={"language": "english!"}), "context.language"),
    ("2.4.6 statement is StatementRef", changed(minimal(), context={"statement": {"id": REF["id"]}}),
     "context.statement.objectType"),
    ("2.4.6 unknown context key", changed(minimal(), context={"location": "x"}), "context.location"),
    ("2.4.6.2 contextActivities key", changed(minimal(), context={"contextActivities": {"parents": []}}),
     "context.contextActivities.parents"),
    ("2.4.6.2 contextActivities activity", changed(minimal(), context={"contextActivities": {"parent": [{"name": "x"}]}}),
     "context.contextActivities.parent[0].name"),
    ("2.4.6.2 contextActivities value", changed(minimal(), context={"contextActivities": {"other": "http://a.example"}}),
     "context.contextActivities.other"),
    # 2.4.7 / 4.5: timestamps.
    ("4.5 timestamp text", changed(minimal(), timestamp="should fail"), "timestamp"),
    ("4.5 timestamp date only US", changed(minimal(), timestamp="01/011/2015"), "timestamp"),
    ("4.5 timestamp -00", changed(minimal(), timestamp="2008-09-15T15:53:00.601-00"), "timestamp"),
    ("4.5 timestamp -0000", changed(minimal(), timestamp="2008-09-15T15:53:00.601-0000"), "timestamp"),
    ("4.5 timestamp -00:00", changed(minimal(), timestamp="2008-09-15T15:53:00.601-00:00"), "timestamp"),
    ("4.5 timestamp month 13", changed(minimal(), timestamp="2008-13-15T15:53:00Z"), "timestamp"),
    ("4.5 timestamp number", changed(minimal(), timestamp=1700000000), "timestamp"),
    ("2.4.8 stored format", changed(minimal(), stored="yesterday"), "stored"),
    ("4.5 SubStatement timestamp", changed(substatement(), object__timestamp="2008-09-15T15:53:00-00:00"),
     "object.timestamp"),
    # 2.4.9: authority.
    ("2.4.9 authority agent", changed(minimal(), authority={"name": "x"}), "authority"),
    ("2.4.9 authority group of one", changed(minimal(), authority={"objectType": "Group", "member": [MBOX]}),
     "authority.member"),
    ("2.4.9 authority group of three",
     changed(minimal(), authority={"objectType": "Group", "member": [MBOX, MBOX, MBOX]}), "authority.member"),
    ("2.4.9 authority identified group",
     changed(minimal(), authority={**OAUTH_GROUP, "openid": "http://g.example"}), "authority"),
    # 2.4.10: version.
    ("2.4.10 version 0.9.9", changed(minimal(), version="0.9.9"), "version"),
    ("2.4.10 version 1.1.0", changed(minimal(), version="1.1.0"), "version"),
    ("2.4.10 version text", changed(minimal(), version="should fail"), "version"),
    ("2.4.10 version number", changed(minimal(), version=1.0), "version"),
    # 2.4.11: attachments.
    ("2.4.11 usageType required", changed(full(), attachments__0__usageType=DELETE), "attachments[0].usageType"),
    ("2.4.11 usageType IRI", changed(full(), attachments__0__usageType="signature"), "attachments[0].usageType"),
    ("2.4.11 display required", changed(full(), attachments__0__display=DELETE), "attachments[0].display"),
    ("2.4.11 display language map", changed(full(), attachments__0__display={"x_y": "s"}), "attachments[0].display.x_y"),
    ("2.4.11 contentType required", changed(full(), attachments__0__contentType=DELETE), "attachments[0].contentType"),
    ("2.4.11 contentType media type", changed(full(), attachments__0__contentType="pdf"), "attachments[0].contentType"),
    ("2.4.11 length required", changed(full(), attachments__0__length=DELETE), "attachments[0].length"),
    ("2.4.11 length integer", changed(full(), attachments__0__length=1.5), "attachments[0].length"),
    ("2.4.11 length string", changed(full(), attachments__0__length="4235"), "attachments[0].length"),
    ("2.4.11 length negative", changed(full(), attachments__0__length=-1), "attachments[0].length"),
    ("2.4.11 sha2 required", changed(full(), attachments__0__sha2=DELETE), "attachments[0].sha2"),
    ("2.4.11 sha2 hex", changed(full(), attachments__0__sha2="not-a-digest"), "attachments[0].sha2"),
    ("2.4.11 fileUrl IRL", changed(full(), attachments__0__fileUrl="files/sig"), "attachments[0].fileUrl"),
    ("2.4.11 attachments array", changed(full(), attachments={}), "attachments"),
    ("2.4.11 attachment extra", changed(full(), attachments__0__data="x"), "attachments[0].data"),
    # 2.3.2: a voiding statement's object is a StatementRef.
    ("2.3.2 voiding needs StatementRef", changed(minimal(), verb__id=VOIDED), "object"),
    ("2.3.2 voiding an agent", changed(minimal(), verb__id=VOIDED, object={**MBOX, "objectType": "Agent"}), "object"),
]


@pytest.mark.parametrize("version", BOTH)
@pytest.mark.parametrize(("stmt", "path"), [pytest.param(s, p, id=i) for i, s, p in INVALID])
def test_an_invalid_statement_is_rejected_naming_the_property(
    stmt: dict[str, Any], path: str, version: str
) -> None:
    rejects(for_version(stmt, version), version, path)


VALID: list[tuple[str, dict[str, Any]]] = [
    ("2.4.2.1 agent by account", changed(minimal(), actor={"account": {"homePage": "http://a.example", "name": "a"}})),
    ("2.4.2.1 agent by sha1", changed(minimal(), actor={"mbox_sha1sum": "CD9B00A5611F94EAA7B1661EDAB976068E364975"})),
    ("2.4.2.1 agent by openid", changed(minimal(), actor={"openid": "https://openid.example.org/a"})),
    ("2.4.2.2 identified group without members", changed(minimal(), actor={"objectType": "Group", **MBOX})),
    ("2.4.2.2 anonymous group with empty member", changed(minimal(), actor={"objectType": "Group", "member": []})),
    ("2.4.4.2 agent as object", changed(minimal(), object={**MBOX, "objectType": "Agent"})),
    ("2.4.4.2 group as object", changed(minimal(), object=ANON_GROUP)),
    ("2.4.4.3 StatementRef object", changed(minimal(), object=REF)),
    ("2.4.4.3 upper-case uuid", changed(minimal(), id="FD41C918-B88B-4B20-A0A5-A4C32391AAA0")),
    ("2.4.4.1 no definition", changed(minimal(), object={"id": "urn:example:activity:1"})),
    ("2.4.4.1 empty pattern", changed(full(), object__definition__correctResponsesPattern=[])),
    ("2.4.4.1 likert scale", changed(full(), object__definition__interactionType="likert",
                                     object__definition__choices=DELETE, object__definition__scale=[{"id": "1"}])),
    ("2.4.4.1 matching lists", changed(full(), object__definition__interactionType="matching",
                                       object__definition__choices=DELETE, object__definition__source=[{"id": "s"}],
                                       object__definition__target=[{"id": "t"}])),
    ("2.4.4.1 performance steps", changed(full(), object__definition__interactionType="performance",
                                          object__definition__choices=DELETE, object__definition__steps=[{"id": "1"}])),
    ("2.4.4.1 same id in two lists", changed(full(), object__definition__interactionType="matching",
                                             object__definition__choices=DELETE, object__definition__source=[{"id": "a"}],
                                             object__definition__target=[{"id": "a"}])),
    ("2.4.5.1 scaled bounds", changed(minimal(), result={"score": {"scaled": -1, "raw": 0, "min": 0, "max": 1}})),
    ("2.4.5.1 raw equal to max", changed(minimal(), result={"score": {"raw": 1.5, "max": 1.5}})),
    ("2.4.6.2 single activity", changed(minimal(), context={"contextActivities": {"other": {"id": "http://a.example"}}})),
    ("4.1 extension values any", changed(minimal(), context={"extensions": {"http://e.example/x": None}})),
    ("4.1 empty extensions", changed(minimal(), result={"extensions": {}})),
    ("4.5 timestamp +00:00", changed(minimal(), timestamp="2008-09-15T15:53:00.601+00:00")),
    ("4.5 timestamp basic format", changed(minimal(), timestamp="20080915T155300Z")),
    ("4.5 timestamp +0530", changed(minimal(), timestamp="2008-09-15T15:53:00.6012345+0530")),
    ("4.5 timestamp in the future", changed(minimal(), timestamp="2999-01-01T00:00:00Z")),
    ("4.6 durations", changed(minimal(), result={"duration": "P3Y1M29DT4H35M59.14S"})),
    ("4.6 duration seconds only", changed(minimal(), result={"duration": "PT16559.14S"})),
    ("4.6 duration weeks", changed(minimal(), result={"duration": "P4W"})),
    ("4.6 duration finer than 0.01 s", changed(minimal(), result={"duration": "PT1.23456S"})),
    ("2.4.10 version 1.0", changed(minimal(), version="1.0")),
    ("2.4.10 version 1.0.9", changed(minimal(), version="1.0.9")),
    ("2.4.9 OAuth authority", changed(minimal(), authority=OAUTH_GROUP)),
    ("2.2 language tags", changed(minimal(), verb__display={"de": "a", "zh-Hant-TW": "b", "sgn-BE-FR": "c",
                                                             "x-private": "d", "tlh": "e", "es-419": "f"})),
    ("2.2 any IRI scheme", changed(minimal(), object__id="urn:uuid:6690e6c9-3ef0-4ed3-8b37-7f3964730bee")),
    ("2.2 IRI with unicode", changed(minimal(), object__id="http://example.org/पाठ्यक्रम/1")),
    ("2.3.2 voiding statement", changed(minimal(), verb__id=VOIDED, object=REF)),
    ("2.2 empty strings in free text", changed(minimal(), actor__name="", result={"response": ""})),
]


@pytest.mark.parametrize("version", BOTH)
@pytest.mark.parametrize("stmt", [pytest.param(s, id=i) for i, s in VALID])
def test_a_valid_variant_is_accepted(stmt: dict[str, Any], version: str) -> None:
    validate_statement(for_version(stmt, version), version)


def test_2_0_context_agents_and_groups_are_checked() -> None:
    base = full()
    for path, value, where in [
        ("context.contextAgents.0.objectType", "Agent", "context.contextAgents[0].objectType"),
        ("context.contextAgents.0.agent", {"name": "x"}, "context.contextAgents[0].agent"),
        ("context.contextAgents.0.agent", {"objectType": "Group", **MBOX}, "context.contextAgents[0].agent.objectType"),
        ("context.contextAgents.0.relevantTypes", [], "context.contextAgents[0].relevantTypes"),
        ("context.contextAgents.0.relevantTypes", ["mentor"], "context.contextAgents[0].relevantTypes[0]"),
        ("context.contextAgents.0.extra", 1, "context.contextAgents[0].extra"),
        ("context.contextAgents", {}, "context.contextAgents"),
        ("context.contextGroups.0.objectType", "contextAgent", "context.contextGroups[0].objectType"),
        ("context.contextGroups.0.group", MBOX, "context.contextGroups[0].group.objectType"),
        ("context.contextGroups.0.relevantTypes", [], "context.contextGroups[0].relevantTypes"),
        ("context.contextGroups.0.relevantTypes", [1], "context.contextGroups[0].relevantTypes[0]"),
    ]:
        stmt = changed(base)
        set_path(stmt, path, value)
        rejects(stmt, "2.0.0", where)
    without_types = changed(base)
    del without_types["context"]["contextAgents"][0]["relevantTypes"]
    validate_statement(without_types, "2.0.0")


def test_1_0_3_knows_no_context_agents_or_groups() -> None:
    rejects(changed(full(), version="1.0.3", context__contextGroups=DELETE), "1.0.3", "context.contextAgents")
    rejects(changed(full(), version="1.0.3", context__contextAgents=DELETE), "1.0.3", "context.contextGroups")


def test_statement_versions_follow_the_request_version() -> None:
    validate_statement(changed(minimal(), version="2.0.0"), "2.0.0")
    validate_statement(changed(minimal(), version="1.0.3"), "2.0.0")
    rejects(changed(minimal(), version="2.0.0"), "1.0.3", "version")
    rejects(changed(minimal(), version="3.0.0"), "2.0.0", "version")


def test_2_0_timestamps_carry_a_time_zone_and_1_0_3_may_omit_it() -> None:
    local = changed(minimal(), timestamp="2024-05-01T10:00:00.000")
    validate_statement(local, "1.0.3")
    rejects(local, "2.0.0", "timestamp")


def test_an_unknown_request_version_and_a_non_object_are_rejected() -> None:
    with pytest.raises(XapiInvalid, match="X-Experience-API-Version"):
        validate_statement(minimal(), "0.95")
    for body in ([minimal()], "statement", None, 5):
        with pytest.raises(XapiInvalid, match=re.escape("statement: must be a JSON object")):
            validate_statement(body, "2.0.0")
