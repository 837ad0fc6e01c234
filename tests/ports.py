"""Loopback ports for the servers tests start, safe when several pytest-xdist workers run at once.

``free_port()`` as the kernel hands it out (bind to port 0) comes from the ephemeral range
(``ip_local_port_range``, 32768-60999 here), the same range every outgoing connection takes
its local port from. Between the moment such a port is picked and the moment the server
binds it, another worker's client connection, or another worker's own pick, can take it.
So each test process here takes ports from its own block below that range (20000-31999,
split between the workers), in turn, and only those that nothing is bound to.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

_FIRST, _END = 20_000, 32_000


def _block() -> range:
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = (_END - _FIRST) // count
    start = _FIRST + (index % count) * size
    return range(start, start + size)


_BLOCK = _block()
# A random place to start, so consecutive runs do not reuse ports a previous run's
# servers may still hold in TIME_WAIT.
_NEXT = itertools.count(random.randrange(len(_BLOCK)))


def _bindable(port: int) -> bool:
    with socket.socket() as s:  # no SO_REUSEADDR: a port with sockets in TIME_WAIT is skipped too
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive loopback ports nothing is bound to, from this process's own block."""
    for _ in range(len(_BLOCK)):
        first = _BLOCK.start + next(_NEXT) % len(_BLOCK)
        if first + n <= _BLOCK.stop and all(_bindable(first + i) for i in range(n)):
            for _ in range(n - 1):
                next(_NEXT)
            return first
    raise RuntimeError(f"no {n} free ports in {_BLOCK.start}-{_BLOCK.stop - 1}")


def free_port() -> int:
    """A loopback port nothing is bound to, from this process's own block."""
    return free_ports(1)
