"""Benchmark of the migrations over a large store: each must take time linear in the store.

A PostgreSQL store of the layout before versioned migrations (the test fixture's dump,
tests/fixtures/pre-migrations.postgres.sql.gz) is grown to N events with synthetic
entities of ten versions each (random uuids, as the ledger's are; ~200-byte states) and
their entity-chain links under the old rule, written with COPY. Then ``schema.migrate``
runs every migration, each timed. The events' topic is one no migration folds, so
migration 0003's fold reads past them (its scan is what grows with the store); 0002
re-links every entity chain and chains the whole log. Linear means the cost per event
is the same at both sizes; the figure to read is the ratio of the two.

    python bench/migration_bench.py [--quick]

Writes ``bench/migration-results.json`` (or ``migration-results-quick.json``) and prints
a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.config import Settings  # noqa: E402
from ledger.store import schema  # noqa: E402
from ledger.store.db import Database  # noqa: E402

BASE = os.environ.get("LEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DUMP = ROOT / "tests" / "fixtures" / "pre-migrations.postgres.sql.gz"
VERSIONS = 10


def _grow(url: str, events: int) -> None:
    """Add ``events`` synthetic events (and their old-rule chain links) after the dump's."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(gzip.decompress(DUMP.read_bytes()).decode().encode())
        conn.execute("SET search_path TO public")  # the dump empties it
        start = int(conn.execute("SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events").fetchone()[0])
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("COPY ledger_events (originator_id, originator_version, topic, state, notification_id) "
                          "FROM STDIN") as events_copy:
                position = start
                links: list[tuple[str, int, bytes]] = []
                for _ in range(events // VERSIONS):
                    entity = uuid.uuid4()
                    head = b"\x00" * 32
                    for version in range(1, VERSIONS + 1):
                        position += 1
                        state = json.dumps({"officer_id": f"SYN-{entity.hex[:10]}", "version": version,
                                            "note": "x" * 150}).encode()
                        head = hashlib.sha256(head + state).digest()  # the old entity-chain rule
                        events_copy.write_row((entity, version, "bench.synthetic:Noted", state, position))
                        links.append((entity.hex, version, head))
            with cur.copy("COPY ledger_chain (originator_id, version, hash) FROM STDIN") as chain_copy:
                for link in links:
                    chain_copy.write_row(link)
        conn.execute(f"SELECT setval('ledger_events_notification_id_seq', {position})")
        conn.execute("ANALYZE")


def measure(events: int) -> dict[str, Any]:
    name = f"ledger_bench_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{BASE}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{BASE}/{name}"
    try:
        started = time.perf_counter()
        _grow(url, events)
        grown = time.perf_counter() - started
        db = Database(Settings(store=url))
        db.schema_checked = True
        times: dict[str, float] = {}
        mark = time.perf_counter()

        def done(migration: schema.Migration) -> None:
            nonlocal mark
            now = time.perf_counter()
            times[f"{migration.version:04d}"] = round(now - mark, 3)
            mark = now

        started = time.perf_counter()
        schema.migrate(db, done)
        total = time.perf_counter() - started
        db.close()
        return {"events": events, "grow_s": round(grown, 1), "migrate_s": round(total, 2),
                "per_migration_s": times, "us_per_event": round(total / events * 1e6, 2)}
    finally:
        with psycopg.connect(f"{BASE}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 and 200,000 events instead of 100,000 and 1,000,000")
    args = parser.parse_args()
    sizes = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    results = [measure(n) for n in sizes]
    small, large = results
    ratio = large["us_per_event"] / small["us_per_event"]
    report = {"date": date.today().isoformat(), "results": results, "per_event_ratio": round(ratio, 2),
              "linear": ratio < 1.5}
    name = "migration-results-quick.json" if args.quick else "migration-results.json"
    (ROOT / "bench" / name).write_text(json.dumps(report, indent=2) + "\n")
    print("| events | all migrations | 0002 | 0003 | µs per event |")
    print("|---|---|---|---|---|")
    for r in results:
        per = r["per_migration_s"]
        print(f"| {r['events']:,} | {r['migrate_s']} s | {per.get('0002')} s | {per.get('0003')} s | {r['us_per_event']} |")
    print(f"cost per event, large / small: {ratio:.2f} ({'linear' if ratio < 1.5 else 'NOT linear'})")


if __name__ == "__main__":
    main()
