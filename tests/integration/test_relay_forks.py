"""The relay never publishes a signed fork; a subscriber holding the topic finds one signed anyway.

Written as the attack in DOMAIN.md's "Tamper evidence": an insider with write access to
the database rewrites an early event and recomputes both hash chains. The relay, which
signed a checkpoint before, publishes no checkpoint for the forged root (it keeps
relaying events), logs the position and is reported by `ledger status`. If the attacker
also deletes what the signer remembered, the relay signs the forged history, and
`ledger verify --checkpoints` over everything on `<prefix>.checkpoints` reports the fork.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.integrity import checkpoint
from ledger.integrity.signer import state_path
from ledger.kafka.relay import Relay, RelayStats
from ledger.monitor.status import collect
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.integration.kafka_reader import read_topic
from tests.integration.util import run_ledger, signing_key_for
from tests.test_forks import _append, _forge
from tests.test_tamper import _world

pytestmark = pytest.mark.kafka


def _relay(settings: Settings) -> tuple[Relay, RelayStats]:
    """Run the relay until the store is drained, with this store's signing key, as `ledger relay` does."""
    assert settings.kafka_bootstrap
    key = checkpoint.SigningKey.load_or_create(signing_key_for(settings))
    relay = Relay(Ledger(settings), Database(settings), settings.kafka_bootstrap, settings.topic_prefix,
                  signing_key=key, helper_backlog=None)
    return relay, relay.run(until_idle=True)


def _on_topic(settings: Settings) -> list[dict[str, object]]:
    messages = read_topic(settings.kafka_bootstrap or "", f"{settings.topic_prefix}.checkpoints", 1)
    return [{k: v for k, v in m.record.items() if k != "type"} for m in messages]


def test_the_relay_publishes_no_checkpoint_for_a_forged_root_and_status_says_so(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(store=settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    _world(settings)
    _, first = _relay(settings)
    [signed] = _on_topic(settings)
    assert signed["position"] == first.position and first.checkpoints == 1
    _forge(settings)
    _append(settings, 10)
    with caplog.at_level(logging.ERROR, logger="ledger.kafka.relay"):
        relay, second = _relay(settings)
    assert relay.fork is not None and relay.fork.position == signed["position"]
    assert second.checkpoints == 0 and second.position == first.position + 1  # events still relayed
    assert _on_topic(settings) == [signed]  # nothing signed for the forged root
    assert f"fork at position {signed['position']}" in caplog.text
    report = collect(Ledger(settings), settings)
    assert not report["ok"] and report["relay"]["checkpoint_refused"]["position"] == signed["position"]
    assert any(f"fork at position {signed['position']}" in p for p in report["problems"]), report["problems"]
    status = run_ledger(settings, "--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix, "status")
    assert status.returncode == 1 and "signs no checkpoints" in status.stderr


def test_a_subscriber_finds_the_fork_a_forgetful_relay_signed(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(store=settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    kafka = ["--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix]
    _world(settings)
    _relay(settings)
    public = tmp_path / "trusted.pub"
    public.write_text(run_ledger(settings, "checkpoint", "--public-key", check=True).stdout)
    _forge(settings)
    state_path(signing_key_for(settings)).unlink()  # the attacker deletes what the signer remembered
    _append(settings, 10)
    _, forgetful = _relay(settings)
    assert forgetful.checkpoints == 1  # with nothing to compare with, it signed the forged history
    assert len(_on_topic(settings)) == 2
    tail = run_ledger(settings, *kafka, "tail", "--checkpoints", "--from-beginning", "--until-idle", "--json")
    assert tail.returncode == 0 and len(tail.stdout.splitlines()) == 2, tail.stderr
    (tmp_path / "topic.jsonl").write_text(tail.stdout)
    found = run_ledger(settings, "verify", "--checkpoints", str(tmp_path / "topic.jsonl"),
                       "--public-key", str(public), "--json")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert report["checked"] and report["breaks"] == []  # the store alone looks perfect
    assert report["checkpoints"]["forks"] == 1
    text = run_ledger(settings, *kafka, "tail", "--checkpoints", "--from-beginning", "--until-idle")
    assert text.stdout.count("checkpoint position") == 2


def test_successive_relay_checkpoints_extend_each_other(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(store=settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    _world(settings)
    for day in (10, 11, 12):
        _relay(settings)
        _append(settings, day)
    _relay(settings)
    published = _on_topic(settings)
    assert len(published) == 4
    public = tmp_path / "trusted.pub"
    public.write_text(run_ledger(settings, "checkpoint", "--public-key", check=True).stdout)
    lines = "".join(json.dumps(c) + "\n" for c in published)
    (tmp_path / "topic.jsonl").write_text(lines)
    done = run_ledger(settings, "verify", "--checkpoints", str(tmp_path / "topic.jsonl"), "--public-key", str(public))
    assert done.returncode == 0, done.stderr
