"""Benchmark of the reviewers' console: the officer page of an officer with 200 events.

``bench_console(quick)`` builds a store (a generated world, then one officer whose
history holds 200 events: 50 courses enrolled, progressed, assessed and completed),
signs in as an auditor and times ``GET /console/officers/{id}`` through the whole app
(authentication, authorization from the store, the record, history, competency
profile, access-log entry and template), now and with the "as of" and "compare"
controls. Target: p95 under 300 ms.

    python bench/console_bench.py [--quick]
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OFFICER = "BENCH-200"
IST = timezone(timedelta(hours=5, minutes=30))


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _officer_commands(world: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One officer with exactly 200 events, on a generated post, through generated courses."""
    post = next(c for c in world if c.get("type") == "define_post")
    courses = [c for c in world if c.get("type") == "publish_course"][:50]
    start = datetime(2024, 4, 1, 9, 0, tzinfo=IST)
    tick = iter(range(1000))

    def at() -> str:
        return (start + timedelta(hours=6 * next(tick))).isoformat()

    commands: list[dict[str, Any]] = [{
        "type": "register_officer", "officer_id": OFFICER, "name": "Bench Officer", "email": "bench@example.gov.in",
        "org_id": post["org_id"], "post_id": post["post_id"], "occurred_at": at()}]
    for course in courses:
        cid = course["course_id"]
        steps: list[tuple[str, dict[str, Any]]] = [("enrol", {}), ("record_progress", {"percent": 50}),
                                                   ("record_progress", {"percent": 100})]
        if course.get("assessment"):
            steps.append(("attempt_assessment", {"score": 100}))
        steps.append(("complete_course", {}))
        commands += [{"type": kind, "officer_id": OFFICER, "course_id": cid, "occurred_at": at(), **extra}
                     for kind, extra in steps]
    assert len(commands) >= 200, "the generated world has too few courses"
    return commands[:200]  # a progress report is an event only when it moves forward


def bench_console(quick: bool) -> dict[str, float]:
    """p50/p95 (ms) of the officer page for an officer with 200 events, now and as of a date with a diff."""
    from fastapi.testclient import TestClient

    from ledger.api.app import create_app
    from ledger.api.auth import create_token
    from ledger.config import Settings
    from ledger.consumers.log import LogFollower
    from ledger.generate import generate_lines
    from ledger.projections.runner import Runner
    from ledger.store import schema
    from ledger.store.db import Database
    from ledger.write.application import Ledger

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(store=f"sqlite:///{Path(folder) / 'ledger.store.db'}")
        db = Database(settings)
        db.schema_checked = True
        schema.migrate(db)
        lines = list(generate_lines(200 if quick else 2_000, seed=11))
        world = [json.loads(line) for line in lines if line.startswith("{")]
        ledger = Ledger(settings)
        list(ledger.ingest(lines, batch_size=1000))
        for command in _officer_commands([c for c in world if isinstance(c, dict)]):
            outcome = ledger.execute(command)
            assert outcome.status == "accepted", (command, outcome)
        assert len(ledger.officer_events(OFFICER)) == 200, len(ledger.officer_events(OFFICER))
        LogFollower(ledger, Runner(Database(settings))).run(until_idle=True)
        token = create_token(db, "bench-auditor", "auditor")
        samples = 30 if quick else 200
        results: dict[str, float] = {"events": 200.0, "samples": float(samples)}
        with TestClient(create_app(settings, project=False)) as client:
            form = client.get("/console/sign-in").text  # sign in as a browser does (a session on the server)
            csrf = re.search(r'name="csrf" value="([^"]*)"', form)
            assert csrf is not None
            assert client.post("/console/sign-in", data={"csrf": csrf[1], "token": token}).status_code == 200
            for name, path in (("officer_page", f"/console/officers/{OFFICER}"),
                               ("officer_page_as_of_diff",
                                f"/console/officers/{OFFICER}?as_of=2024-10-01&compare=2024-06-01")):
                for _ in range(5):  # warm the caches and the thread pool
                    assert client.get(path).status_code == 200
                times = []
                for _ in range(samples):
                    began = time.perf_counter()
                    answer = client.get(path)
                    times.append((time.perf_counter() - began) * 1000)
                    assert answer.status_code == 200 and "Bench Officer" in answer.text
                results[f"{name}_p50_ms"] = round(statistics.median(times), 2)
                results[f"{name}_p95_ms"] = round(_percentile(times, 95), 2)
        ledger.close()
        db.close()
    results["target_p95_ms"] = 300.0
    return results


if __name__ == "__main__":
    print(json.dumps(bench_console("--quick" in sys.argv), indent=2))
