"""Kafka mode: projection consumers read both topics with explicitly assigned partitions.

Offsets live in the read-model database (``ledger_offsets``), written in the same
transaction as the change; the broker's group offsets are never used. Duplicate
deliveries from the at-least-once relay are dropped per (officer_id, version).

Scale-out: a process may take only some partitions of ``<prefix>.officers``
(:class:`Share`: ``--partitions 0,2,4`` or ``--instance i/n``); each keeps its own
offsets per partition and all write the same read models (see ``runner``). Every
process also reads the whole ``<prefix>.reference`` topic: no officer event reads
reference state when it is applied (reference tables are read only by queries), and
reference writes are idempotent, so it does not matter which process applies a
reference event first, or how often.

Polling and decoding run ahead of applying: with ``helper=True`` (``ledger project``'s
default) in a fetcher process on another core (:mod:`ledger.consumers.fetcher`), whose
batches a receiving thread hands over; otherwise, or should that process fail, a
prefetch thread owns the Kafka client and polls and decodes the next batch while the
main thread applies the current one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError

from ledger.consumers.fetcher import END, LOST, Fetcher, Setup, decode_row, hand_over
from ledger.consumers.log import FollowStats, TypedLogFollower
from ledger.consumers.positions import check_history, is_idle, lost_position, recheck_identity, seek
from ledger.domain.errors import LedgerError
from ledger.kafka.client import make_consumer, officers_topic, partitions_of, reference_topic
from ledger.kafka.codec import Codec, default_codec
from ledger.ops import metrics
from ledger.projections.runner import Item, Runner

log = logging.getLogger("ledger.consumers")

PREFETCH = 4  # decoded batches waiting for the main thread
HELPER_BACKLOG = 20_000  # messages waiting at the start of a run from which a fetcher process polls
MERGE = 5  # at most this many polls' worth of waiting batches applied as one
RECHECK = 10.0  # seconds between checks, while nothing arrives, that the topics were not recreated


@dataclass(frozen=True)
class Share:
    """Which partitions of the officer topic one process consumes (all, when neither is given)."""

    partitions: tuple[int, ...] | None = None  # exactly these
    instance: tuple[int, int] | None = None  # (i, n): the partitions p with p % n == i

    @classmethod
    def parse(cls, partitions: str | None = None, instance: str | None = None) -> Share:
        """From ``--partitions 0,2,4`` or ``--instance 1/3``; ValueError says what is wrong."""
        if partitions is not None and instance is not None:
            raise ValueError("give --partitions or --instance, not both")
        if partitions is not None:
            try:
                chosen = tuple(sorted({int(p) for p in partitions.split(",") if p.strip()}))
            except ValueError:
                raise ValueError(f"--partitions wants partition numbers separated by commas, got {partitions!r}") from None
            if not chosen or chosen[0] < 0:
                raise ValueError(f"--partitions wants partition numbers (0 or more), got {partitions!r}")
            return cls(partitions=chosen)
        if instance is not None:
            i, slash, n = instance.partition("/")
            if not (slash and i.strip().isdigit() and n.strip().isdigit()) or not 0 <= int(i) < int(n):
                raise ValueError(f"--instance wants I/N with 0 <= I < N, got {instance!r}")
            return cls(instance=(int(i), int(n)))
        return cls()

    def pick(self, available: Sequence[int]) -> list[int]:
        """This share of the topic's partitions; LedgerError for a named partition it lacks."""
        if self.partitions is not None:
            missing = sorted(set(self.partitions) - set(available))
            if missing:
                raise LedgerError(f"the officer topic has partitions {sorted(available)}, not {missing}")
            return list(self.partitions)
        if self.instance is not None:
            i, n = self.instance
            return [p for p in available if p % n == i]
        return list(available)


class KafkaFollower:
    """Consumes ``<prefix>.officers`` (its share of the partitions) and ``<prefix>.reference``."""

    def __init__(self, bootstrap: str, prefix: str, runner: Runner, codec: Codec | None = None,
                 max_records: int = 2000, share: Share | None = None, helper: bool = False,
                 helper_backlog: int = HELPER_BACKLOG, log_follower: TypedLogFollower | None = None) -> None:
        self.bootstrap = bootstrap
        self.officers = officers_topic(prefix)
        self.reference = reference_topic(prefix)
        self.runner = runner
        self.codec = codec or default_codec()
        self.max_records = max_records
        self.merge_limit = MERGE * max_records  # events of waiting batches applied in one transaction
        self.share = share or Share()
        self.helper = helper  # poll and decode in a fetcher process (see ledger.consumers.fetcher)
        # ... when a run starts with at least this many messages to read (its start-up,
        # about half a second, is not worth it for fewer; 0: always).
        self.helper_backlog = helper_backlog
        self.stop = threading.Event()
        self._fetcher: Fetcher | None = None
        # The projections that follow the store's log (numbered in its order, see ``Runner``)
        # get no topic's events: this brings them up to the store after each batch and when idle.
        self.log_follower = log_follower
        if log_follower is not None:
            log_follower.stop = self.stop  # SIGTERM stops it too
        self._log_followed = 0.0
        self._checked = 0.0  # when the topics' identity was last checked

    @property
    def fetcher_pid(self) -> int | None:
        """The fetcher process's id while one runs."""
        fetcher = self._fetcher
        return fetcher.pid if fetcher is not None else None

    def _item(self, topic: str, partition: int, message: Any) -> Item:
        return Item(*decode_row(self.codec, topic, partition, message))

    def _partitions(self, consumer: Any) -> list[Any]:
        """The reference topic's partitions and this share of the officer topic's."""
        officers = partitions_of(consumer, self.officers)
        mine = self.share.pick([tp.partition for tp in officers])
        if not mine:
            log.warning("no partition of %s falls to this share: only %s is consumed", self.officers, self.reference)
        partitions = [*partitions_of(consumer, self.reference), *(tp for tp in officers if tp.partition in mine)]
        log.info("consuming %s partitions %s and %s", self.officers, mine, self.reference)
        return partitions

    def _backlog(self, consumer: Any, partitions: list[Any], start: dict[tuple[str, int], int]) -> int:
        """Messages waiting in ``partitions`` after ``start``, as far as the broker tells
        (its end offsets may lag a little: this only chooses where to poll)."""
        try:
            ends = consumer.end_offsets(partitions)
        except KafkaError as exc:
            log.warning("end offsets not available (%s): taking the backlog for a large one", exc)
            return self.helper_backlog
        return sum(max(0, end - start.get((tp.topic, tp.partition), 0)) for tp, end in ends.items())

    def _feed(self, out: queue.Queue[Any], done: threading.Event, until_idle: bool, idle: float,
              helper: bool) -> threading.Thread:
        """Start the thread that puts decoded batches on ``out``: the fetcher process's
        receiving thread (``helper`` and at least ``helper_backlog`` messages waiting, if
        the process starts) or the prefetch thread."""
        consumer = make_consumer(self.bootstrap, reset="none")  # see ledger.consumers.positions
        fetcher: Fetcher | None = None
        try:
            partitions = self._partitions(consumer)
            start = self.runner.start_offsets()
            if helper and (self.helper_backlog <= 0
                           or self._backlog(consumer, partitions, start) >= self.helper_backlog):
                fetcher = Fetcher()
                if not fetcher.start():
                    fetcher = None
            # Before the first poll (while a fetcher's interpreter starts): do the offsets
            # still mean what they meant? HistoryLost otherwise (ledger.consumers.positions).
            check_history(self.bootstrap, consumer, self.runner.db, partitions, start)
            self._checked = time.monotonic()
            if fetcher is None:
                consumer.assign(partitions)
                seek(consumer, partitions, start)
            else:  # here the consumer only learned the topics' partitions: the fetcher polls
                fetcher.begin(Setup(self.bootstrap, [(tp.topic, tp.partition) for tp in partitions],
                                    start, self.max_records, until_idle, idle))
        except BaseException:
            consumer.close()
            if fetcher is not None:
                fetcher.close()
            raise
        if fetcher is not None:
            consumer.close()
            self._fetcher = fetcher
            thread = threading.Thread(target=fetcher.pump, args=(out, done), name="ledger-kafka-fetcher",
                                      daemon=True)
        else:
            thread = threading.Thread(target=self._prefetch, args=(consumer, out, done, until_idle, idle),
                                      name="ledger-kafka-prefetch", daemon=True)
        thread.start()
        return thread

    def run(self, until_idle: bool = False, idle: float = 2.0) -> FollowStats:
        """Apply batches until stopped (or, with ``until_idle``, until ``idle`` seconds bring nothing)."""
        stats = FollowStats()
        batches: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH)
        done = threading.Event()  # the main thread stopped taking batches
        # The fetcher process decodes with the packaged schemas: another codec decodes here.
        poller = self._feed(batches, done, until_idle, idle, self.helper and self.codec is default_codec())
        held: Any = None  # what the prefetch thread handed over after the batch being merged
        try:
            while not self.stop.is_set():
                if held is not None:
                    batch, held = held, None
                else:
                    try:
                        batch = batches.get(timeout=0.2)
                    except queue.Empty:
                        if not poller.is_alive() and batches.empty():
                            break
                        self._follow_log(every=1.0)
                        self._recheck()
                        continue
                if isinstance(batch, BaseException):
                    raise lost_position(batch)
                if batch == LOST:
                    # The fetcher process died; every batch it sent is applied (they came
                    # first). Carry on here, from the positions just committed.
                    poller.join()
                    self._fetcher = None
                    poller = self._feed(batches, done, until_idle, idle, helper=False)
                    continue
                if isinstance(batch, str):  # END: the prefetch (or receiving) thread is done
                    break
                # Under a backlog, decoded batches wait in the queue: apply them together
                # (each officer's documents written once, not once per poll). When the
                # consumer keeps up, nothing waits and a batch goes alone.
                while len(batch) < self.merge_limit:
                    try:
                        more = batches.get_nowait()
                    except queue.Empty:
                        break
                    if not isinstance(more, list):
                        held = more
                        break
                    batch = batch + more
                self.runner.process(batch)
                stats.events += len(batch)
                stats.batches += 1
                self._follow_log()
            self._follow_log()
        finally:
            done.set()
            poller.join()
            self._fetcher = None
        return stats

    def _recheck(self) -> None:
        """While nothing arrives: HistoryLost if a topic was recreated meanwhile (at most
        every RECHECK seconds; a broker that cannot say is not a reason to stop)."""
        if time.monotonic() - self._checked < RECHECK:
            return
        self._checked = time.monotonic()
        try:
            recheck_identity(self.bootstrap, self.runner.db, [self.officers, self.reference],
                             self.runner.start_offsets())
        except KafkaError as exc:
            log.warning("could not check the topics' identity (%s)", exc)

    def _follow_log(self, every: float = 0.0) -> None:
        """Bring the log-following projections up to the store (at most once per ``every`` seconds)."""
        if self.log_follower is not None and time.monotonic() - self._log_followed >= every:
            self.log_follower.run()
            self._log_followed = time.monotonic()

    def _prefetch(self, consumer: Any, out: queue.Queue[Any], done: threading.Event, until_idle: bool,
                  idle: float) -> None:
        """The prefetch thread: poll and decode, hand batches over in order; closes the client."""

        try:
            quiet_since = time.monotonic()
            while not done.is_set() and not self.stop.is_set():
                polled = consumer.poll(timeout_ms=500, max_records=self.max_records)
                items = [self._item(tp.topic, tp.partition, m) for tp, messages in polled.items() for m in messages]
                for tp, messages in polled.items():  # per partition and poll, not per message
                    metrics.CONSUMER_MESSAGES.labels(tp.topic, str(tp.partition)).inc(len(messages))
                if not items:
                    if until_idle and is_idle(consumer, time.monotonic() - quiet_since, idle):
                        break
                    continue
                if not hand_over(out, done, items):
                    return
                quiet_since = time.monotonic()
            hand_over(out, done, END)
        except BaseException as exc:  # handed to the main thread, which raises it
            hand_over(out, done, exc)
        finally:
            consumer.close()
