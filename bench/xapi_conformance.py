"""ADL's LRS conformance test suite against the ledger's xAPI LRS (DOMAIN.md "xAPI statements").

Extracts the archived suite (``../shared/xapi/``, adlnet/lrs-conformance-test-suite at
2ec25f2; not on npm), installs its packages, starts ``ledger serve`` on a fresh SQLite store
with an ``lrs`` token, runs the suite for xAPI 2.0.0 and 1.0.3 and prints the counts, read
from the suite's JSON log (its exit code is the failure count mod 256, never used).

By default only the statement and ``about`` tests run (the suite's titles without the
document resources, ``agents`` and ``activities``); ``--full`` runs everything.
``--min-percent`` fails (exit 1) when a version passes fewer.

    python bench/xapi_conformance.py [--full] [--port 28081] [--min-percent 95]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "xapi" / "adl-lrs-conformance-2ec25f2.tar.gz"
STATEMENTS_ONLY = ("^(?!.*(Concurrency|State Resource|Agents Resource|Activities Resource|Agent Profile Resource"
                   "|Activity Profile Resource|Document Resource)).*$")
VERSIONS = ("2.0.0", "1.0.3")


def suite_dir(archive: Path, work: Path) -> Path:
    """The extracted suite with its packages installed (done once per work folder)."""
    suite = work / "lrs-conformance-test-suite"
    if not (suite / "package.json").exists():
        work.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
    if not (suite / "node_modules").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=suite, check=True,
                       stdout=subprocess.DEVNULL)
    return suite


def leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The tests (not the groups) of a suite log's tree."""
    children = node.get("tests") or []
    if not children:
        return [node]
    return [leaf for child in children for leaf in leaves(child)]


def run_version(suite: Path, url: str, name: str, token: str, version: str, grep: str | None) -> dict[str, Any]:
    logs = suite / "logs"
    before = set(logs.iterdir()) if logs.exists() else set()
    command = ["node", "bin/console_runner.js", "-e", url, "-a", "-u", name, "-p", token, "-x", version]
    if grep:
        command += ["-g", grep]
    subprocess.run(command, cwd=suite, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600,
                   check=False)
    written = sorted(set(logs.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    if not written:
        raise SystemExit(f"{version}: the suite wrote no log")
    log = json.loads(written[-1].read_text())
    tests = leaves(log["log"])
    passed = sum(1 for t in tests if t.get("status") == "passed")
    failed = [t.get("title", "") for t in tests if t.get("status") != "passed"]
    return {"version": version, "summary": log.get("summary"), "leaves": len(tests), "passed": passed,
            "failed": len(failed), "failures": failed, "log": str(written[-1])}


def start_ledger(store: Path, port: int) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {**os.environ, "LEDGER_STORE": f"sqlite:///{store}"}
    ledger = [sys.executable, "-m", "ledger.cli"]
    subprocess.run([*ledger, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    name = "conformance"
    made = subprocess.run([*ledger, "token", "create", "--name", name, "--role", "lrs"], env=env, check=True,
                          capture_output=True, text=True)
    token = made.stdout.strip().splitlines()[-1].strip()
    server = subprocess.Popen([*ledger, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/xapi/about", timeout=1):
                return server, name, token
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("ledger serve did not answer /xapi/about")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "adl-lrs-conformance")
    parser.add_argument("--port", type=int, default=28081)
    parser.add_argument("--full", action="store_true", help="every test, document resources included")
    parser.add_argument("--min-percent", type=float, default=0.0)
    parser.add_argument("--versions", nargs="+", default=list(VERSIONS))
    args = parser.parse_args()
    suite = suite_dir(args.archive, args.work)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        server, name, token = start_ledger(Path(tmp) / "lrs.db", args.port)
        try:
            for version in args.versions:
                results.append(run_version(suite, f"http://127.0.0.1:{args.port}/xapi", name, token, version,
                                           None if args.full else STATEMENTS_ONLY))
        finally:
            server.terminate()
            server.wait(timeout=30)
    ok = True
    for r in results:
        percent = 100.0 * r["passed"] / max(r["leaves"], 1)
        ok = ok and percent >= args.min_percent
        print(f"xAPI {r['version']}: {r['passed']}/{r['leaves']} passed ({percent:.1f} %), {r['failed']} failed"
              f"  [suite summary {r['summary']}; log {r['log']}]")
        for title in r["failures"]:
            print(f"    failed: {title[:160]}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
