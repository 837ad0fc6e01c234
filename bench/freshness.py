"""Freshness: from a `POST /commands` answer to the change being visible through the API.

While a load of registrations arrives at a sustained rate (default 1,000 commands/s, in
requests of 20), a probe registers one more officer every 100 ms and, as soon as the
POST is answered, polls `GET /officers/{id}/record` every 2 ms until it answers 200.
The time from the POST's answer to that 200 is one sample.

Embedded mode: one `ledger serve` on a SQLite store, following the store in-process.
Kafka mode: `ledger serve --no-project`, `ledger relay` and `ledger project` on a
PostgreSQL store, with the broker in between.

    python bench/freshness.py [--mode embedded|kafka|both] [--seconds 20] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.config import Settings  # noqa: E402
from ledger.ops.supervisor import stop_process  # noqa: E402

PG_ADMIN = os.environ.get("LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REFERENCE = [
    {"type": "define_organisation", "org_id": "MOF", "name": "Ministry of Finance", "kind": "ministry"},
]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _register(officer_id: str) -> dict[str, Any]:
    return {"type": "register_officer", "officer_id": officer_id, "name": "Bench Officer",
            "email": "bench@gov.in", "org_id": "MOF", "occurred_at": "2025-04-01T10:00:00+05:30"}


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "ledger.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        stop_process(proc, timeout=30)


@contextmanager
def _store(mode: str) -> Iterator[Settings]:
    if mode == "embedded":
        folder = Path(tempfile.mkdtemp(prefix="ledger-fresh-"))
        yield Settings(store=f"sqlite:///{folder / 'fresh.db'}")
        return
    import psycopg

    name = f"ledger_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Settings(store=PG_ADMIN.rpartition("/")[0] + "/" + name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(mode: str, seconds: float = 20.0, rate: int = 1000, per_request: int = 20) -> dict[str, Any]:
    """p50/p99 freshness (ms) in ``mode`` at ``rate`` commands/s sustained for ``seconds``."""
    import httpx

    from ledger.api.auth import create_token
    from ledger.kafka.broker import free_port, kafka_broker
    from ledger.store import schema
    from ledger.store.db import Database

    with ExitStack() as stack:
        settings = stack.enter_context(_store(mode))
        db = Database(settings)
        db.schema_checked = True
        schema.migrate(db)
        ingest = create_token(db, "fresh-ingest", "ingest")
        auditor = create_token(db, "fresh-auditor", "auditor")
        db.close()
        env = dict(os.environ, PYTHONPATH=str(ROOT), LEDGER_STORE=settings.store)
        port = free_port()
        serve = ["serve", "--port", str(port)]
        if mode == "kafka":
            bootstrap = stack.enter_context(kafka_broker())
            prefix = f"fresh{uuid.uuid4().hex[:6]}"
            env.update(LEDGER_KAFKA_BOOTSTRAP=bootstrap, LEDGER_TOPIC_PREFIX=prefix)
            stack.enter_context(_process(["relay"], env))
            stack.enter_context(_process(["project"], env))
            serve.append("--no-project")
        stack.enter_context(_process(serve, env))
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        writer = stack.enter_context(httpx.Client(base_url=base, timeout=60,
                                                  headers={"Authorization": f"Bearer {ingest}"}))
        assert writer.post("/commands", json=REFERENCE).status_code == 200
        return _drive(base, ingest, auditor, seconds, rate, per_request) | {"mode": mode, "rate": rate}
    raise AssertionError("unreachable")


def _drive(base: str, ingest: str, auditor: str, seconds: float, rate: int, per_request: int) -> dict[str, Any]:
    import httpx

    stop = threading.Event()
    sent = [0]
    errors: list[str] = []

    def load(worker: int, workers: int) -> None:
        interval = per_request * workers / rate
        n = 0
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {ingest}"}) as client:
            due = time.perf_counter()
            while not stop.is_set():
                batch = [_register(f"L{worker}-{n + i:08d}") for i in range(per_request)]
                n += per_request
                answer = client.post("/commands", json=batch)
                if answer.status_code != 200:
                    errors.append(f"load: {answer.status_code}")
                sent[0] += per_request
                due += interval
                time.sleep(max(0.0, due - time.perf_counter()))

    samples: list[float] = []

    def probe() -> None:
        with (httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {ingest}"}) as w,
              httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {auditor}"}) as r):
            i = 0
            while not stop.is_set():
                officer = f"P-{i:08d}"
                i += 1
                answer = w.post("/commands", json=[_register(officer)])
                answered = time.perf_counter()
                if answer.status_code != 200 or answer.json()[0]["status"] != "accepted":
                    errors.append(f"probe: {answer.status_code} {answer.text[:100]}")
                    continue
                while r.get(f"/officers/{officer}/record").status_code != 200:
                    if time.perf_counter() - answered > 30:
                        errors.append(f"probe: {officer} not visible after 30 s")
                        break
                    time.sleep(0.002)
                else:
                    samples.append(time.perf_counter() - answered)
                time.sleep(0.1)

    workers = 4
    threads = [threading.Thread(target=load, args=(w, workers), daemon=True) for w in range(workers)]
    threads.append(threading.Thread(target=probe, daemon=True))
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.perf_counter() - started
    assert samples, f"no sample: {errors[:3]}"
    return {"samples": len(samples), "achieved_rate": sent[0] / elapsed, "errors": len(errors),
            "p50_ms": _percentile(samples, 50) * 1000, "p99_ms": _percentile(samples, 99) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "kafka", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=1000, help="commands/s of the background load")
    args = parser.parse_args()
    for mode in ("embedded", "kafka") if args.mode == "both" else (args.mode,):
        print(json.dumps(measure(mode, args.seconds, args.rate)), flush=True)


if __name__ == "__main__":
    main()
