"""The pipelined relay against a real broker: its saved position never passes an unacknowledged event.

The relay sends page after page without a flush per page; what it saves is the end of
the contiguous acknowledged prefix. So whatever moment it dies at, or whenever its
broker is lost, every event at or below its saved position is already on the broker,
and a restart from there skips nothing.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.store.db import Database, Positions
from ledger.write.application import Ledger
from tests.integration.kafka_reader import decode, load_writer_schemas
from tests.integration.util import child_env, ledger_cmd, popen_ledger, run_ledger, signing_key_for

pytestmark = pytest.mark.kafka

TOPICS = ("officers", "reference", "checkpoints")


def _kafka(settings: Settings, bootstrap: str, prefix: str) -> Settings:
    return Settings(store=settings.store, kafka_bootstrap=bootstrap, topic_prefix=prefix)


def _relay_args(settings: Settings, *args: str) -> list[str]:
    assert settings.kafka_bootstrap
    return ["--kafka", settings.kafka_bootstrap, "--topic-prefix", settings.topic_prefix, "relay", *args]


def _canonical(event: dict[str, Any]) -> str:
    """An event in the store's representation (ciphertext as base64), as comparable text."""
    import base64

    return json.dumps({k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
                       for k, v in event.items()}, sort_keys=True)


def _stored(settings: Settings) -> list[tuple[int, str]]:
    ledger = Ledger(settings)
    try:
        return [(int(position), _canonical(event)) for position, event in ledger.iter_log()]
    finally:
        ledger.close()


def _on_broker(bootstrap: str, prefix: str,
               quiet: float = 2.0) -> tuple[set[str], dict[tuple[str, int], int], list[dict[str, Any]]]:
    """Everything on the topics now: the events, each partition's end, and the checkpoints.

    Reads from the beginning at least up to the end offsets the broker reports, then
    until nothing new arrives for ``quiet`` seconds (some brokers under-report the end
    offsets; and on a loaded machine the first records may take longer than ``quiet``).
    """
    writers = load_writer_schemas()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_poll_records=5000)
    try:
        names = [f"{prefix}.{t}" for t in TOPICS]
        consumer.topics()
        parts = [TopicPartition(n, p) for n in names for p in sorted(consumer.partitions_for_topic(n) or [])]
        if not parts:
            return set(), {}, []
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        floor = consumer.end_offsets(parts)
        events: set[str] = set()
        ends: dict[tuple[str, int], int] = {}
        checkpoints: list[dict[str, Any]] = []
        last = time.monotonic()
        deadline = last + 60
        while time.monotonic() < deadline and (
                time.monotonic() - last < quiet
                or any(ends.get((tp.topic, tp.partition), 0) < floor[tp] for tp in parts)):
            for tp, batch in consumer.poll(timeout_ms=200).items():
                for m in batch:
                    record = decode(m.value, writers)
                    if record["type"] == "Checkpoint":
                        checkpoints.append(record)
                    else:
                        events.add(_canonical(record))
                    ends[(tp.topic, tp.partition)] = m.offset + 1
                    last = time.monotonic()
        return events, ends, checkpoints
    finally:
        consumer.close()


def _saved_ends(settings: Settings) -> dict[tuple[str, int], int]:
    db = Database(settings)
    try:
        with db.transaction() as c:
            c.execute("SELECT topic, part, next_offset FROM ledger_relay_offsets")
            return {(str(t), int(p)): int(o) for t, p, o in c.fetchall()}
    finally:
        db.close()


# A relay process with a deep pipeline: four pages in flight and a save whenever
# its prefix has moved, so it saves while sends are still unacknowledged.
DEEP_RELAY = """
import sys
from pathlib import Path
from ledger.write.application import Ledger
from ledger.integrity.checkpoint import SigningKey
from ledger.config import Settings
from ledger.store.db import Database
from ledger.kafka.relay import Relay

store, bootstrap, prefix, key, every = sys.argv[1:]
settings = Settings(store=store)
Relay(Ledger(settings), Database(settings), bootstrap, prefix, page=150, max_in_flight=600,
      save_every=0.0, signing_key=SigningKey.load_or_create(Path(key)), checkpoint_every=float(every)).run()
"""


def _popen_deep_relay(settings: Settings, checkpoint_every: float) -> subprocess.Popen[str]:
    assert settings.kafka_bootstrap
    return subprocess.Popen(
        [sys.executable, "-c", DEEP_RELAY, settings.store, settings.kafka_bootstrap, settings.topic_prefix,
         str(signing_key_for(settings)), str(checkpoint_every)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(settings))


@pytest.mark.slow
def test_whenever_the_relay_dies_every_event_up_to_its_saved_position_is_on_the_broker(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    lines = list(generate_lines(800, seed=17))  # past HELPER_BACKLOG
    # The last tenth is stored after the kills: the last one, however late it lands,
    # then still finds the relay short of the end (see test_relay.py's kill test).
    tail = len(lines) // 10
    list(Ledger(settings).ingest(lines[:-tail]))
    stored = _stored(settings)
    total = stored[-1][0]
    positions = Positions(Database(settings))

    # Kill it at moments that do not line up with its pages, as `ledger relay` and
    # with a deep pipeline: sends are in flight then, some acknowledged out of order.
    saved_at_kills = []
    for mark, linger, deep in ((0.05, 0.0, True), (0.2, 0.037, False), (0.4, 0.011, True),
                               (0.6, 0.153, False), (0.8, 0.071, True)):
        child = _popen_deep_relay(settings, 0.001) if deep else popen_ledger(
            settings, *_relay_args(settings, "--page", "150", "--checkpoint-every", "0.001"))
        deadline = time.monotonic() + 60
        while positions.get("relay") < mark * total and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(linger)
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err
        saved = positions.get("relay")
        saved_at_kills.append(saved)

        on_broker, partition_ends, checkpoints = _on_broker(kafka_bootstrap, topic_prefix)
        missing = [p for p, event in stored if p <= saved and event not in on_broker]
        assert not missing, f"saved position {saved} passes unpublished events at {missing[:5]}"
        for where, next_offset in _saved_ends(settings).items():
            assert next_offset <= partition_ends.get(where, 0), (where, next_offset, partition_ends)
        # Checkpoints are signed only for positions inside that prefix.
        assert checkpoints, "the relay published no checkpoint before its kill"
        assert all(0 < c["position"] <= saved for c in checkpoints), ([c["position"] for c in checkpoints], saved)

    list(Ledger(settings).ingest(lines[-tail:]))
    stored = _stored(settings)
    assert saved_at_kills[0] > 0 and saved_at_kills[-1] < stored[-1][0], saved_at_kills
    final = run_ledger(settings, *_relay_args(settings, "--until-idle"))
    assert final.returncode == 0, final.stderr
    on_broker, _, _ = _on_broker(kafka_bootstrap, topic_prefix)
    assert {event for _, event in stored} <= on_broker


class Partition:
    """A TCP proxy in front of the broker that the test can cut: bytes then go nowhere.

    While cut, requests the relay sends are dropped and no answer comes back, so
    whatever it sends then stays unacknowledged. Healing closes every connection
    (what was in transit is lost) and forwards new ones again.
    """

    def __init__(self, port: int, target: int) -> None:
        self.target = target
        self.cut = threading.Event()
        self._server = socket.create_server(("127.0.0.1", port))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                return
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                if not self.cut.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                s.close()

    def heal(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.cut.clear()

    def close(self) -> None:
        self._server.close()
        self.heal()


@pytest.fixture
def partitioned_broker() -> Iterator[tuple[str, Partition]]:
    """A Tansu broker reachable only through a Partition (it advertises the proxy)."""
    from ledger.kafka.broker import tansu_binary
    from tests.ports import free_port

    port, proxy_port = free_port(), free_port()
    broker = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{proxy_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partition = None
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        partition = Partition(proxy_port, port)
        yield f"127.0.0.1:{proxy_port}", partition
    finally:
        if partition is not None:
            partition.close()
        broker.terminate()
        broker.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("deep", [True, False], ids=["deep-pipeline", "ledger-relay"])
def test_a_relay_cut_off_from_its_broker_saves_only_what_was_acknowledged(
    sqlite_settings: Settings, partitioned_broker: tuple[str, Partition], topic_prefix: str, deep: bool
) -> None:
    bootstrap, partition = partitioned_broker
    settings = _kafka(sqlite_settings, bootstrap, topic_prefix)
    list(Ledger(settings).ingest(generate_lines(300, seed=31)))
    stored = _stored(settings)
    total = stored[-1][0]
    positions = Positions(Database(settings))
    # One checkpoint, at the first save: each one waits for its own acknowledgement,
    # which during the cut would hold the relay before it reaches the pipeline.
    child = _popen_deep_relay(settings, 3600) if deep else popen_ledger(
        settings, *_relay_args(settings, "--page", "150"))
    deadline = time.monotonic() + 60
    while positions.get("relay") < 0.2 * total and time.monotonic() < deadline:
        time.sleep(0.005)
    partition.cut.set()
    time.sleep(1.5)  # the relay goes on sending into the cut: none of it is acknowledged
    child.send_signal(signal.SIGKILL)
    _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    saved = positions.get("relay")
    assert 0.2 * total <= saved < total
    partition.heal()

    on_broker, partition_ends, checkpoints = _on_broker(bootstrap, topic_prefix)
    assert len(on_broker) < len(stored), "the cut lost nothing: it did not land mid-relay"
    missing = [p for p, event in stored if p <= saved and event not in on_broker]
    assert not missing, f"saved position {saved} passes events the broker never got: {missing[:5]}"
    for where, next_offset in _saved_ends(settings).items():
        assert next_offset <= partition_ends.get(where, 0), (where, next_offset, partition_ends)
    # A checkpoint that got through before the cut never claims more than was saved (on a
    # loaded machine the cut may come before the first one is acknowledged).
    assert all(c["position"] <= saved for c in checkpoints)

    final = run_ledger(settings, *_relay_args(settings, "--until-idle"))
    assert final.returncode == 0, final.stderr
    on_broker, _, _ = _on_broker(bootstrap, topic_prefix)
    assert {event for _, event in stored} <= on_broker


@pytest.mark.slow
def test_a_broker_lost_mid_pipeline_is_retried_from_what_it_had_acknowledged(
    sqlite_settings: Settings, topic_prefix: str
) -> None:
    from ledger.kafka.broker import start_tansu
    from tests.ports import free_port

    port = free_port()
    first, bootstrap = start_tansu(port)
    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=bootstrap, topic_prefix=topic_prefix)
    list(Ledger(settings).ingest(generate_lines(800, seed=23)))  # past HELPER_BACKLOG
    stored = _stored(settings)
    total = stored[-1][0]
    positions = Positions(Database(settings))
    relay = subprocess.Popen(ledger_cmd(settings, *_relay_args(settings, "--until-idle", "--page", "150")),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(settings))
    second = None
    try:
        deadline = time.monotonic() + 60
        while positions.get("relay") < 0.3 * total and time.monotonic() < deadline:
            time.sleep(0.005)
        # Freeze the relay mid-pipeline and let the broker finish what it was sent:
        # what the first broker holds is then final, and it is all the relay can
        # ever have been acknowledged for.
        relay.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        held, _, _ = _on_broker(bootstrap, topic_prefix)
        first.terminate()
        first.wait(timeout=10)
        relay.send_signal(signal.SIGCONT)

        assert relay.stderr is not None
        line = ""
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and "unavailable" not in line:
            line = relay.stderr.readline()
        found = re.search(r"retrying from position (\d+)", line)
        assert found, line
        retry_from = int(found.group(1))
        assert 0.3 * total <= retry_from < total
        missing = [p for p, event in stored if p <= retry_from and event not in held]
        assert not missing, f"position {retry_from} passes events the lost broker never held: {missing[:5]}"

        second, _ = start_tansu(port)  # an empty broker where the first one was
        _, rest = relay.communicate(timeout=180)
        assert relay.returncode == 0, rest
        republished, _, _ = _on_broker(bootstrap, topic_prefix)
        # Nothing skipped: what the first broker was not known to hold is on the second.
        assert [p for p, event in stored if p > retry_from and event not in republished] == []
        assert positions.get("relay") == total
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait(timeout=10)
        for broker in (first, second):
            if broker is not None and broker.poll() is None:
                broker.terminate()
                broker.wait(timeout=10)


def test_a_stopped_relay_saves_what_was_acknowledged_and_exits_cleanly(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _kafka(settings, kafka_bootstrap, topic_prefix)
    list(Ledger(settings).ingest(generate_lines(300, seed=29)))
    stored = _stored(settings)
    positions = Positions(Database(settings))
    relay = popen_ledger(settings, *_relay_args(settings, "--page", "200"))
    deadline = time.monotonic() + 60
    while positions.get("relay") == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    relay.send_signal(signal.SIGTERM)
    _, err = relay.communicate(timeout=60)
    assert relay.returncode == 0, err
    saved = positions.get("relay")
    assert re.search(rf"position {saved:,}\b", err), err  # the stats it printed are the saved position
    on_broker, _, _ = _on_broker(kafka_bootstrap, topic_prefix)
    assert [p for p, event in stored if p <= saved and event not in on_broker] == []
