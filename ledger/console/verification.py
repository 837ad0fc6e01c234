"""The integrity page's verification: one run at a time per store, never inside a request.

A full verify recomputes every chain, so its cost grows with the whole history (seconds
for a hundred thousand events). A page therefore shows the latest result with when it
was made and up to which position; a run starts in the background when there is none
yet or when an auditor asks for one, and never while another is running. Requests
that give up early leave nothing running behind them, and any number of them start at
most one run.

The head shown is the log chain's, read just before that run, and it is never signed
here: the web tier holds no signing key and never reads the key's folder (DOMAIN.md,
"Tamper evidence"). Checkpoints are signed by `ledger checkpoint` and the relay, which
sign only histories that extend what they signed before.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ledger.integrity import checkpoint

log = logging.getLogger("ledger.console")


@dataclass
class _Runs:
    lock: threading.Lock = field(default_factory=threading.Lock)
    result: dict[str, Any] | None = None
    running_since: datetime | None = None


_BY_STORE: dict[str, _Runs] = {}
_REGISTRY = threading.Lock()


def _runs(services: Any) -> _Runs:
    with _REGISTRY:
        return _BY_STORE.setdefault(services.settings.store, _Runs())


def state(services: Any, start_if_none: bool = True) -> dict[str, Any]:
    """The latest result (or None) and whether a run is under way; starts one if there is no result."""
    runs = _runs(services)
    with runs.lock:
        if start_if_none and runs.result is None and runs.running_since is None:
            _start(services, runs)
        return {"result": runs.result, "running_since": runs.running_since}


def request_run(services: Any) -> bool:
    """Start a run unless one is under way; whether this call started it."""
    runs = _runs(services)
    with runs.lock:
        if runs.running_since is not None:
            return False
        _start(services, runs)
        return True


def _start(services: Any, runs: _Runs) -> None:
    runs.running_since = datetime.now(timezone.utc)
    threading.Thread(target=_run, args=(services, runs), name="console-verify", daemon=True).start()


def _run(services: Any, runs: _Runs) -> None:
    result: dict[str, Any]
    try:
        position, root = checkpoint.head(services.ledger.recorder)
        checked, breaks = services.audit.verify()
        result = {"position": position, "root": root.hex(), "checked": checked, "breaks": breaks[:500],
                  "break_count": len(breaks), "error": None}
    except Exception as exc:  # shown on the page; the next run may succeed
        log.exception("integrity verification failed")
        result = {"error": f"{type(exc).__name__}: {exc}", "break_count": None}
    result["at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with runs.lock:
        runs.result = result
        runs.running_since = None
