"""Running the real ``ledger`` command in child processes, and comparing stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledger.config import Settings
from ledger.write.application import Ledger
from tests.conftest import WORKER_DIR

ROOT = Path(__file__).resolve().parents[2]


def ledger_cmd(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "ledger.cli", "--store", settings.store, *args]


# One per xdist worker (tests/conftest.py), so workers never race to create it.
TEST_SIGNING_KEY = WORKER_DIR / "signing-key.pem"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # Checkpoint signing keys of test runs stay out of the user's config folder.
    env.setdefault("LEDGER_SIGNING_KEY", str(TEST_SIGNING_KEY))
    return env


def run_ledger(settings: Settings, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ledger_cmd(settings, *args), capture_output=True, text=True,
                          env=child_env(), check=check, timeout=600)


def popen_ledger(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(ledger_cmd(settings, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())


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
