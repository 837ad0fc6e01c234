"""The relay's pages: events read from the log, routed and Avro-encoded, ready to send.

Reading, decoding and encoding share one interpreter lock with the producer. So given
a backlog (``HELPER_BACKLOG`` events), a helper process (:class:`PageSource`) prepares
the next page while the relay sends this one; it exits when the relay's end of its
socket closes (also after a SIGKILL), and if it fails the relay reads itself again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from ledger.config import Settings
from ledger.kafka.client import partition_for, route
from ledger.kafka.codec import Codec, default_codec

log = logging.getLogger("ledger.kafka.relay")

# A helper costs about 0.3 s of CPU to start (an interpreter and its imports), mostly
# on another core; reading and encoding here costs about 35 µs an event.
HELPER_BACKLOG = 20_000


class Outgoing(NamedTuple):
    """One encoded event, ready for the producer."""

    position: int
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int | None = None  # None: the producer's partitioner picks (the same one)


Partitions = dict[str, tuple[int, ...]]  # each topic's partitions, sorted


def encode_page(ledger: Any, codec: Codec, prefix: str, after: int, limit: int,
                partitions: Partitions | None = None) -> list[Outgoing]:
    """Up to ``limit`` events after ``after``, routed, Avro-encoded and, when the topics'
    ``partitions`` are known, placed on the partition the producer would pick."""
    out = []
    for position, event in ledger.read_log(after, limit):
        topic, key = route(prefix, event)
        parts = partitions.get(topic) if partitions else None
        out.append(Outgoing(int(position), topic, key, codec.encode(event), [("type", event["type"].encode())],
                            partition_for(key, parts) if parts else None))
    return out


def encoder_process_main(fd: int) -> None:
    """The helper (``python -c``): over socket ``fd``, ``(settings, prefix, limit)``, then
    ``(position, partitions)`` per request, answered with the page after the position;
    ``None`` or EOF ends it."""
    # The relay stops it by closing its end: a Ctrl-C to the process group is not for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from ledger.write.application import Ledger

    conn = Connection(fd)
    try:
        settings, prefix, limit = conn.recv()
        ledger = Ledger(settings)
    except (OSError, EOFError):  # the relay is gone already
        return
    except Exception as exc:  # the store does not open here: the relay reads itself
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    codec = default_codec()
    try:
        while (asked := conn.recv()) is not None:
            after, partitions = asked
            try:
                answer: tuple[str, Any] = ("page", encode_page(ledger, codec, prefix, after, limit, partitions))
            except Exception as exc:  # reported: the relay reads that page itself
                answer = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(answer)
    except (OSError, EOFError):  # the relay closed its end, or was killed
        pass
    finally:
        ledger.close()


class PageSource:
    """Encoded pages for the relay, read ahead by a helper process once that pays.

    :meth:`next` reads in the caller's process until a page comes back full with at
    least ``helper_backlog`` events after it (a small store or a trickle never starts
    a process). Then a helper reads and encodes the page after each one handed over,
    ready when it is asked for; asked for another position (the relay restarting from
    its prefix), it drops what it read ahead.
    """

    def __init__(self, ledger: Any, codec: Codec, prefix: str, page: int,
                 helper_backlog: int | None = HELPER_BACKLOG) -> None:
        self.ledger, self.codec, self.prefix, self.page = ledger, codec, prefix, page
        self.helper_backlog = helper_backlog
        # The helper opens the store itself (so needs its settings).
        self.ahead = helper_backlog is not None and isinstance(getattr(ledger, "settings", None), Settings)
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._asked: int | None = None  # the position the helper is reading after
        # The topics' partitions once the relay's producer knows them (pages then carry
        # their partition); None: the producer partitions each send itself.
        self.partitions: Partitions | None = None

    @property
    def reading_ahead(self) -> bool:
        """Whether a helper process is reading and encoding the pages."""
        return self._conn is not None

    @property
    def helper_pid(self) -> int | None:
        """The helper process's id while there is one."""
        return self._proc.pid if self._proc is not None else None

    def next(self, after: int) -> list[Outgoing]:
        """The encoded page after ``after`` (empty when the log has nothing more)."""
        page = self._from_helper(after) if self._conn is not None else None
        if page is None:
            page = encode_page(self.ledger, self.codec, self.prefix, after, self.page, self.partitions)
            if (self.ahead and self._conn is None and len(page) == self.page and self.helper_backlog is not None
                    and (self.ledger.recorder.max_notification_id() or 0) - after >= self.helper_backlog):
                self._start()
        if self._conn is not None and page:
            self._ask(page[-1].position)
        return page

    def close(self) -> None:
        """Stop the helper process, if there is one."""
        conn, proc, self._conn, self._proc, self._asked = self._conn, self._proc, None, None, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def _start(self) -> None:
        # A fresh interpreter, not multiprocessing: no fork of a process whose producer
        # runs threads, and no re-import of the caller's __main__ (as spawn does).
        mine, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        code = "import sys; from ledger.kafka.relay_pages import encoder_process_main; encoder_process_main(int(sys.argv[1]))"
        try:
            with theirs:
                self._proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())],
                                              pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        except (OSError, ValueError) as exc:
            mine.close()
            self._helper_failed(f"it did not start: {exc}")
            return
        self._conn = Connection(mine.detach())  # the helper holds the other end alone
        with contextlib.suppress(OSError):  # if it is gone already, the first answer says so
            self._conn.send((self.ledger.settings, self.prefix, self.page))

    def _ask(self, after: int) -> None:
        assert self._conn is not None
        try:
            self._conn.send((after, self.partitions))
            self._asked = after
        except OSError:
            self._helper_failed("its socket is closed")

    def _from_helper(self, after: int) -> list[Outgoing] | None:
        """The helper's page, or None when it cannot give one (then it is read here)."""
        assert self._conn is not None
        try:
            if self._asked != after:
                if self._asked is not None:
                    self._conn.recv()  # read ahead for a position no longer wanted
                self._conn.send((after, self.partitions))
            kind, body = self._conn.recv()
            self._asked = None
        except (OSError, EOFError):
            self._helper_failed("it exited")
            return None
        if kind != "page":
            self._helper_failed(str(body))
            return None
        result: list[Outgoing] = body
        return result

    def _helper_failed(self, why: str) -> None:
        log.warning("relay encoder process stopped (%s); encoding in the relay's process", why)
        self.ahead = False
        self.close()
