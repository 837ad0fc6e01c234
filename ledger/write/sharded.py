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
Answers are reported in input order once every lane is done. The lanes are spooled to
temporary files (one JSON array per line), so memory stays flat however large the input.
Two officers' commands that share a ``command_id`` land in different workers; the receipt
table's key decides which is accepted and the other is answered as a conflict, as a
second writer's would be.
"""

from __future__ import annotations

import heapq
import json
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import ExitStack
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

import orjson

from ledger.config import Settings
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.write.application import Ledger, Outcome

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


def _write(fh: IO[bytes], row: list[Any]) -> None:
    fh.write(json.dumps(row, ensure_ascii=True).encode() + b"\n")


def _rows(path: Path) -> Iterator[list[Any]]:
    with open(path, "rb") as fh:
        for raw in fh:
            yield json.loads(raw)


def _lines_of(path: Path) -> Iterator[Item]:
    for number, line in _rows(path):
        yield int(number), str(line)


def _reference_items(path: Path) -> Iterator[Item]:
    for number, line, *error in _rows(path):
        yield int(number), (InvalidCommand(error[0]) if line is None else str(line))


def _apply_lane(settings: Settings, lane: str, answers: str, batch_size: int) -> int:
    """One worker: apply a lane's lines with a ledger of its own; answers to a file."""
    ledger = Ledger(settings)
    done = 0
    try:
        with open(answers, "wb") as out:
            for outcome in ledger.ingest_numbered(_lines_of(Path(lane)), batch_size=batch_size):
                _write(out, [outcome.line, outcome.status, outcome.error])
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
    with tempfile.TemporaryDirectory(prefix="ledger-ingest-") as folder:
        base = Path(folder)
        lanes = [base / f"lane{i}.jsonl" for i in range(workers)]
        answers = [base / f"answers{i}.jsonl" for i in range(workers)]
        reference = base / "reference.jsonl"
        with ExitStack() as files:
            handles = [files.enter_context(open(path, "wb")) for path in lanes]
            ref = files.enter_context(open(reference, "wb"))
            for number, line in items:
                if isinstance(line, LedgerError):
                    _write(ref, [number, None, str(line)])  # unreadable: answered as it is
                    continue
                officer = officer_of(line)
                _write(ref if officer is None else handles[lane_of(officer, workers)], [number, line])

        # Reference data first, in input order, in this process.
        settled = base / "reference-answers.jsonl"
        with open(settled, "wb") as out:
            for outcome in ledger.ingest_numbered(_reference_items(reference), batch_size=batch_size):
                _write(out, [outcome.line, outcome.status, outcome.error])
                if progress:
                    progress(1)

        # The officers' lanes, one process each.
        context = get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_apply_lane, ledger.settings, str(lanes[i]), str(answers[i]), batch_size)
                       for i in range(workers)]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                count = future.result()  # a worker's failure is the run's
                if progress:
                    progress(count)

        for number, status, error in heapq.merge(*(_rows(p) for p in (settled, *answers)), key=lambda r: r[0]):
            yield Outcome(int(number), str(status), error)
