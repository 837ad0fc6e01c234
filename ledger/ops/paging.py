"""Reading a long sequence in pages: each page starts after the last one's position (keyset paging)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def pages(read: Callable[[int], Sequence[T]], position: Callable[[T], int], after: int = 0) -> Iterator[Sequence[T]]:
    """The pages ``read(after)`` returns, until an empty one; each is read only once the
    one before was handled, after that page's last ``position``."""
    while page := read(after):
        yield page
        after = position(page[-1])
