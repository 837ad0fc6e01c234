"""Bulk ingest over several processes: commands sharded by officer.

``ledger ingest --workers N`` reads the input once and sorts each line into a lane:

- reference commands (no ``officer_id``: organisations, competencies, posts, courses,
  plans), and every line that is not a JSON object, stay in this process and are
  applied first, in input order;
- an officer's commands go to the worker ``crc32(officer_id) % N``, in input order, and
  each worker applies its share with a ledger of its own.

An officer's commands therefore meet the same state as in a sequential run as long as
the reference data they need comes before them in the file (the usual layout of an
export). Where it does not, the sharded run differs: a command that sequentially came
before the course or post it names is accepted here, since reference data goes first.
Answers are reported in input order once every lane is done.

The lanes are spooled to files so memory stays flat however large the input, and the
spool holds names and emails: it is kept where no name reaches the disk and nothing
outlives the run. The files are unnamed (``O_TMPFILE``: no path, gone when the last
process holding them ends, a SIGKILL included), workers reach them through this
process's ``/proc/<pid>/fd``, and every row is sealed with AES-256-GCM under a key
that lives only in the run's memory (handed to the workers over their pipe), so even
the freed disk blocks hold no plaintext. When a worker fails, the answers already made
are still given, and each line of its lane left without an answer is named as not
answered (it may or may not have been applied: resending it with its ``command_id`` is
safe).
Two officers' commands that share a ``command_id`` land in different workers; the receipt
table's key decides which is accepted and the other is answered as a conflict, as a
second writer's would be.
"""

from __future__ import annotations

import base64
import heapq
import json
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from multiprocessing import get_context
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.config import Settings
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.write.application import Ledger, Outcome
from ledger.write.unit import REJECTED

log = logging.getLogger("ledger.ingest")

Item = tuple[int, str | LedgerError]


def officer_of(line: str) -> str | None:
    """The line's ``officer_id`` if it is a JSON object naming one as a string (routing only:
    the worker still parses and validates the line strictly)."""
    try:
        value = orjson.loads(line)
    except (orjson.JSONDecodeError, RecursionError):
        return None
    found = value.get("officer_id") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def lane_of(officer_id: str, workers: int) -> int:
    return zlib.crc32(officer_id.encode("utf-8", "surrogatepass")) % workers


class Spool:
    """An unnamed file of sealed JSON rows (see the module docstring)."""

    def __init__(self, key: bytes, folder: str) -> None:
        self.key = key
        self.fd = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)

    @property
    def path(self) -> str:
        """Where another process of this user opens it while this one lives."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    def close(self) -> None:
        os.close(self.fd)


def _seal(key: bytes, row: list[Any]) -> bytes:
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(key).encrypt(nonce, json.dumps(row, ensure_ascii=True).encode(), None)
    return base64.b64encode(sealed) + b"\n"


def _rows(path: str, key: bytes) -> Iterator[list[Any]]:
    with open(path, "rb") as fh:
        for raw in fh:
            sealed = base64.b64decode(raw)
            yield json.loads(AESGCM(key).decrypt(sealed[:12], sealed[12:], None))


def _lines_of(path: str, key: bytes) -> Iterator[Item]:
    for number, line in _rows(path, key):
        yield int(number), str(line)


def _reference_items(path: str, key: bytes) -> Iterator[Item]:
    for number, line, *error in _rows(path, key):
        yield int(number), (InvalidCommand(error[0]) if line is None else str(line))


def _apply_lane(settings: Settings, lane: str, answers: str, key: bytes, batch_size: int) -> int:
    """One worker: apply a lane's lines with a ledger of its own; sealed answers to ``answers``."""
    ledger = Ledger(settings)
    done = 0
    try:
        with open(answers, "wb") as out:
            for outcome in ledger.ingest_numbered(_lines_of(lane, key), batch_size=batch_size):
                out.write(_seal(key, [outcome.line, outcome.status, outcome.error]))
                out.flush()  # what was answered survives this worker's failure
                done += 1
    finally:
        ledger.close()
    return done


def ingest_sharded(
    ledger: Ledger,
    items: Iterable[Item],
    workers: int,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Outcome]:
    """Apply numbered lines with ``workers`` processes; yields every answer in input order."""
    key = AESGCM.generate_key(bit_length=256)  # the run's own: in memory only
    folder = tempfile.gettempdir()
    with ExitStack() as stack:
        def spool() -> Spool:
            made = Spool(key, folder)
            stack.callback(made.close)
            return made

        lanes, answers = [spool() for _ in range(workers)], [spool() for _ in range(workers)]
        reference, settled = spool(), spool()
        numbers = _spool_lanes(items, key, reference, lanes)
        # Reference data first, in input order, in this process.
        with open(settled.path, "wb") as out:
            for outcome in ledger.ingest_numbered(_reference_items(reference.path, key), batch_size=batch_size):
                out.write(_seal(key, [outcome.line, outcome.status, outcome.error]))
                if progress:
                    progress(1)
        failures = _run_lanes(ledger.settings, lanes, answers, key, batch_size, progress)
        rows = heapq.merge(*(_rows(s.path, key) for s in (settled, *answers)), key=lambda r: r[0])
        yield from _with_unanswered(rows, numbers, failures)


def _spool_lanes(items: Iterable[Item], key: bytes, reference: Spool, lanes: list[Spool]) -> list[list[int]]:
    """Sort the input into the reference spool and the officers' lanes; each lane's line numbers."""
    numbers: list[list[int]] = [[] for _ in lanes]
    with ExitStack() as files:
        ref = files.enter_context(open(reference.path, "wb"))
        handles = [files.enter_context(open(lane.path, "wb")) for lane in lanes]
        for number, line in items:
            if isinstance(line, LedgerError):
                ref.write(_seal(key, [number, None, str(line)]))  # unreadable: answered as it is
                continue
            officer = officer_of(line)
            if officer is None:
                ref.write(_seal(key, [number, line]))
            else:
                lane = lane_of(officer, len(lanes))
                handles[lane].write(_seal(key, [number, line]))
                numbers[lane].append(number)
    return numbers


def _run_lanes(settings: Settings, lanes: list[Spool], answers: list[Spool], key: bytes, batch_size: int,
               progress: Callable[[int], None] | None) -> dict[int, str]:
    """The officers' lanes, one process each (apart: one failing leaves the others to finish);
    the lanes whose worker failed, and how."""
    context = get_context("spawn")
    procs = [context.Process(target=_apply_lane, name=f"ingest-lane-{i}",
                             args=(settings, lanes[i].path, answers[i].path, key, batch_size))
             for i in range(len(lanes))]
    for proc in procs:
        proc.start()
    failures: dict[int, str] = {}
    for i, proc in enumerate(procs):
        proc.join()
        code = proc.exitcode or 0
        if code != 0:
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            log.error("ingest worker %d failed (%s)", i, how)
            failures[i] = how
        elif progress:
            progress(sum(1 for _ in _rows(answers[i].path, key)))
    return failures


def _with_unanswered(rows: Iterable[list[Any]], numbers: list[list[int]], failures: dict[int, str]) -> Iterator[Outcome]:
    """The answers in input order, and for a failed worker's lane one for each line it left unanswered."""
    answered = [(int(n), str(s), e) for n, s, e in rows]
    seen = {n for n, _, _ in answered}
    missing = [(n, REJECTED, f"not answered: the ingest worker of this officer's lane failed ({why}); the line may "
                             "or may not have been applied: resend it (with its command_id, a resend is safe)")
               for lane, why in failures.items() for n in numbers[lane] if n not in seen]
    for number, status, error in heapq.merge(answered, sorted(missing), key=lambda r: r[0]):
        yield Outcome(number, status, error)
