"""Commands for the Kafka topics themselves: reading them as a subscriber would, and the bundled broker.

A new command about the topics goes here and into ``COMMANDS`` at the bottom.
"""

from __future__ import annotations

import sys
import time

import click

from ledger.cli.common import Context, on_sigterm, require_kafka
from ledger.cli.render import emit_json, err, tail_line
from ledger.domain.errors import LedgerError


@click.command()
@click.option("--from-beginning", is_flag=True, help="Start at the oldest message (default: only new ones).")
@click.option("--json", "as_json", is_flag=True, help="One decoded event per line as JSON.")
@click.option("--until-idle", is_flag=True, help="Exit once no message arrived for --idle seconds.")
@click.option("--idle", default=3.0, show_default=True, help="Seconds of silence that count as idle.")
@click.option("--reference", "reference_topic", is_flag=True, help="Tail <prefix>.reference instead of <prefix>.officers.")
@click.option("--checkpoints", "checkpoints", is_flag=True,
              help="Tail <prefix>.checkpoints instead (with --json, lines `ledger verify --checkpoints -` reads).")
@click.pass_obj
def tail(obj: Context, from_beginning: bool, as_json: bool, until_idle: bool, idle: float, reference_topic: bool,
         checkpoints: bool) -> None:
    """Decode and print the officer topic's events (for ops and integrators)."""
    import threading

    from ledger.kafka.client import checkpoints_topic, make_consumer, officers_topic, partitions_of
    from ledger.kafka.client import reference_topic as ref_topic
    from ledger.kafka.codec import DecodeError, default_codec

    bootstrap = require_kafka(obj.settings)
    prefix = obj.settings.topic_prefix
    topic = (checkpoints_topic(prefix) if checkpoints else ref_topic(prefix) if reference_topic
             else officers_topic(prefix))
    codec = default_codec()
    consumer = make_consumer(bootstrap)
    stop = threading.Event()
    on_sigterm(stop)
    try:
        partitions = partitions_of(consumer, topic)
    except TimeoutError as exc:
        raise LedgerError(str(exc)) from None
    consumer.assign(partitions)
    if from_beginning:
        consumer.seek_to_beginning(*partitions)
    else:
        consumer.seek_to_end(*partitions)
    quiet_since = time.monotonic()
    try:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=500)
            if not batches:
                if until_idle and time.monotonic() - quiet_since > idle:
                    break
                continue
            quiet_since = time.monotonic()
            for tp, messages in batches.items():
                for m in messages:
                    try:
                        event = codec.decode(m.value)
                    except DecodeError as exc:
                        err.print(f"{tp.topic}[{tp.partition}]@{m.offset}: {exc}", highlight=False)
                        continue
                    if as_json:
                        emit_json({"partition": tp.partition, "offset": m.offset, "event": event})
                    else:
                        who = event.get("officer_id") or m.key.decode()
                        sys.stdout.write(tail_line(tp.partition, m.offset, who, event))
    finally:
        consumer.close()


@click.command()
@click.option("--port", default=9092, show_default=True, help="Loopback port to listen on.")
def broker(port: int) -> None:
    """Run the bundled Tansu Kafka-protocol broker in the foreground (memory only).

    For trying the production mode on one machine:
    LEDGER_KAFKA_BOOTSTRAP=127.0.0.1:PORT ledger relay. Ctrl-C stops it.
    """
    import threading

    from ledger.kafka.broker import start_tansu
    from ledger.ops.supervisor import stop_process

    stop = threading.Event()
    on_sigterm(stop)  # SIGTERM and Ctrl-C: stop the broker child, never leave it holding the port
    proc, bootstrap = start_tansu(port)
    err.print(f"broker listening on {bootstrap} (memory only); Ctrl-C to stop", highlight=False)
    while proc.poll() is None and not stop.wait(0.2):
        pass
    if proc.poll() is not None:
        raise LedgerError(f"the broker exited by itself with status {proc.returncode}")
    stop_process(proc, timeout=10)


COMMANDS: tuple[click.Command, ...] = (tail, broker)
