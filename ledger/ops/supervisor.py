"""A supervisor of child processes: the production shape on one machine (``ledger up``).

Each child runs in its own process group (a session of its own), so a terminal's
Ctrl-C reaches only the supervisor, and stopping a child also stops anything it
started (uvicorn's workers). A child that exits while the supervisor runs is
restarted after a backoff that doubles on each quick exit (up to ``max_backoff``)
and starts over once a child has stayed up ``stable_after`` seconds.

On stop (SIGTERM, SIGINT) every child gets SIGTERM at once, and each has until
``stop_timeout`` to finish its batch and exit; whatever is left of a child's process
group then gets SIGKILL, so nothing of the supervisor's is left running. On Linux a
child also gets SIGTERM if the supervisor itself dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("ledger.ops.supervisor")


@dataclass(frozen=True)
class ChildSpec:
    """A child to keep running: its name (relay, projector-1, api) and its command line."""

    name: str
    argv: tuple[str, ...]


@dataclass
class _Child:
    spec: ChildSpec
    backoff: float
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    due: float = 0.0  # when a stopped child may be started again
    restarts: int = 0
    pids: list[int] = field(default_factory=list)  # every pid this child had, for the record


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor goes away (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, up to ``timeout`` seconds to exit, then SIGKILL; the process is reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Starts the children, restarts the ones that exit, and stops them all on request."""

    def __init__(self, children: Sequence[ChildSpec], env: Mapping[str, str] | None = None,
                 initial_backoff: float = 0.5, max_backoff: float = 30.0, stable_after: float = 30.0,
                 stop_timeout: float = 20.0, poll: float = 0.2) -> None:
        self.children = [_Child(spec, initial_backoff) for spec in children]
        self.env = dict(os.environ if env is None else env)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.poll = poll
        self.stop = threading.Event()

    def _start(self, child: _Child) -> None:
        proc = subprocess.Popen(list(child.spec.argv), env=self.env, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=die_with_parent)
        child.proc, child.started = proc, time.monotonic()
        child.pids.append(proc.pid)
        log.info("started %s", child.spec.name, extra={"child": child.spec.name, "pid": proc.pid})

    def _reap(self, child: _Child, now: float) -> None:
        """A child that exited: clear what is left of its group, schedule its restart."""
        assert child.proc is not None
        code, pid = child.proc.returncode, child.proc.pid
        _signal_group(pid, signal.SIGKILL)  # e.g. workers of a server that crashed
        if now - child.started >= self.stable_after:
            child.backoff = self.initial_backoff
        child.due = now + child.backoff
        log.warning("%s exited with status %s; restarting in %.1fs", child.spec.name, code, child.backoff,
                    extra={"child": child.spec.name, "pid": pid, "status": code})
        child.backoff = min(child.backoff * 2, self.max_backoff)
        child.proc = None
        child.restarts += 1

    def run(self) -> int:
        """Supervise until ``stop`` is set, then stop every child; returns the exit status (0)."""
        for child in self.children:
            self._start(child)
        try:
            while not self.stop.wait(self.poll):
                now = time.monotonic()
                for child in self.children:
                    if child.proc is not None and child.proc.poll() is not None:
                        self._reap(child, now)
                    if child.proc is None and now >= child.due and not self.stop.is_set():
                        self._start(child)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """SIGTERM to every child's group, wait up to ``stop_timeout``, then SIGKILL what is left."""
        running = [c for c in self.children if c.proc is not None]
        for child in running:
            assert child.proc is not None
            _signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            assert child.proc is not None
            try:
                code = child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                log.info("%s stopped with status %s", child.spec.name, code,
                         extra={"child": child.spec.name, "pid": child.proc.pid, "status": code})
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killed", child.spec.name, self.stop_timeout,
                            extra={"child": child.spec.name, "pid": child.proc.pid})
                _signal_group(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        for child in running:  # grandchildren that outlived their parent
            assert child.proc is not None
            if _group_alive(child.proc.pid):
                _signal_group(child.proc.pid, signal.SIGKILL)
            child.proc = None
