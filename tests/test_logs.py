"""Structured logs: one JSON object per line with ids and never personal data; readable text by default."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ledger.ops import logs


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_logs_are_one_object_per_line_with_time_level_component_message_and_ids(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.configure("projector", "json", stream)
    log = logging.getLogger("ledger.projections")
    log.warning("dead letter at %d", 42, extra={"officer": "OFF-0000042", "position": 42, "partition": 3})
    token = logs.request_id.set("req-1")
    try:
        logging.getLogger("ledger.api").info("answered")
    finally:
        logs.request_id.reset(token)

    first, second = (json.loads(line) for line in _lines(stream))
    assert set(first) == {"time", "level", "component", "logger", "message", "officer", "position", "partition"}
    assert first["time"].endswith("+00:00") and first["level"] == "warning" and first["component"] == "projector"
    assert (first["message"], first["officer"], first["position"]) == ("dead letter at 42", "OFF-0000042", 42)
    assert second["request_id"] == "req-1" and second["logger"] == "ledger.api"


def test_json_logs_never_carry_a_name_or_an_email(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.configure("api", "json", stream)
    log = logging.getLogger("ledger.write.application")
    # A field that is not an id is never emitted; an email in a message or an error is masked.
    log.info("registered", extra={"officer": "OFF-1", "full_name": "Asha Verma", "email": "asha.verma@gov.in"})
    log.info("mail to asha.verma@gov.in bounced")
    try:
        raise ValueError("duplicate key asha.verma@gov.in")
    except ValueError:
        log.exception("could not store")

    lines = _lines(stream)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == 3 and all(line.startswith("{") for line in lines)
    text = stream.getvalue()
    assert "Asha" not in text and "asha.verma" not in text and "@gov.in" not in text
    assert records[0]["officer"] == "OFF-1" and "full_name" not in records[0] and "email" not in records[0]
    assert records[1]["message"] == "mail to <email> bounced"
    assert records[2]["error"] == "ValueError" and "<email>" in records[2]["traceback"]


def test_the_default_is_readable_text_with_ids_as_key_value(restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_LOG_FORMAT", raising=False)
    stream = io.StringIO()
    logs.configure("relay", stream=stream)
    logging.getLogger("ledger.kafka.relay").warning("broker down; retrying from %d", 7, extra={"position": 7})
    logging.getLogger("ledger.kafka.relay").info("to x@y.org")

    first, second = _lines(stream)
    assert " WARNING relay ledger.kafka.relay: broker down; retrying from 7 position=7" in first
    assert not first.startswith("{")
    assert second.endswith("to <email>")


def test_configuring_again_leaves_one_handler_and_silences_the_kafka_client(restore_logging: None) -> None:
    logs.configure("a", "json", io.StringIO())
    logs.configure("b", "text", io.StringIO())
    assert len(logging.getLogger().handlers) == 1
    assert logging.getLogger("kafka").level == logging.CRITICAL


def test_metrics_and_logs_are_leaves_every_layer_may_use_and_the_write_side_never_reaches_the_exporter() -> None:
    from tests.test_architecture import GRAPH, WRITE_SIDE

    for leaf in ("ledger.ops.metrics", "ledger.ops.logs"):
        assert {i for i in GRAPH[leaf] if i.startswith("ledger")} == set(), leaf
    for module in WRITE_SIDE:
        assert not GRAPH[module] & {"ledger.monitor.collector", "ledger.ops.supervisor", "ledger.monitor.status"}, module
    assert "ledger.ops.metrics" in GRAPH["ledger.write.application"]
