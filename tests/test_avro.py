"""The event contract: schemas, framing, round trips and evolution rules."""

from __future__ import annotations

import json
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.events import OFFICER_EVENTS, REFERENCE_EVENTS, XAPI_EVENTS
from ledger.generate import generate_lines
from ledger.kafka.codec import SCHEMAS, Codec, DecodeError, crc64_avro, current_schema_files
from ledger.kafka.compat import check_full_transitive, problems
from ledger.write.application import Ledger
from tests.helpers import correct_and_retract


def copy_schemas(to: Path, src: Traversable = SCHEMAS) -> Path:
    """A writable copy of the packaged schema tree (which may not be a plain directory)."""
    to.mkdir()
    for item in src.iterdir():
        if item.is_dir():
            copy_schemas(to / item.name, item)
        elif item.is_file():
            (to / item.name).write_bytes(item.read_bytes())
    return to


def test_crc64_avro_matches_the_specification_vector() -> None:
    # The Avro specification's fingerprint of the schema "null".
    assert crc64_avro(b'"null"') == 0x63DD24E7CC258F8A


def test_there_is_one_schema_per_event_named_after_it() -> None:
    names = {name for name, _ in current_schema_files(SCHEMAS)}
    # Besides the events: the signed checkpoints published on <prefix>.checkpoints.
    assert names == set(OFFICER_EVENTS) | set(REFERENCE_EVENTS) | set(XAPI_EVENTS) | {"Checkpoint"}
    namespaces = set()
    for name, path in current_schema_files(SCHEMAS):
        schema = json.loads(path.read_text())
        assert schema["name"] == name
        if name != "Checkpoint":
            namespaces.add(schema["namespace"])
        if name in OFFICER_EVENTS:
            fields = [f["name"] for f in schema["fields"]]
            assert fields[:5] == ["event_id", "officer_id", "version", "occurred_at", "recorded_at"]
    assert len(namespaces) == 1


def test_every_stored_event_round_trips_through_the_wire_format(tmp_path: Path) -> None:
    ledger = Ledger(Settings(store=f"sqlite:///{tmp_path / 'l.db'}"))
    list(ledger.ingest(generate_lines(60, seed=5)))
    ledger.erase("OFF-0000001", reason="test")
    correct_and_retract(ledger, "OFF-0000003")
    codec = Codec()
    seen = set()
    for _, event in ledger.iter_log():
        message = codec.encode(event)
        assert message[:2] == b"\xc3\x01"
        assert codec.decode(message) == event
        seen.add(event["type"])
    assert seen == set(OFFICER_EVENTS) | set(REFERENCE_EVENTS)


def test_a_corrupt_message_is_a_decode_error() -> None:
    codec = Codec()
    with pytest.raises(DecodeError):
        codec.decode(b"not avro at all")
    with pytest.raises(DecodeError):
        codec.decode(b"\xc3\x01" + b"\x00" * 8 + b"\x02")
    good = codec.encode({"type": "CourseEnrolled", "event_id": "e", "officer_id": "O1", "version": 2,
                         "occurred_at": "2025-04-01T00:00:00Z", "recorded_at": "2025-04-01T00:00:00Z",
                         "course_id": "K1"})
    with pytest.raises(DecodeError):
        codec.decode(good[:14])


def test_every_published_version_reads_and_is_read_by_every_other() -> None:
    assert check_full_transitive() == []


def test_adding_a_field_without_default_is_caught(tmp_path: Path) -> None:
    schemas = copy_schemas(tmp_path / "schemas")
    path = schemas / "CourseEnrolled.avsc"
    careless = json.loads(path.read_text())
    careless["fields"].append({"name": "cohort", "type": "string"})
    path.write_text(json.dumps(careless))
    found = check_full_transitive(schemas)
    assert any("cohort" in p and "no default" in p for p in found), found
    assert any("trial read failed" in p for p in found), found


def test_adding_a_field_with_default_is_compatible(tmp_path: Path) -> None:
    schemas = copy_schemas(tmp_path / "schemas")
    path = schemas / "CourseEnrolled.avsc"
    evolved = json.loads(path.read_text())
    evolved["fields"].append({"name": "cohort", "type": ["null", "string"], "default": None})
    path.write_text(json.dumps(evolved))
    assert check_full_transitive(schemas) == []
    # And a message written with the old version decodes with the new current schema.
    old = Codec(SCHEMAS)
    new = Codec(schemas)
    event = {"type": "CourseEnrolled", "event_id": "e", "officer_id": "O1", "version": 2,
             "occurred_at": "2025-04-01T00:00:00Z", "recorded_at": "2025-04-01T00:00:00Z", "course_id": "K1"}
    assert new.decode(old.encode(event)) == {**event, "cohort": None}


def test_removing_an_enum_symbol_is_caught() -> None:
    current = json.loads((SCHEMAS / "CompetencyDefined.avsc").read_text())
    narrowed = json.loads(json.dumps(current))
    for field in narrowed["fields"]:
        if field["name"] == "kind":
            field["type"]["symbols"] = ["behavioural", "functional"]
    assert problems(current, narrowed)
