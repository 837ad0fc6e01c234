"""Benchmark of the xAPI LRS (issue 24): storing statements and GET /statements with filters.

Fills a fresh SQLite store with N statements (``--statements``, default 1,000,000; ``--quick``:
20,000) through the LRS's storage path in batches (the same path POST takes: validation is not
part of it), then times GET /xapi/statements through the whole app (authentication, query,
unsealing, JSON) with each filter: ``agent``, ``verb``, ``activity``, ``registration``,
``since``, ``until`` (limit 10). Target: p99 < 50 ms at 1M. Also times POST of single
statements and of batches of 50 through the app.

    python bench/xapi_bench.py [--quick] [--statements N]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VERBS = [f"http://adlnet.gov/expapi/verbs/{v}" for v in ("experienced", "attended", "answered", "launched",
                                                         "initialized", "terminated", "commented", "shared")]


def make(i: int, learners: int, activities: int, rng: random.Random) -> dict[str, Any]:
    learner = rng.randrange(learners)
    return {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "actor": {"objectType": "Agent", "name": f"Learner {learner}", "mbox": f"mailto:l{learner}@example.org"},
            "verb": {"id": VERBS[i % len(VERBS)], "display": {"en-US": "did"}},
            "object": {"objectType": "Activity", "id": f"http://example.com/act/{rng.randrange(activities)}"},
            "context": {"registration": str(uuid.UUID(int=learner * 7919 + 1, version=4)),
                        "contextActivities": {"parent": [{"id": f"http://example.com/course/{learner % 50}"}]}},
            "timestamp": "2025-06-01T10:00:00Z", "version": "2.0.0",
            "authority": {"objectType": "Agent", "account": {"homePage": "http://x/xapi/tokens", "name": "bench"}}}


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--statements", type=int, default=None)
    args = parser.parse_args()
    total = args.statements or (20_000 if args.quick else 1_000_000)
    from fastapi.testclient import TestClient

    from ledger.api.app import create_app
    from ledger.api.auth import create_token
    from ledger.config import Settings
    from ledger.store.db import Database
    from ledger.write.application import Ledger
    from ledger.xapi.store import StatementStore

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(store=f"sqlite:///{tmp}/xapi.db")
        ledger = Ledger(settings)
        store = StatementStore(ledger, settings, lambda db=Database(settings): db)
        rng = random.Random(7)
        learners, activities = max(total // 20, 10), max(total // 100, 10)
        started = time.perf_counter()
        batch = 500
        for start in range(0, total, batch):
            store.store([make(i, learners, activities, rng) for i in range(start, min(total, start + batch))], "bench")
        fill = time.perf_counter() - started
        print(f"stored {total} statements in {fill:.1f} s ({total / fill:,.0f}/s, batches of {batch})")
        ledger.close()
        token = create_token(Database(settings), "bench", "lrs")
        headers = {"X-Experience-API-Version": "2.0.0",
                   "Authorization": "Basic " + base64.b64encode(f"bench:{token}".encode()).decode()}
        with TestClient(create_app(settings, project=False)) as client:
            sample = client.get("/xapi/statements?limit=1", headers=headers).json()["statements"][0]
            stored = sample["stored"]
            queries = {
                "agent": lambda: "agent=" + quote(json.dumps({"mbox": f"mailto:l{rng.randrange(learners)}@example.org"})),
                "verb": lambda: "verb=" + quote(rng.choice(VERBS)),
                "activity": lambda: "activity=" + quote(f"http://example.com/act/{rng.randrange(activities)}"),
                "registration": lambda: "registration=" + str(uuid.UUID(int=rng.randrange(learners) * 7919 + 1,
                                                                         version=4)),
                "since": lambda: "since=" + quote(stored),
                "until": lambda: "until=" + quote(stored),
            }
            for name, query in queries.items():
                times = []
                for _ in range(200):
                    url = f"/xapi/statements?limit=10&{query()}"
                    t = time.perf_counter()
                    r = client.get(url, headers=headers)
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text
                print(f"GET {name:12s} p50 {p(times, 0.5):6.1f} ms  p99 {p(times, 0.99):6.1f} ms")
            for size, rounds in ((1, 400), (50, 40)):
                t = time.perf_counter()
                for _ in range(rounds):
                    body = [make(0, learners, activities, rng) for _ in range(size)]
                    for s in body:
                        del s["authority"], s["version"]
                    r = client.post("/xapi/statements", json=body if size > 1 else body[0], headers=headers)
                    assert r.status_code == 200, r.text
                elapsed = time.perf_counter() - t
                print(f"POST batches of {size:2d}: {size * rounds / elapsed:,.0f} statements/s "
                      f"({statistics.mean([elapsed / rounds]) * 1000:.1f} ms a request, one client)")


if __name__ == "__main__":
    main()
