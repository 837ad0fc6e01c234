"""Benchmark of corrections: what a late fact and a retraction cost, against the officer's
history length and the store's size (DOMAIN.md "Late facts, corrections and retractions").

For each store size (background officers from ``ledger generate``) and each history
length L, one officer gets L events (transfers between two postings), then, repeatedly:
a late enrolment inserted in the middle of its history (accepted: the rules replay the
later half), the projections applying it (each read model re-folds the officer and applies
the difference), a retraction of that enrolment, and the projections applying that. Each
figure is the median over the repetitions, in milliseconds, beside the same officer's
ordinary (not late) command in the same run as the baseline. Writes
``bench/corrections-results.json`` and prints a table.

    python bench/corrections_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.config import Settings  # noqa: E402
from ledger.consumers.log import LogFollower  # noqa: E402
from ledger.generate import generate_lines  # noqa: E402
from ledger.projections.runner import Runner  # noqa: E402
from ledger.store.db import Database  # noqa: E402
from ledger.write.application import Ledger  # noqa: E402

IST = timezone(timedelta(hours=5, minutes=30))
START = datetime(2023, 4, 1, 9, 0, tzinfo=IST)
REFERENCE = [
    {"type": "define_organisation", "org_id": "B-MIN", "name": "Bench Ministry", "kind": "ministry"},
    {"type": "define_organisation", "org_id": "B-DEPT", "name": "Bench Department", "kind": "department",
     "parent_id": "B-MIN"},
]


def _courses(n: int) -> list[dict[str, Any]]:
    return [{"type": "publish_course", "course_id": f"B-K{i}", "title": f"Bench course {i}", "provider": "bench",
             "duration_hours": 2, "competencies": []} for i in range(n)]


def _ok(ledger: Ledger, command: dict[str, Any]) -> float:
    started = time.perf_counter()
    outcome = ledger.execute(command)
    took = time.perf_counter() - started
    assert outcome.status == "accepted", (command, outcome)
    return took


def _project(ledger: Ledger, runner: Runner) -> float:
    started = time.perf_counter()
    LogFollower(ledger, runner).run(until_idle=True)
    return time.perf_counter() - started


def measure(folder: Path, background: int, lengths: list[int], reps: int) -> list[dict[str, Any]]:
    settings = Settings(store=f"sqlite:///{folder / f'c{background}.db'}")
    ledger = Ledger(settings)
    list(ledger.ingest(generate_lines(background, seed=3)))
    for command in [*REFERENCE, *_courses(reps * len(lengths) * 2)]:
        _ok(ledger, command)
    runner = Runner(Database(settings))
    _project(ledger, runner)
    events = ledger.recorder.max_notification_id()
    rows = []
    course = 0
    for length in lengths:
        officer = f"B-O{length}"
        _ok(ledger, {"type": "register_officer", "officer_id": officer, "name": "Bench Officer",
                     "email": "bench@example.gov.in", "org_id": "B-MIN", "occurred_at": START.isoformat()})
        for i in range(1, length):
            _ok(ledger, {"type": "transfer_officer", "officer_id": officer, "org_id": "B-DEPT" if i % 2 else "B-MIN",
                         "occurred_at": (START + timedelta(hours=i)).isoformat()})
        _project(ledger, runner)
        end = START + timedelta(hours=length)
        timings: dict[str, list[float]] = {k: [] for k in ("ordinary", "ordinary_project", "late", "late_project",
                                                           "retract", "retract_project")}
        for rep in range(reps):
            ordinary = {"type": "enrol", "officer_id": officer, "course_id": f"B-K{course}",
                        "occurred_at": (end + timedelta(minutes=rep)).isoformat()}
            late = {"type": "enrol", "officer_id": officer, "course_id": f"B-K{course + 1}",
                    "occurred_at": (START + timedelta(hours=length / 2, minutes=rep)).isoformat()}
            course += 2
            timings["ordinary"].append(_ok(ledger, ordinary))
            timings["ordinary_project"].append(_project(ledger, runner))
            timings["late"].append(_ok(ledger, late))
            timings["late_project"].append(_project(ledger, runner))
            version = len(ledger.officer_events(officer))
            timings["retract"].append(_ok(ledger, {"type": "retract", "officer_id": officer, "versions": [version],
                                                   "reason": "recorded_in_error"}))
            timings["retract_project"].append(_project(ledger, runner))
        rows.append({"store_events": events, "history": length,
                     **{k: round(1000 * statistics.median(v), 2) for k, v in timings.items()}})
        print(json.dumps(rows[-1]), flush=True)
    ledger.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small store and fewer repetitions")
    args = parser.parse_args()
    sizes = [100, 1000] if args.quick else [1000, 10000]
    lengths = [10, 100] if args.quick else [10, 100, 1000]
    reps = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as folder:
        rows = [row for size in sizes for row in measure(Path(folder), size, lengths, reps)]
    results = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": rows}
    name = "corrections-results-quick.json" if args.quick else "corrections-results.json"
    (ROOT / "bench" / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'store events':>12} {'history':>7} {'ordinary':>9} {'+project':>9} {'late':>7} {'+project':>9} "
          f"{'retract':>8} {'+project':>9}   (ms, medians)")
    for r in rows:
        print(f"{r['store_events']:>12,} {r['history']:>7} {r['ordinary']:>9} {r['ordinary_project']:>9} "
              f"{r['late']:>7} {r['late_project']:>9} {r['retract']:>8} {r['retract_project']:>9}")


if __name__ == "__main__":
    main()
