"""Running the real ``ledger`` command in child processes, and comparing stores."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from ledger.config import Settings
from ledger.write.application import Ledger
from tests.conftest import WORKER_DIR

ROOT = Path(__file__).resolve().parents[2]


def ledger_cmd(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "ledger.cli", "--store", settings.store, *args]


# Checkpoint signing keys of this run, in the xdist worker's own folder (tests/conftest.py),
# out of the user's config folder. One key per store: a signer remembers the last checkpoint
# it signed (beside its key) and refuses to sign another store's history, which would be a fork.
_KEYS = WORKER_DIR / "keys"


def signing_key_for(settings: Settings | None = None) -> Path:
    """The checkpoint key the ledger's child processes for this store use (a fresh one without a store)."""
    name = hashlib.sha256(settings.store.encode()).hexdigest()[:24] if settings else uuid.uuid4().hex
    return _KEYS / f"{name}.pem"


def child_env(settings: Settings | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["LEDGER_SIGNING_KEY"] = str(signing_key_for(settings))
    return env


def run_ledger(settings: Settings, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ledger_cmd(settings, *args), capture_output=True, text=True,
                          env=child_env(settings), check=check, timeout=600)


def popen_ledger(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(ledger_cmd(settings, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env(settings))


_VOLATILE = ("event_id", "recorded_at")


def store_facts(settings: Settings) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every aggregate's events, keyed by (kind, id), without ids and recording times."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    ledger = Ledger(settings)
    for _, event in ledger.iter_log():
        key = _entity_key(event)
        body = {k: v for k, v in event.items() if k not in _VOLATILE and not k.endswith("_ct")}
        out.setdefault(key, []).append(body)
    ledger.close()
    return out


def _entity_key(event: dict[str, Any]) -> tuple[str, str]:
    if event["type"] == "CapacityPlanDeclared":
        return "plan", f"{event['ministry_id']}:{event['fy']}"
    for field in ("officer_id", "post_id", "course_id", "org_id", "competency_id"):
        if field in event and event[field] is not None:
            return field, event[field]
    raise AssertionError(event)
