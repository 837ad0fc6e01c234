"""End to end: `ledger serve` in its own process, many concurrent clients, same result as a file."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.store.db import Database
from tests.integration.test_projections import export_all
from tests.integration.util import child_env, ledger_cmd, run_ledger
from tests.ports import free_port


def test_concurrent_clients_through_the_api_equal_a_file_ingest(settings: Settings, tmp_path: Path) -> None:
    lines = list(generate_lines(250, seed=51))
    (tmp_path / "all.jsonl").write_text("\n".join(lines) + "\n")
    file_store = Settings(store=f"sqlite:///{tmp_path / 'file.db'}")
    assert run_ledger(file_store, "ingest", str(tmp_path / "all.jsonl")).returncode == 1  # has invalid lines
    assert run_ledger(file_store, "project", "--until-idle").returncode == 0

    token = create_token(Database(settings), "feed", "ingest")
    # The generated feed also holds corrections, which only a registrar (or admin) may send.
    registrar = {"Authorization": f"Bearer {create_token(Database(settings), 'grievance-cell', 'registrar')}"}
    port = free_port()
    server = subprocess.Popen(ledger_cmd(settings, "serve", "--port", str(port), "--no-project"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        commands = [json.loads(line) for line in lines]
        reference = [c for c in commands if "officer_id" not in c]
        per_officer: dict[str, list[dict[str, Any]]] = {}
        for c in commands:
            if "officer_id" in c:
                per_officer.setdefault(c["officer_id"], []).append(c)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for start in range(0, len(reference), 100):
                assert client.post("/commands", json=reference[start:start + 100]).status_code == 200

        officers = sorted(per_officer)

        def send(shard: int) -> list[str]:
            statuses = []
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for officer in officers[shard::32]:
                    for command in per_officer[officer]:  # one command per request, in order
                        correction = command["type"] in ("retract", "correct_officer_details")
                        response = client.post("/commands", json=command, headers=registrar if correction else None)
                        assert response.status_code == 200, response.text
                        statuses.append(response.json()[0]["status"])
            return statuses

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = [s for shard in pool.map(send, range(32)) for s in shard]
        assert statuses.count("accepted") > 0.9 * len(statuses)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
    assert server.returncode in (0, -15), server.returncode
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    assert export_all(settings) == export_all(file_store)
