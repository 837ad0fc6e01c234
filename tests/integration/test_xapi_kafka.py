"""Statements are published like every event: the relay sends StatementStored to ``<prefix>.xapi``,
keyed by statement id, Avro-encoded, with no plaintext personal data; a mapped statement's officer
event goes to the officers' topic as any other."""

from __future__ import annotations

from ledger.config import Settings
from ledger.kafka.relay import Relay
from ledger.store.db import Database
from ledger.write.application import Ledger
from ledger.xapi.store import StatementStore
from tests.integration.kafka_reader import read_topic
from tests.integration.xapi_world import build, lrs_settings, officer_statement, statement


def test_statements_are_relayed_to_the_xapi_topic_sealed(sqlite_settings: Settings, kafka_bootstrap: str,
                                                         topic_prefix: str) -> None:
    settings = lrs_settings(Settings(store=sqlite_settings.store, kafka_bootstrap=kafka_bootstrap,
                                     topic_prefix=topic_prefix))
    build(settings)
    ledger, db = Ledger(settings), Database(settings)
    try:
        stranger = statement()
        stranger["actor"]["name"] = "Octavia Brightwater-Nkemelu"
        enrol = officer_statement("registered")
        for stmt in (stranger, enrol):
            stmt["authority"] = {"objectType": "Agent", "account": {"homePage": "http://x", "name": "lms-a"}}
            stmt["version"] = "2.0.0"
        StatementStore(ledger, settings, lambda: db).store([stranger, enrol], "lms-a")
        Relay(ledger, db, kafka_bootstrap, topic_prefix).run(until_idle=True)
    finally:
        db.close()
        ledger.close()
    messages = read_topic(kafka_bootstrap, f"{topic_prefix}.xapi", 2)
    assert sorted(m.key.decode() for m in messages) == sorted([stranger["id"], enrol["id"]])
    assert {m.record["statement_id"] for m in messages} == {stranger["id"], enrol["id"]}
    for m in messages:
        assert b"Octavia" not in m.value and b"ravi.learner@example.org" not in m.value
    officers = read_topic(kafka_bootstrap, f"{topic_prefix}.officers", 2)
    assert [m.record.get("course_id") for m in officers if m.record.get("course_id")] == ["K-BUD"]
