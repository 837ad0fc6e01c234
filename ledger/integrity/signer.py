"""Fork-proof signing: a signer never signs a root that does not extend what it signed.

Whoever signs checkpoints (``ledger checkpoint``, the relay) keeps the latest checkpoint
it signed in a file beside its key, ``<key file>.last.json``: outside the database, so
whoever can rewrite the store cannot also rewrite what the signer remembers. Before it
signs the root at a new position it recomputes the log chain over the events after that
checkpoint, starting from the checkpoint's root, and signs only if it reaches, link by
link, what the store's chain holds up to the new position. Otherwise it signs nothing
and raises :class:`ForkError`, naming the position where the store's history no longer
extends what it signed. A store whose head is below the last signed position
(truncated) is a fork too.

The cost is the events since the last checkpoint, not the whole log; a key's very first
checkpoint (no file yet) recomputes the log from its start, once.

The file is written atomically (a temporary file, fsync, rename, fsync of the folder)
before the new checkpoint leaves the signer, so a checkpoint that went out is always at
or below the remembered one. It is a checkpoint itself and must verify with the key: a
file that is unreadable, edited or another key's stops signing until someone who holds
the key decides what to trust (move it away to start again from the whole log). A
deleted file makes the signer start again from the log's start: it then signs whatever
self-consistent history the store holds, which is why subscribers compare every
checkpoint they hold with each other (``ledger verify --checkpoints``,
``ledger.integrity.forks``).

Signers sharing a key on one host take turns on an advisory lock on the key file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ledger.integrity import chain
from ledger.integrity.checkpoint import (
    CheckpointError,
    SigningKey,
    head,
    iter_events,
    iter_links,
    parse,
    sign,
    signature_ok,
)


class ForkError(CheckpointError):
    """The store's history no longer extends the last checkpoint this key signed."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"fork at position {position}: {problem}; nothing was signed")
        self.position = position


def state_path(key_path: Path) -> Path:
    """Where the signer with the key at ``key_path`` keeps its latest checkpoint."""
    return key_path.with_name(key_path.name + ".last.json")


@dataclass(frozen=True)
class Signer:
    """Signs checkpoints with ``key``, each one only if it extends the last one it signed."""

    key: SigningKey

    @property
    def state(self) -> Path:
        return state_path(self.key.path)

    def last(self) -> dict[str, Any] | None:
        """The latest checkpoint this key signed (None before its first), checked against the key."""
        try:
            data = self.state.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(f"last checkpoint {self.state}: cannot be read ({exc.strerror})") from None
        try:
            body = parse(data)
        except CheckpointError as exc:
            raise CheckpointError(f"last checkpoint {self.state}: {exc}; signing stops until it is "
                                  "repaired or moved away") from None
        if not signature_ok(body, self.key.public):
            raise CheckpointError(f"last checkpoint {self.state}: not signed by this key ({self.key.key_id}); "
                                  "signing stops until it is repaired or moved away")
        return body

    def sign_head(self, recorder: Any) -> dict[str, Any]:
        """A checkpoint of the store's head, if the history extends the last one signed."""
        with self._turn():
            position, _ = head(recorder)
            body = self._sign(recorder, position)
            assert body is not None  # the head is never below the last signed position (else ForkError)
            return body

    def sign_at(self, recorder: Any, position: int) -> dict[str, Any] | None:
        """A checkpoint at ``position``, if the history extends the last one signed; None
        when ``position`` is below it (already covered: nothing older is signed again)."""
        with self._turn():
            return self._sign(recorder, position)

    def _sign(self, recorder: Any, position: int) -> dict[str, Any] | None:
        last = self.last()
        start, root = (0, chain.GENESIS) if last is None else (int(last["position"]), bytes.fromhex(last["root"]))
        stored_head, _ = head(recorder)
        if stored_head < start:
            raise ForkError(stored_head + 1, f"the store's history ends at position {stored_head}, below "
                                             f"position {start} already signed (truncated)")
        if position < start:
            return None
        if start:
            _check_join(recorder, start, root)
        body = sign(self.key, position, extend(recorder, start, root, position))
        self._remember(body)
        return body

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """One signer at a time with this key (an advisory lock on the key file)."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        with open(self.key.path, "rb") as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)
            yield

    def _remember(self, body: dict[str, Any]) -> None:
        """Write ``body`` as the latest checkpoint: temporary file, fsync, rename, fsync the folder."""
        path = self.state
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(orjson.dumps(body) + b"\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise CheckpointError(f"last checkpoint {path}: cannot be written ({exc.strerror}); "
                                  "nothing was signed") from None


def _check_join(recorder: Any, start: int, root: bytes) -> None:
    """The store's chain at the last signed position must still hold the root signed there."""
    rows = recorder.select_log_chain(start - 1, 1)
    if not rows or rows[0][0] != start:
        raise ForkError(start, f"the store's log chain has no entry at position {start}, which was signed")
    if rows[0][3] != root:
        raise ForkError(start, f"the store's log chain root at position {start} is not the one signed there "
                               f"(stored {rows[0][3].hex()[:16]}…, signed {root.hex()[:16]}…): the history "
                               "up to it was rewritten")


def extend(recorder: Any, start: int, root: bytes, upto: int) -> bytes:
    """The log chain from ``root`` at ``start`` over the stored events up to ``upto``,
    checked link by link against the store's chain; :class:`ForkError` at the first
    position where they part (an event or a chain entry missing, or a different link)."""
    page = max(1, min(5000, upto - start))  # never read far past ``upto``
    events = iter_events(recorder, page, after=start)
    links = iter_links(recorder, page, after=start)
    link_row = next(links, None)
    reached = start
    for position, s in events:
        if position > upto:
            break
        if link_row is not None and link_row[0] < position:
            raise ForkError(link_row[0], "the event of the store's log-chain entry there is gone")
        if link_row is None or link_row[0] != position:
            raise ForkError(position, "the event there has no log-chain entry (inserted outside the ledger)")
        root = chain.link_of(root, s)
        if root != link_row[3]:
            raise ForkError(position, "recomputed from the last signed root, the chain differs from the "
                                      "store's here: the history no longer extends what was signed")
        link_row = next(links, None)
        reached = position
    if link_row is not None and link_row[0] <= upto:
        raise ForkError(link_row[0], "the event of the store's log-chain entry there is gone")
    if reached != upto:
        raise CheckpointError(f"no event at position {upto} (the store's last one before it is {reached}); "
                              "nothing was signed")
    return root
