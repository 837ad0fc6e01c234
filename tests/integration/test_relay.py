"""The relay against a real broker: the topics are the contract downstream systems read."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.store.db import Database, Positions
from ledger.write.application import Ledger
from tests.integration.kafka_reader import Message, read_topic
from tests.integration.util import child_env, ledger_cmd, popen_ledger, run_ledger, signing_key_for

pytestmark = pytest.mark.kafka


def _kafka(settings: Settings, bootstrap: str, prefix: str) -> Settings:
    return Settings(store=settings.store, kafka_bootstrap=bootstrap, topic_prefix=prefix)


def _relay_args(settings: Settings, *args: str) -> list[str]:
    assert settings.kafka_bootstrap
    return ["--kafka", settings.kafka_bootstrap, "--topic-prefix", settings.topic_prefix, "relay", *args]


def _stored(settings: Settings) -> list[dict[str, Any]]:
    ledger = Ledger(settings)
    events = [e for _, e in ledger.iter_log()]
    ledger.close()
    return events


def _wire(record: dict[str, Any]) -> dict[str, Any]:
    """A decoded record in the store's representation (ciphertext as base64 text)."""
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in record.items()}


def _dedup_in_order(messages: list[Message]) -> dict[str, list[int]]:
    """Per officer, versions in arrival order (partition order), duplicates dropped."""
    seen: set[tuple[str, int]] = set()
    versions: dict[str, list[int]] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        key = (m.record["officer_id"], m.record["version"])
        if key in seen:
            continue
        seen.add(key)
        versions.setdefault(m.record["officer_id"], []).append(m.record["version"])
    return versions


def test_relayed_topics_carry_every_stored_event_exactly_as_stored(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _kafka(settings, kafka_bootstrap, topic_prefix)
    lines = list(generate_lines(120, seed=21))
    list(Ledger(settings).ingest(lines))
    done = run_ledger(settings, *_relay_args(settings, "--until-idle"))
    assert done.returncode == 0, done.stderr

    stored = _stored(settings)
    officer_stored = [e for e in stored if "officer_id" in e]
    reference_stored = [e for e in stored if "officer_id" not in e]
    officers = read_topic(kafka_bootstrap, f"{topic_prefix}.officers", len(officer_stored))
    reference = read_topic(kafka_bootstrap, f"{topic_prefix}.reference", len(reference_stored))

    assert sorted(json.dumps(_wire(m.record), sort_keys=True) for m in officers) == sorted(
        json.dumps(e, sort_keys=True) for e in officer_stored)
    assert sorted(json.dumps(_wire(m.record), sort_keys=True) for m in reference) == sorted(
        json.dumps(e, sort_keys=True) for e in reference_stored)
    assert all(m.key == m.record["officer_id"].encode() for m in officers)
    # Each on the partition kafka-python's default partitioner picks for its key (the
    # relay computes it where pages are encoded; the placement must not differ).
    from kafka.partitioner.default import DefaultPartitioner

    from tests.test_relay_pages import default_partition

    parts = tuple(sorted({m.partition for m in officers}))
    assert len(parts) == 6
    assert all(m.partition == default_partition(DefaultPartitioner(), m.key, parts) for m in officers)
    # Per-officer order: within its partition each officer's versions run 1, 2, 3, ...
    for officer, versions in _dedup_in_order(officers).items():
        assert versions == list(range(1, len(versions) + 1)), officer

    # No personal data in plaintext anywhere on either topic.
    secrets = set()
    for line in lines:
        command = json.loads(line)
        if command["type"] == "register_officer" and command.get("name"):
            secrets.update({command["name"].encode(), command["email"].encode()})
    assert len(secrets) > 100
    raw = b"".join(m.key + m.value for m in officers + reference)
    assert not [s for s in secrets if s in raw]


def _saved(db: Database) -> int:
    """The relay's saved position, read from a snapshot without the store's write lock
    (``Positions.get`` takes it: polled every few milliseconds, it queues the relay's own
    saves behind the test)."""
    with db.reading() as c:
        return Positions.read(c, "relay")


def _officer_version(m: Message) -> tuple[str, int]:
    return m.record["officer_id"], m.record["version"]


@pytest.mark.slow
def test_relay_killed_repeatedly_publishes_everything_in_order(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    lines = list(generate_lines(800, seed=4))
    # The last tenth of the commands is stored only after the kills. The relay publishes
    # some 20,000 events a second, so the last kill would otherwise have a fraction of a
    # second to land before it had published everything: a loaded machine that wakes this
    # test late lets it finish, and the final run then has nothing left to resume.
    tail = len(lines) // 10
    list(Ledger(settings).ingest(lines[:-tail]))
    before = len(_stored(settings))

    db = Database(settings)
    kills = 0
    # Kill the relay as soon as its saved position passes each mark: a page is
    # usually in flight then, so its events are published again after the restart.
    for mark in (0.1, 0.3, 0.5, 0.7):
        child = popen_ledger(settings, *_relay_args(settings, "--page", "300"))
        deadline = time.monotonic() + 60
        while _saved(db) < mark * before and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        kills += child.returncode == -signal.SIGKILL
    assert kills == 4
    list(Ledger(settings).ingest(lines[-tail:]))
    stored = [e for e in _stored(settings) if "officer_id" in e]
    total = len(_stored(settings))
    assert 0 < _saved(db) < total, "the kills did not land mid-relay"
    final = run_ledger(settings, *_relay_args(settings, "--until-idle"))
    assert final.returncode == 0, final.stderr
    assert _saved(db) == total
    db.close()

    # Until every event is read: the restarts published some twice.
    messages = read_topic(kafka_bootstrap, f"{topic_prefix}.officers", len(stored), distinct=_officer_version)
    published = {_officer_version(m) for m in messages}
    assert published == {(e["officer_id"], e["version"]) for e in stored}
    for officer, versions in _dedup_in_order(messages).items():
        assert versions == list(range(1, len(versions) + 1)), officer


@pytest.mark.postgres
@pytest.mark.slow
def test_relay_running_beside_concurrent_writers_skips_nothing(
    pg_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _kafka(pg_settings, kafka_bootstrap, topic_prefix)
    lines = list(generate_lines(300, seed=8))
    reference = [line for line in lines if "officer_id" not in json.loads(line)]
    officers = [line for line in lines if "officer_id" in json.loads(line)]
    (tmp_path / "ref.jsonl").write_text("\n".join(reference) + "\n")
    for parity in (0, 1):
        mine = [line for line in officers if sum(map(ord, json.loads(line)["officer_id"])) % 2 == parity]
        (tmp_path / f"w{parity}.jsonl").write_text("\n".join(mine) + "\n")
    # Reference data, capacity plans among it (three of which the generator makes invalid).
    ref = run_ledger(settings, "ingest", "--json", str(tmp_path / "ref.jsonl"))
    rejected = [json.loads(a) for a in ref.stdout.splitlines() if json.loads(a)["status"] == "rejected"]
    assert ref.returncode == 1 and len(rejected) == 3, ref.stderr
    assert all(json.loads(reference[a["line"] - 1])["type"] == "declare_capacity_plan" for a in rejected)

    relay = popen_ledger(settings, *_relay_args(settings, "--page", "50"))
    writers = [popen_ledger(settings, "ingest", str(tmp_path / f"w{p}.jsonl"), "--batch-size", "20")
               for p in (0, 1)]
    for writer in writers:
        writer.communicate(timeout=300)
        assert writer.returncode in (0, 1)
    time.sleep(1.0)
    relay.send_signal(signal.SIGTERM)
    _, relay_err = relay.communicate(timeout=60)
    assert relay.returncode == 0, relay_err
    final = run_ledger(settings, *_relay_args(settings, "--until-idle"))
    assert final.returncode == 0, final.stderr

    stored = [e for e in _stored(settings) if "officer_id" in e]
    messages = read_topic(kafka_bootstrap, f"{topic_prefix}.officers", len(stored), distinct=_officer_version)
    assert {_officer_version(m) for m in messages} == {(e["officer_id"], e["version"]) for e in stored}


def test_relay_waits_out_a_broker_outage(sqlite_settings: Settings, topic_prefix: str) -> None:
    from ledger.kafka.broker import start_tansu
    from tests.ports import free_port

    port = free_port()
    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=f"127.0.0.1:{port}", topic_prefix=topic_prefix)
    list(Ledger(settings).ingest(generate_lines(20, seed=2)))
    relay = subprocess.Popen(ledger_cmd(settings, *_relay_args(settings, "--until-idle")),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(settings))
    assert relay.stderr is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = relay.stderr.readline()
        if "unavailable" in line:
            break
    assert "unavailable" in line and "retrying from position 0" in line, line
    assert relay.poll() is None, "the relay gave up instead of retrying"
    broker, bootstrap = start_tansu(port)
    try:
        _, rest = relay.communicate(timeout=120)
        assert relay.returncode == 0, rest
        stored = [e for e in _stored(settings) if "officer_id" in e]
        messages = read_topic(bootstrap, f"{topic_prefix}.officers", len(stored), distinct=_officer_version)
        assert {_officer_version(m) for m in messages} == {(e["officer_id"], e["version"]) for e in stored}
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def test_the_relay_publishes_a_signed_checkpoint_subscribers_can_verify(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    from ledger.integrity import checkpoint

    settings = _kafka(settings, kafka_bootstrap, topic_prefix)
    list(Ledger(settings).ingest(generate_lines(20, seed=5)))
    done = run_ledger(settings, *_relay_args(settings, "--until-idle"))
    assert done.returncode == 0, done.stderr
    [message] = read_topic(kafka_bootstrap, f"{topic_prefix}.checkpoints", 1)
    assert message.record["type"] == "Checkpoint"  # decoded with schemas/Checkpoint.avsc alone
    body = {k: v for k, v in message.record.items() if k != "type"}
    ledger = Ledger(settings)
    assert body["position"] == ledger.recorder.max_notification_id()
    public = checkpoint.SigningKey.load(signing_key_for(settings)).public
    assert checkpoint.verify_against(ledger.recorder, body, public) == []
