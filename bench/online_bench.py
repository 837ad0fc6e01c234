"""Online ingest over HTTP, measured with wrk (a compiled load generator), in one run.

Beside each other, on this machine, 32 connections, one server process (one worker):

- a bare ASGI app on the same uvicorn, uvloop and httptools (the HTTP stack's ceiling);
- the ledger's ``GET /healthz``;
- ``POST /commands`` with one registration per request and with 50 per request, on
  SQLite and on PostgreSQL (``ledger serve --no-project``, a fresh store each).

wrk's own latency distribution gives p50 and p99. Every command is a registration
with its own ``command_id`` and officer (``bench/wrk/commands.lua``); after each run
the store is asked how many registrations it holds, so a figure counts only commands
the store accepted. With ``--profile`` (py-spy installed), the 1-per-request runs are
also sampled, and the report says how much of the server's time the write path takes
(``Ledger.apply_batch``) against the HTTP side.

Writes ``bench/online-results.json`` and the ``online`` section of BENCHMARKS.md
(``--quick``: shorter runs, ``bench/online-results-quick.json``, nothing in BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WRK = ROOT / "bench" / "wrk"
CONNECTIONS = 32
PER_REQUEST = (1, 50)
ORG = ('{"type":"define_organisation","command_id":"bench-org","org_id":"BENCH","name":"Bench",'
       '"kind":"ministry","occurred_at":"2023-01-01T09:00:00+05:30"}')
TARGETS = {"sqlite": 3000, "postgres": 2500}


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The bare ASGI app: answers every request with a small JSON body, nothing else."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


def _free_port() -> int:
    from ledger.kafka.broker import free_port

    return free_port()


def _wait_up(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not answer /healthz")


@contextmanager
def server(command: list[str]) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A server process on a free port (``{port}`` in ``command`` is replaced), stopped after."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([part.replace("{port}", str(port)) for part in command], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_up(port, process)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(port: int, path: str, seconds: float, script: str, args: list[str] | None = None) -> dict[str, Any]:
    """One wrk run (one thread, ``CONNECTIONS`` connections): its summary."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(WRK / script), f"http://127.0.0.1:{port}{path}"]
    if args:
        command += ["--", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    found: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    seconds_run = found["duration_us"] / 1e6
    errors = sum(v for k, v in found.items() if k.startswith("errors_"))
    return {"requests": found["requests"], "seconds": seconds_run, "requests_per_s": found["requests"] / seconds_run,
            "p50_ms": found["p50_us"] / 1000, "p99_ms": found["p99_us"] / 1000, "max_ms": found["max_us"] / 1000,
            "errors": errors}


def _registrations(settings: Any) -> int:
    from ledger.store.db import Database

    with Database(settings).reading() as c:
        c.execute("SELECT COUNT(*) FROM officer_access")
        return int(c.fetchone()[0])


def _prepare(store: str) -> str:
    """Migrate the store, define the bench's organisation, and return an ingest token."""
    from ledger.api.auth import create_token
    from ledger.config import Settings
    from ledger.store.db import Database
    from ledger.write.application import Ledger

    subprocess.run([sys.executable, "-m", "ledger.cli", "--store", store, "migrate"], check=True, cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL)
    settings = Settings(store=store)
    assert [o.status for o in Ledger(settings).apply_batch([(1, ORG)])] == ["accepted"]
    return create_token(Database(settings), f"bench-{uuid.uuid4().hex[:8]}", "ingest")


def _profile(pid: int, seconds: float) -> dict[str, Any] | None:
    """py-spy samples of the server for ``seconds``: the share of its time in the write path."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    out = Path(tempfile.mkdtemp(prefix="ledger-spy-")) / "stacks.txt"
    subprocess.run([spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", "200", "-f", "raw",
                    "-o", str(out), "--threads", "--nonblocking"], capture_output=True, check=False)
    if not out.exists():
        return None
    return summarize(out.read_text())


# Inclusive frames worth naming in the report: the write path's parts and the HTTP side's.
PARTS = {"Ledger.apply_batch": "write path", "handle_all": "rules (handle_all)",
         "commit": "storing (the unit's commit: rows, chains, receipts)", "preload": "loading aggregates (preload)", "preload_officers": "loading officers (fast path)",
         "SQLiteConnection.commit": "SQLite commit", "Connection.wait": "waiting on PostgreSQL",
         "parse_all": "command parsing", "Observe.__call__": "HTTP handlers (Observe and inside)",
         "RequestResponseCycle.send": "uvicorn writes"}
# A part named without its class matches any class's method of that name under the write path
# (UnitOfWork.handle_all and the fast path's BulkUnit.handle_all alike).
UNITS = ("UnitOfWork", "BulkUnit", "Ledger")


def summarize(stacks: str) -> dict[str, Any]:
    """Shares of py-spy's collapsed stacks: the named parts (inclusive) and the top frames by own time."""
    total = loop = 0
    parts = dict.fromkeys(PARTS, 0)
    own: dict[str, int] = {}
    for line in stacks.splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        names = {part.split(" (")[0] for part in frames}
        methods = {name.split(".")[-1] for name in names if name.split(".")[0] in UNITS}
        for name in parts:
            if name in names or ("." not in name and name in methods):
                parts[name] += n
        if "Runner.run" in names and "Ledger.apply_batch" not in names:
            loop += n
        leaf = frames[-1].split(":")[0].replace(ROOT.as_posix() + "/", "")
        own[leaf] = own.get(leaf, 0) + n
    share = (lambda n: n / total) if total else (lambda n: 0.0)
    return {"samples": total, "write_share": share(parts["Ledger.apply_batch"]), "loop_share": share(loop),
            "parts": {PARTS[name]: share(n) for name, n in parts.items()},
            "top": [{"frame": f.split(" (")[0] + " (" + f.split(" (")[-1].split("/")[-1].rstrip(")") + ")",
                     "share": share(n)} for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:10]]}


def bench_store(backend: str, store: str, seconds: float, profile: bool) -> dict[str, Any]:
    """The ledger's /healthz and POST /commands (1 and 50 per request) on one fresh store."""
    from ledger.config import Settings

    token = _prepare(store)
    settings = Settings(store=store)
    found: dict[str, Any] = {}
    command = [sys.executable, "-m", "ledger.cli", "--store", store, "serve", "--port", "{port}", "--no-project",
               "--no-migrate"]
    with server(command) as (port, process):
        wrk(port, "/healthz", 2, "get.lua")  # warm up
        found["healthz"] = wrk(port, "/healthz", seconds, "get.lua")
        for per in PER_REQUEST:
            run = uuid.uuid4().hex[:6]
            wrk(port, "/commands", 2, "commands.lua", [f"{run}w", str(per), token])  # warm up
            before = _registrations(settings)
            result = wrk(port, "/commands", seconds, "commands.lua", [run, str(per), token])
            stored = _registrations(settings) - before
            result["commands"] = result["requests"] * per
            result["commands_per_s"] = result["commands"] / result["seconds"]
            # Requests still in flight when wrk stops are stored but not counted: never fewer.
            result["stored"] = stored
            result["all_stored"] = stored >= result["commands"] and result["errors"] == 0
            found[str(per)] = result
            print(backend, per, "per request:", json.dumps(result), flush=True)
        if profile:  # a run of its own, so the sampling costs the measured figures nothing
            import threading

            spied: list[dict[str, Any] | None] = []

            def spy() -> None:
                time.sleep(1)
                spied.append(_profile(process.pid, seconds - 2))

            watcher = threading.Thread(target=spy)
            watcher.start()
            wrk(port, "/commands", seconds, "commands.lua", [uuid.uuid4().hex[:6], "1", token])
            watcher.join()
            found["profile"] = spied[0] if spied else None
    return found


def measure(seconds: float, profile: bool) -> dict[str, Any]:
    from bench.run import drop_pg, machine, pg_database

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk; `make bench` does it)")
    results: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                               "machine": machine(), "connections": CONNECTIONS, "seconds": seconds,
                               "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
                               "load_before": os.getloadavg()[0]}
    bare_command = [sys.executable, "-m", "uvicorn", "bench.online_bench:bare", "--port", "{port}", "--loop", "uvloop",
                    "--http", "httptools", "--log-level", "warning", "--no-access-log"]
    with server(bare_command) as (port, _):
        wrk(port, "/healthz", 2, "get.lua")
        results["bare"] = wrk(port, "/healthz", seconds, "get.lua")
    print("bare ASGI", json.dumps(results["bare"]), flush=True)
    folder = Path(tempfile.mkdtemp(prefix="ledger-online-"))
    results["sqlite"] = bench_store("sqlite", f"sqlite:///{folder / 'online.db'}", seconds, profile)
    name, url = pg_database()
    try:
        results["postgres"] = bench_store("postgres", url, seconds, profile)
    finally:
        drop_pg(name)
    shutil.rmtree(folder, ignore_errors=True)
    results["load_after"] = os.getloadavg()[0]
    return results


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(r: dict[str, Any]) -> list[str]:
    """The ``online`` section of BENCHMARKS.md."""
    bare_rps = r["bare"]["requests_per_s"]
    lines = ["### online", "",
             f"Measured {r['date']} on {r['machine']} with `python bench/online_bench.py` ({r['wrk']}, "
             f"{r['connections']} connections, {r['seconds']:.0f} s per figure, one server process, "
             "`ledger serve --no-project` on a fresh store; load average "
             f"{r['load_before']:.1f} before and {r['load_after']:.1f} after, on {os.cpu_count()} cores). Each "
             "command is a registration of its own; the store's count after each run confirms every one counted "
             "was stored. The Python client this replaces (`bench/run.py`'s former online rows) took CPU from the "
             "server it measured. Absolute rates follow the CPU the machine has to spare, so each figure is also "
             "given as a share of the bare ASGI app measured in the same run.", "",
             "| what | measured | target | |", "|---|---|---|---|",
             f"| bare ASGI app, same uvicorn, uvloop, httptools | {bare_rps:,.0f} requests/s, p50 "
             f"{r['bare']['p50_ms']:.1f} ms, p99 {r['bare']['p99_ms']:.1f} ms | — | |"]
    for backend, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        b = r[backend]
        ratio = b["healthz"]["requests_per_s"] / bare_rps
        lines.append(f"| `GET /healthz`, {label} store | {b['healthz']['requests_per_s']:,.0f} requests/s "
                     f"({ratio:.2f} of bare ASGI), p99 {b['healthz']['p99_ms']:.1f} ms | ≥ 0.25 of bare ASGI | "
                     f"{_met(ratio >= 0.25)} |")
        one, fifty = b["1"], b["50"]
        lines.append(f"| `POST /commands`, 1 per request, {label} | {one['commands_per_s']:,.0f} commands/s "
                     f"({one['commands_per_s'] / bare_rps:.2f} of bare ASGI), p50 {one['p50_ms']:.1f} ms, p99 {one['p99_ms']:.1f} ms | ≥ {TARGETS[backend]:,}/s, p99 < 50 ms | "
                     f"{_met(one['commands_per_s'] >= TARGETS[backend] and one['p99_ms'] < 50 and one['all_stored'])} |")
        lines.append(f"| `POST /commands`, 50 per request, {label} | {fifty['commands_per_s']:,.0f} commands/s "
                     f"({fifty['requests_per_s']:,.0f} requests/s, {fifty['requests_per_s'] / bare_rps:.3f} of bare "
                     f"ASGI), p50 {fifty['p50_ms']:.0f} ms, p99 "
                     f"{fifty['p99_ms']:.0f} ms | ≥ 20,000/s | "
                     f"{_met(fifty['commands_per_s'] >= 20_000 and fifty['all_stored'])} |")
    profiles = [(label, r[b].get("profile")) for b, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL"))]
    if any(p for _, p in profiles):
        lines += ["", "Where the server's time goes at one command per request (py-spy samples of the server "
                  "process during a run of its own, all threads; the write path is everything under `Ledger.apply_batch` "
                  "on the group-commit thread, the HTTP side is the event loop):", ""]
        for label, p in profiles:
            if p:
                parts = "; ".join(f"{name} {value:.0%}" for name, value in p["parts"].items())
                top = "; ".join(f"`{t['frame']}` {t['share']:.0%}" for t in p["top"][:8])
                lines.append(f"- {label} ({p['samples']} samples): write path {p['write_share']:.0%}, event loop "
                             f"{p['loop_share']:.0%}. Inclusive: {parts}. Top frames by own time: {top}.")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs; nothing written to BENCHMARKS.md")
    parser.add_argument("--seconds", type=float, help="seconds per figure (default 15, quick 4)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy (if installed)")
    args = parser.parse_args()
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    results = measure(seconds, args.profile)
    name = "online-results-quick.json" if args.quick else "online-results.json"
    (ROOT / "bench" / name).write_text(json.dumps(results, indent=2) + "\n")
    section = report(results)
    print("\n".join(section))
    if not args.quick:
        from bench.run import replace_section

        replace_section(ROOT / "BENCHMARKS.md", "online", section)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
