"""Kafka mode: a helper process that polls and decodes, so the consumer applies on its own core.

Polling (kafka-python parses record batches in Python) and Avro decoding share one
interpreter lock with applying the batches to the read models. With a fetcher process
(:class:`Fetcher`, ``ledger project`` by default) they run on another core, and the
consumer's process only unpickles decoded batches and applies them.

Protocol over a ``socket.socketpair()``; the child is a fresh ``python -c`` interpreter
given its end's fd, over which it speaks :class:`multiprocessing.connection.Connection`
(pickles, each framed by its length):

- parent -> child: one :class:`Setup` (the partitions the parent chose, the offsets to
  start from, which it read from the read-model database), later ``None`` to stop;
  closing its end stops the child as well.
- child -> parent: ``("batch", rows, counts)`` per poll that brought messages (each
  message decoded as the fields of its :class:`~ledger.projections.runner.Item`, see
  :func:`decode_row`, and the messages per (topic, partition), for the parent's
  metrics); ``("end",)`` once a run to idle is idle; ``("error", exc)``
  when polling failed (the parent raises it). A blocking send is the back-pressure.

The parent reads each message with ``MSG_WAITALL`` receives, without the interpreter
lock (``Connection.recv`` reads in small pieces, each waiting for the applying thread's
lock); the child writes from a sending thread, so it keeps polling meanwhile.

The child never commits anything: positions stay in the read-model database, written
by the parent with each batch. It ignores SIGINT and SIGTERM (the consumer stops it),
and exits when the parent's end closes or the parent dies (even by SIGKILL: its parent
pid is checked every half second). Should it die without a word, the parent's
receiving thread hands over :data:`LOST` after every batch received, and the consumer
carries on in its own process from the positions it committed.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import pickle
import queue
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from ledger.consumers.positions import is_idle, seek
from ledger.kafka.codec import Codec, DecodeError

# No ledger.ops.metrics or ledger.projections imports here: the fetcher process starts faster.

log = logging.getLogger("ledger.consumers")

END = "end"  # handed over when a run to idle is done
LOST = "lost"  # handed over when the fetcher process died without a word
STOP_GRACE = 1.0  # seconds a stopped fetcher has to exit before it is killed
PARENT_CHECK = 0.5  # seconds between the child's checks that its parent still lives
SENDING = 2  # pickled messages waiting for the child's sending thread


class Setup(NamedTuple):
    """What the fetcher process is told once it runs."""

    bootstrap: str
    partitions: list[tuple[str, int]]  # (topic, partition), assigned exactly
    start: dict[tuple[str, int], int]  # next offset per (topic, partition); absent or 0: the beginning
    max_records: int
    until_idle: bool
    idle: float


Row = tuple[str, int, int, str | None, dict[str, Any] | None, str | None, str | None]


def decode_row(codec: Codec, topic: str, partition: int, message: Any) -> Row:
    """A Kafka message decoded: the fields of its :class:`~ledger.projections.runner.Item`,
    in order (``Item(*row)``); one that does not decode carries its error and its bytes.
    The fetcher sends rows, not Items: a tuple pickles in less than half the time."""
    key = message.key.decode("utf-8", "replace") if message.key else None
    try:
        event = codec.decode(message.value)
    except DecodeError as exc:
        payload = base64.b64encode(message.value or b"").decode("ascii")
        return (topic, partition, message.offset, key, None, str(exc), payload)
    return (topic, partition, message.offset, key, event, None, None)


def hand_over(out: queue.Queue[Any], done: threading.Event, value: Any) -> bool:
    """Put ``value`` on ``out`` for the consumer's main thread; False once it stopped taking."""
    while not done.is_set():
        try:
            out.put(value, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def picklable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


# ---- the child ---------------------------------------------------------------


class _ParentGone(Exception):
    """The parent's end of the socket is closed (or it asked the fetcher to stop)."""


def fetcher_process_main(fd: int, parent: int) -> None:
    """The fetcher process (``python -c``): socket ``fd`` to its parent, process ``parent``."""
    # The consumer stops it by closing its end: a Ctrl-C to the process group is not for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    armed = threading.Event()
    _watch_parent(parent, fd, armed)
    conn = Connection(fd)
    try:
        setup = conn.recv()
    except (OSError, EOFError):  # the parent is gone already
        conn.close()
        return
    if not isinstance(setup, Setup):  # a stop before the start
        conn.close()
        return
    armed.set()
    sender = _Sender(conn)
    try:
        _fetch(conn, setup, sender)
    except _ParentGone:  # stopped: what is still queued is for no one
        conn.close()
        return
    except BaseException as exc:  # handed to the parent, which raises it
        with contextlib.suppress(_ParentGone):
            sender.send(("error", picklable(exc)))
    sender.finish()  # the end marker or the error, after every batch
    conn.close()


def _watch_parent(parent: int, fd: int, armed: threading.Event) -> None:
    """Exit at once when the parent is gone or, once ``armed`` (the setup read), when
    anything more comes from it (a stop, or EOF: its end closed), whatever the fetcher
    is blocked on (a poll takes up to half a second).

    The parent's end of the socket closes when it dies, but the parent pid is checked
    too, in case another process inherited that end. The fetcher commits nothing, so
    nothing needs finishing.
    """

    def watch() -> None:
        while os.getppid() == parent:
            if not armed.is_set():
                armed.wait(PARENT_CHECK)
            elif select.select([fd], [], [], PARENT_CHECK)[0]:
                break
        os._exit(0)

    threading.Thread(target=watch, name="ledger-fetcher-parent", daemon=True).start()


class _Sender:
    """The child's sending thread: writes pickled messages in order, blocking on the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.waiting: queue.Queue[bytes | None] = queue.Queue(maxsize=SENDING)
        self.gone = threading.Event()  # the parent's end is closed
        self.thread = threading.Thread(target=self._run, name="ledger-fetcher-send", daemon=True)
        self.thread.start()

    def send(self, message: tuple[Any, ...]) -> None:
        """Queue ``message`` for the parent; _ParentGone once its end is closed."""
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        while True:
            if self.gone.is_set():
                raise _ParentGone
            try:
                self.waiting.put(body, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every queued message is written (or the parent is gone)."""
        while not self.gone.is_set():
            try:
                self.waiting.put(None, timeout=0.2)
                break
            except queue.Full:
                continue
        while self.thread.is_alive() and not self.gone.is_set():
            self.thread.join(timeout=0.2)

    def _run(self) -> None:
        try:
            while (body := self.waiting.get()) is not None:
                self.conn.send_bytes(body)
        except OSError:
            self.gone.set()


def _fetch(conn: Connection, setup: Setup, sender: _Sender) -> None:
    from kafka import TopicPartition

    from ledger.kafka.client import make_consumer
    from ledger.kafka.codec import default_codec

    def stopped() -> bool:
        if sender.gone.is_set():
            return True
        try:
            return conn.poll(0)  # anything after the setup is a stop; EOF too
        except OSError:
            return True

    codec = default_codec()
    consumer = make_consumer(setup.bootstrap, reset="none")  # see ledger.consumers.positions
    try:
        partitions = [TopicPartition(topic, part) for topic, part in setup.partitions]
        consumer.assign(partitions)
        seek(consumer, partitions, setup.start)
        quiet_since = time.monotonic()
        while not stopped():
            polled = consumer.poll(timeout_ms=500, max_records=setup.max_records)
            rows = [decode_row(codec, tp.topic, tp.partition, m) for tp, messages in polled.items() for m in messages]
            if not rows:
                if setup.until_idle and is_idle(consumer, time.monotonic() - quiet_since, setup.idle):
                    sender.send((END,))
                    return
                continue
            sender.send(("batch", rows, {(tp.topic, tp.partition): len(messages) for tp, messages in polled.items()}))
            quiet_since = time.monotonic()
        raise _ParentGone
    finally:
        consumer.close()


# ---- the parent --------------------------------------------------------------


def _frame(message: Any) -> bytes:
    """``message`` as :class:`Connection` sends it: the pickle after its length."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("!i", len(body)) + body


def _recv_exactly(sock: socket.socket, size: int) -> bytearray:
    """``size`` bytes, read without the interpreter lock; EOFError when the socket ends first."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got, socket.MSG_WAITALL)
        if n == 0:
            raise EOFError("the fetcher process closed its end")
        got += n
    return buf


def _recv_message(sock: socket.socket) -> Any:
    """One message sent by the child's :class:`Connection` (same framing)."""
    size = struct.unpack("!i", _recv_exactly(sock, 4))[0]
    if size == -1:
        size = struct.unpack("!Q", _recv_exactly(sock, 8))[0]
    return pickle.loads(_recv_exactly(sock, size))


class Fetcher:
    """The consumer's side of a fetcher process: starts it, receives its batches, stops it.

    :meth:`start` the process first (its interpreter starts while the caller chooses the
    partitions), then :meth:`begin` with the :class:`Setup`, then run :meth:`pump` in a
    thread: it puts batches, then :data:`END`, an exception or :data:`LOST` on a queue,
    and stops the process when it returns.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    @property
    def pid(self) -> int | None:  # the fetcher process's id while there is one
        return self._proc.pid if self._proc is not None else None

    def start(self) -> bool:
        """Start the process; False (with a warning) when it cannot be started."""
        # A fresh interpreter, not multiprocessing: no fork of a process whose clients
        # run threads, and no re-import of the caller's __main__ (as spawn does).
        mine, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        code = ("import sys; from ledger.consumers.fetcher import fetcher_process_main; "
                "fetcher_process_main(int(sys.argv[1]), int(sys.argv[2]))")
        try:
            with theirs:
                self._proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno()), str(os.getpid())],
                                              pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        except (OSError, ValueError) as exc:
            mine.close()
            log.warning("consumer fetcher process did not start (%s); polling in the consumer's process", exc)
            return False
        self._sock = mine  # the fetcher holds the other end alone
        return True

    def begin(self, setup: Setup) -> None:
        """Tell the process what to fetch (if it is gone already, :meth:`pump` finds out)."""
        assert self._sock is not None
        with contextlib.suppress(OSError):
            self._sock.sendall(_frame(setup))

    def pump(self, out: queue.Queue[Any], done: threading.Event) -> None:
        """The receiving thread: hand the fetcher's batches over in order until ``done``."""
        from ledger.ops import metrics
        from ledger.projections.runner import Item

        sock = self._sock
        assert sock is not None

        try:
            while not done.is_set():
                try:
                    if not select.select([sock], [], [], 0.2)[0]:
                        continue
                    message = _recv_message(sock)
                except (OSError, EOFError):
                    log.warning("consumer fetcher process %s exited unexpectedly; polling in the consumer's process "
                                "from the committed positions", self.pid)
                    hand_over(out, done, LOST)
                    return
                if message[0] == "batch":
                    _, rows, counts = message
                    for (topic, part), n in counts.items():  # per partition and poll, not per message
                        metrics.CONSUMER_MESSAGES.labels(topic, str(part)).inc(n)
                    if not hand_over(out, done, [Item(*row) for row in rows]):
                        return
                elif message[0] == END:
                    hand_over(out, done, END)
                    return
                else:  # ("error", exc)
                    hand_over(out, done, message[1])
                    return
        except BaseException as exc:  # handed to the main thread, which raises it
            hand_over(out, done, exc)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the process (it has STOP_GRACE seconds, then it is killed) and reap it."""
        sock, proc, self._sock, self._proc = self._sock, self._proc, None, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setblocking(False)  # a stop is a courtesy: never wait to send it
                sock.send(_frame(None))
            sock.close()
        if proc is not None:
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
