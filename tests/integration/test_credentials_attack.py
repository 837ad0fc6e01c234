"""Issue 21, keys only where signing happens, written as the attack that found it: ten concurrent
credential requests for an officer of 200 completions, from one officer token, against a real
`ledger serve` that holds no issuer key (its key file does not exist; the issuing worker, `ledger
issue`, signed everything once before). Meanwhile `/healthz` and a command must each answer
within 100 ms, and no request may fail (signing per request took 2-3 s of CPU each, pushed
`/healthz` to 1.4 s and answered 500 from pyld's shared context cache)."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import lines, officer_cmd, reference, register
from tests.integration.util import child_env, ledger_cmd, run_ledger
from tests.ports import free_port

COMPLETIONS = 200
REQUESTS = 10
# Ten concurrent requests for O1's credentials; prints [status, sha256 of the body] of each.
FLOOD = """
import hashlib, json, sys, threading, httpx
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
def fetch():
    with httpx.Client(base_url=base, timeout=120) as client:
        r = client.get("/officers/O1/credentials", headers={"Authorization": "Bearer " + token})
    out.append([r.status_code, hashlib.sha256(r.content).hexdigest()])
threads = [threading.Thread(target=fetch) for _ in range(n)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(out))
"""


def career() -> list[dict[str, Any]]:
    """O1 completes 200 courses, one a day; O2 is registered (the command sent during the attack)."""
    courses = [{"type": "publish_course", "course_id": f"K-{n:03d}", "title": f"Course {n}", "provider": "ISTM",
                "duration_hours": 2, "competencies": [{"competency_id": "C1", "level": 1 + n % 5}],
                "assessment": None} for n in range(COMPLETIONS)]
    steps = []
    for n in range(COMPLETIONS):
        course = {"course_id": f"K-{n:03d}"}
        steps += [officer_cmd("enrol", 1 + n, "O1", **course),
                  officer_cmd("record_progress", 1 + n, "O1", percent=100, **course),
                  officer_cmd("complete_course", 1 + n, "O1", **course)]
    return [*reference(), *courses, register("O1"), register("O2", name="Ravi Nair", email="ravi@example.gov.in"),
            *steps]


def _timed(call: Any) -> tuple[float, int]:
    started = time.perf_counter()
    status = call().status_code
    return time.perf_counter() - started, status


def _flood(client: httpx.Client, base: str, officer: str, ingest: str, day: int) -> tuple[list[Any], list[Any], list[Any]]:
    """One attack: the ten requests (from a process of their own, niced: the attacker's CPU is
    another machine's in the attack), and meanwhile health checks and commands, timed, until
    all ten are answered. Returns the ten answers, the health checks and the commands."""
    flood = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", FLOOD, base, officer, str(REQUESTS)],
                             stdout=subprocess.PIPE, text=True)
    health: list[tuple[float, int]] = []
    commands: list[tuple[float, int]] = []
    while flood.poll() is None or len(commands) < 3:
        health.append(_timed(lambda: client.get("/healthz")))
        day += 1
        command = officer_cmd("enrol", day, "O2", course_id=f"K-{day % COMPLETIONS:03d}")
        commands.append(_timed(lambda c=command: client.post(
            "/commands", json=[c], headers={"Authorization": f"Bearer {ingest}"})))
    return json.loads(flood.communicate(timeout=300)[0]), health, commands


def test_ten_credential_requests_leave_health_and_commands_fast_and_never_fail(sqlite_settings: Settings,
                                                                               tmp_path: Path) -> None:
    signer = replace(sqlite_settings, issuer_key=str(tmp_path / "issuer" / "issuer.pem"))
    outcomes = list(Ledger(signer).ingest(lines(career())))
    assert {o.status for o in outcomes} == {"accepted"}
    env = {**child_env(signer), "LEDGER_ISSUER_KEY": signer.issuer_key or ""}
    issued = subprocess.run(ledger_cmd(signer, "issue", "--until-idle"), capture_output=True, text=True, env=env,
                            timeout=900)
    assert issued.returncode == 0, issued.stderr
    db = Database(signer)
    officer = create_token(db, "asha", "officer", officer_id="O1")
    ingest = create_token(db, "feed", "ingest")
    port = free_port()
    no_key = tmp_path / "api" / "issuer.pem"  # the server's: no such file, no such folder
    server_env = {**child_env(signer), "LEDGER_ISSUER_KEY": str(no_key)}
    server = subprocess.Popen(ledger_cmd(signer, "serve", "--port", str(port), "--no-project", "--no-issue"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ledger serve did not start"
                time.sleep(0.1)
        mine = {"Authorization": f"Bearer {officer}"}
        with httpx.Client(base_url=base, timeout=120) as client:
            first = client.get("/officers/O1/credentials", headers=mine)
            assert first.status_code == 200 and len(first.json()) == COMPLETIONS + 1
            digest = hashlib.sha256(first.content).hexdigest()
            # This machine's CPU is shared with other work: the scheduler alone can hold a request
            # longer than 100 ms. Every round must answer everything, the stored bytes each time;
            # the times must hold in one round of three (signing per request failed them all).
            rounds = []
            for attempt in range(3):
                answers, health, commands = _flood(client, base, officer, ingest, 300 + 10_000 * attempt)
                assert answers == [[200, digest]] * REQUESTS  # no 500, the stored bytes every time
                assert {s for _, s in health} == {200} and {s for _, s in commands} == {200}
                rounds.append((max(t for t, _ in health), max(t for t, _ in commands), len(health)))
                print(f"round {attempt + 1}: {len(health)} health checks, slowest {rounds[-1][0] * 1000:.0f} ms; "
                      f"{len(commands)} commands, slowest {rounds[-1][1] * 1000:.0f} ms; median of both "
                      f"{statistics.median(t for t, _ in health + commands) * 1000:.0f} ms")
                if rounds[-1][0] < 0.1 and rounds[-1][1] < 0.1:
                    break
            assert any(h < 0.1 and c < 0.1 for h, c, _ in rounds), rounds
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert not no_key.exists() and not no_key.parent.exists()  # the server never made a key
    assert "Traceback" not in stderr, stderr
    # Nothing was signed by the server: the stored credentials are the worker's, unchanged.
    assert json.loads(first.content)[0]["proof"]["verificationMethod"].startswith("did:key:")
    assert run_ledger(signer, "status", "--json").returncode in (0, 1)


def test_embedded_serve_runs_the_signer_in_a_child_and_holds_no_key_itself(sqlite_settings: Settings,
                                                                           tmp_path: Path) -> None:
    """`ledger serve` (embedded, projecting in-process) starts `ledger issue` as a child: the child
    opens the issuer key and signs; the server itself never has the key file open, and stopping
    the server stops the child."""
    from tests.integration.proc import alive, cmdline, descendants, wait_for
    from tests.test_credentials import career as small_career

    key = tmp_path / "keys" / "issuer.pem"
    settings = replace(sqlite_settings, issuer_key=str(key))
    db = Database(settings)
    ingest, auditor = create_token(db, "feed", "ingest"), create_token(db, "audit", "auditor")
    port = free_port()
    server = subprocess.Popen(ledger_cmd(settings, "serve", "--port", str(port)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env={**child_env(settings), "LEDGER_ISSUER_KEY": str(key)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"), 30, "ledger serve answers")
        with httpx.Client(base_url=base, timeout=60) as client:
            sent = client.post("/commands", json=small_career(), headers={"Authorization": f"Bearer {ingest}"})
            assert sent.status_code == 200 and {r["status"] for r in sent.json()} == {"accepted"}

            def issued() -> bool:
                got = client.get("/officers/O1/credentials", headers={"Authorization": f"Bearer {auditor}"})
                return got.headers.get("Ledger-Credentials-Lag") == "0" and len(got.json()) == 3

            wait_for(issued, 120, "the child issued O1's credentials")
            assert client.get("/issuer").json()["publicKeyMultibase"].startswith("z6Mk")
        children = [pid for pid in descendants(server.pid) if "issue" in cmdline(pid)]
        assert len(children) == 1
        assert not any(settings.store in arg for arg in cmdline(children[0]))  # the store through its environment
        open_files = {os.path.realpath(f"/proc/{server.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{server.pid}/fd")}
        assert str(key) not in open_files
    finally:
        server.terminate()
        server.communicate(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in children), 30, "the signer stopped with the server")
    assert key.exists()  # created by the child, where it signs


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False
