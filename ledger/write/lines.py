"""JSON Lines framing: a binary stream into numbered lines, each with its own answer.

A line ends only at b"\\n" (a b"\\r" right before it is dropped). Nothing else ends a
line: not a bare b"\\r", and not the characters ``str.splitlines`` also splits on
(\\x0b, \\x0c, \\x1c..\\x1e, \\x85, U+2028, U+2029), which may sit inside a JSON string.
Each line is decoded as strict UTF-8 on its own, so one bad line is one rejected
line and its neighbours are untouched. A line longer than the limit is reported and
skipped without ever being held in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from ledger.domain.errors import InvalidCommand

# One command is a few hundred bytes; the largest real one (a post with its whole
# FRAC breakdown) a few tens of kilobytes. 1 MiB is far above any honest command and
# bounds what one line can cost.
MAX_LINE_BYTES = 1 << 20
# How much of an over-long line is read at a time while skipping to its end.
SKIP_CHUNK = 1 << 16
# JSON's whitespace: a line made only of these is blank (numbered, never answered).
_JSON_WHITESPACE = b" \t\r"

Line = tuple[int, str | InvalidCommand]


def too_long(max_bytes: int = MAX_LINE_BYTES) -> InvalidCommand:
    """The answer for a line over the size limit."""
    return InvalidCommand(f"line: longer than {max_bytes:,} bytes")


def decode_line(raw: bytes) -> str | InvalidCommand:
    """One line's bytes as text, or the error that rejects just that line."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        return InvalidCommand(
            f"line: not valid UTF-8 (byte 0x{bad:02x} at byte {exc.start + 1}: {exc.reason})"
        )


def read_lines(
    stream: IO[bytes], *, max_bytes: int = MAX_LINE_BYTES, skip_blank: bool = True
) -> Iterator[Line]:
    """Yield ``(number, text or error)`` for each line of ``stream``, numbered from 1.

    Blank lines (empty or JSON whitespace only) are counted but, with ``skip_blank``,
    not yielded. A final line without b"\\n" is still a line. At most ``max_bytes``
    plus two bytes of one line are in memory at any time.
    """
    number = 0
    while True:
        # Room for the longest allowed line, its b"\r" and its b"\n".
        raw = stream.readline(max_bytes + 2)
        if not raw:
            return
        number += 1
        if raw.endswith(b"\n"):
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        elif len(raw) == max_bytes + 2:
            _skip_rest_of_line(stream)
            yield number, too_long(max_bytes)
            continue
        if len(raw) > max_bytes:
            yield number, too_long(max_bytes)
        elif skip_blank and not raw.strip(_JSON_WHITESPACE):
            continue
        else:
            yield number, decode_line(raw)


def _skip_rest_of_line(stream: IO[bytes]) -> None:
    """Read and drop the rest of an over-long line, one bounded chunk at a time."""
    while True:
        part = stream.readline(SKIP_CHUNK)
        if not part or part.endswith(b"\n"):
            return
