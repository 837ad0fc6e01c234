"""Commands that write: applying a command stream, and generating one."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO

import click

from ledger.cli.common import Context
from ledger.cli.render import emit_json, err, progress_bar, rate
from ledger.domain.errors import LedgerError
from ledger.write.application import Outcome
from ledger.write.lines import read_lines


def _count_lines(path: str) -> int | None:
    if path == "-":
        return None
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError as exc:
        raise LedgerError(f"FILE: cannot read {path!r}: {exc.strerror}") from None


def _open_input(path: str) -> IO[bytes]:
    # Bytes, not text: each line is decoded on its own (ledger.write.lines), so a line that
    # is not UTF-8 is that line's rejection, not the end of the whole file.
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise LedgerError(f"FILE: cannot read {path!r}: {exc.strerror}") from None


@click.command()
@click.argument("file", metavar="FILE|-")
@click.option("--json", "as_json", is_flag=True, help="One JSON answer per non-blank line on stdout.")
@click.option("--batch-size", default=500, show_default=True, help="Commands per transaction.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--show-rejected", default=20, show_default=True, help="Without --json: print at most this many rejected lines.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes applying officers' commands (sharded by officer; reference commands first, in order).")
@click.pass_obj
def ingest(obj: Context, file: str, as_json: bool, batch_size: int, progress: bool | None, show_rejected: int,
           workers: int) -> None:
    """Apply the JSON Lines commands in FILE (or - for stdin), in order.

    Each non-blank line is answered accepted, duplicate (same command_id and
    content seen before) or rejected (with the reason). A rejected line writes
    nothing; the lines around it are still applied. Exit status 0 when nothing
    was rejected, 1 otherwise.

    With --workers N, reference commands (organisations, competencies, posts,
    courses, plans) are applied first, in order, then each officer's commands in
    order by one of N processes; answers still come in input order, at the end.
    """
    if batch_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch-size")
    ledger = obj.ledger
    total = _count_lines(file)
    show = (err.is_terminal if progress is None else progress) and not as_json
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    with _open_input(file) as fh, progress_bar("ingesting", "lines", show) as bar:
        task = bar.add_task("ingest", total=total, rate="-")
        outcomes: Iterator[Outcome]
        if workers > 1:
            from ledger.write.sharded import ingest_sharded

            def advance(n: int) -> None:
                bar.advance(task, n)

            outcomes = ingest_sharded(ledger, read_lines(fh), workers, batch_size, advance if show else None)
            show = False  # the lanes report their progress themselves
        else:
            outcomes = ledger.ingest_numbered(read_lines(fh), batch_size=batch_size)
        for outcome in outcomes:
            counts[outcome.status] += 1
            if as_json:
                emit_json(outcome.as_json())
            elif outcome.error and counts["rejected"] <= show_rejected:
                err.print(f"line {outcome.line}: rejected: {outcome.error}", highlight=False, markup=False)
            if show:
                elapsed = time.perf_counter() - started
                bar.update(task, completed=outcome.line, rate=rate(outcome.line, elapsed))
    elapsed = time.perf_counter() - started
    if not as_json:
        n = sum(counts.values())
        if counts["rejected"] > show_rejected:
            err.print(f"... and {counts['rejected'] - show_rejected:,} more rejected lines (--json lists every answer)")
        err.print(
            f"{n:,} lines: {counts['accepted']:,} accepted, {counts['duplicate']:,} duplicate, "
            f"{counts['rejected']:,} rejected in {elapsed:.1f}s ({n / elapsed if elapsed else 0:,.0f} lines/s)",
            highlight=False,
        )
    sys.exit(1 if counts["rejected"] else 0)


@click.command()
@click.option("--officers", default=2000, show_default=True, help="How many officers.")
@click.option("--seed", default=1, show_default=True, help="Random seed: the same seed gives the same stream.")
@click.option("--out", "out_path", default="-", show_default=True, help="Output file, or - for stdout.")
def generate(officers: int, seed: int, out_path: str) -> None:
    """Write a realistic synthetic command stream as JSON Lines.

    Ministries, departments and organisations, a competency dictionary, FRAC posts,
    about 50 courses, and officers' careers across three financial years, with a
    few percent of invalid commands. Every command has a command_id.
    """
    from ledger.generate import generate_lines

    if officers < 0:
        raise click.BadParameter("must be >= 0", param_hint="--officers")

    def write(target: IO[str]) -> None:
        for line in generate_lines(officers, seed):
            target.write(line + "\n")

    if out_path == "-":
        write(sys.stdout)
    else:
        with open(out_path, "w", encoding="utf-8") as fh:
            write(fh)


COMMANDS: tuple[click.Command, ...] = (ingest, generate)
