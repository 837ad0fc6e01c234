"""`ledger ingest --workers N`: officers' commands over N processes, same answers and facts.

The generated stream puts its reference data first (as an export does), so a sharded run
must give every line the answer the sequential run gives, and store the same facts for
every entity (event ids and recording times aside).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.write.sharded import lane_of, officer_of
from tests.conftest import create_database, drop_database, migrated, pg_url
from tests.integration.proc import cmdline, descendants, wait_for
from tests.integration.util import child_env, ledger_cmd, run_ledger, store_facts


def _answers(settings: Settings, path: Path, *extra: str) -> list[dict[str, object]]:
    done = run_ledger(settings, "ingest", str(path), "--json", *extra)
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _input(tmp_path: Path) -> Path:
    lines = list(generate_lines(120, seed=81))
    path = tmp_path / "commands.jsonl"
    with open(path, "wb") as fh:
        for i, line in enumerate(lines):
            fh.write(line.encode() + b"\n")
            if i == len(lines) // 2:
                # Lines that are not commands, between officers' commands: each answered on its own.
                fh.write(b"\xff\xfe not utf-8\n")
                fh.write(b"\n")
                fh.write(b'{"type": "enrol", "officer_id": ' + b"[" * 5000 + b"\n")
                fh.write(b'{"type": "enrol", "officer_id": "OFF-0000001", "officer_id": "OFF-0000002"}\n')
    return path


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sharded_ingest_gives_the_sequential_answers_and_facts(tmp_path: Path, backend: str) -> None:
    path = _input(tmp_path)
    names: list[str] = []
    try:
        if backend == "postgres":
            names = [create_database(), create_database()]
            one, many = (migrated(Settings(store=pg_url(n))) for n in names)
        else:
            one = migrated(Settings(store=f"sqlite:///{tmp_path / 'one.db'}"))
            many = migrated(Settings(store=f"sqlite:///{tmp_path / 'many.db'}"))
        sequential = _answers(one, path)
        sharded = _answers(many, path, "--workers", "3", "--batch-size", "50")
        assert sharded == sequential
        numbers = [int(str(a["line"])) for a in sharded]
        assert numbers == sorted(numbers)  # input order
        statuses = {a["status"] for a in sharded}
        assert statuses == {"accepted", "rejected"} and sum(a["status"] == "accepted" for a in sharded) > 2000
        assert store_facts(many) == store_facts(one)
    finally:
        for name in names:
            drop_database(name)


def test_routing_reads_only_what_it_needs(tmp_path: Path) -> None:
    assert officer_of('{"type": "enrol", "officer_id": "OFF-1"}') == "OFF-1"
    assert officer_of('{"type": "define_post", "post_id": "P"}') is None
    assert officer_of('{"officer_id": 7}') is None  # the worker's strict parser rejects it, here it is reference
    assert officer_of("[" * 100_000) is None
    assert officer_of('"\\ud800"') is None
    assert {lane_of(f"OFF-{i:07d}", 3) for i in range(100)} == {0, 1, 2}
    assert lane_of("OFF-0000001", 3) == lane_of("OFF-0000001", 3)


def _spawned_workers(pid: int) -> list[int]:
    return [p for p in descendants(pid) if "spawn_main" in " ".join(cmdline(p))]  # not the resource tracker


def test_the_spool_has_no_name_and_a_sigkilled_run_leaves_nothing(tmp_path: Path) -> None:
    """Lanes hold names and emails: nothing of them may be left on disk, however the run ends."""
    store = Settings(store=f"sqlite:///{tmp_path / 'ledger.db'}")
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(generate_lines(1500, seed=82)) + "\n")
    spool = tmp_path / "tmp"
    spool.mkdir()
    env = {**child_env(), "TMPDIR": str(spool)}
    proc = subprocess.Popen(ledger_cmd(store, "ingest", str(path), "--workers", "2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(_spawned_workers(proc.pid)) >= 2, 120, "the workers run")
        assert list(spool.iterdir()) == []  # the spool files have no name
        names = {json.loads(line).get("name") for line in path.read_text().splitlines()} - {None, ""}
        for fd in Path(f"/proc/{proc.pid}/fd").iterdir():  # what the run holds open: sealed
            target = os.readlink(fd)
            if "(deleted)" in target and target.startswith(str(spool)):
                data = fd.read_bytes()
                assert data and not any(str(n).encode() in data for n in list(names)[:200])
    finally:
        for pid in [proc.pid, *descendants(proc.pid)]:
            subprocess.run(["kill", "-KILL", str(pid)], check=False)
        proc.wait(timeout=30)
    wait_for(lambda: not _spawned_workers(proc.pid), 30, "the workers are gone")
    assert list(spool.iterdir()) == []


def test_a_failed_worker_still_gives_every_answer_it_has_and_names_the_lines_not_answered(tmp_path: Path) -> None:
    store = Settings(store=f"sqlite:///{tmp_path / 'ledger.db'}")
    path = tmp_path / "big.jsonl"
    lines = list(generate_lines(1500, seed=83))
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(ledger_cmd(store, "ingest", str(path), "--workers", "2", "--json"), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(_spawned_workers(proc.pid)) >= 2, 120, "the workers run")
    time.sleep(1.0)  # let both lanes apply some of their lines
    victim = _spawned_workers(proc.pid)[0]
    subprocess.run(["kill", "-KILL", str(victim)], check=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["line"] for a in answers] == list(range(1, len(lines) + 1))  # every line answered, in order
    unanswered = [a for a in answers if "not answered" in a.get("error", "")]
    assert unanswered and all(a["status"] == "rejected" for a in unanswered)
    assert all("resend" in a["error"] for a in unanswered)
    assert sum(a["status"] == "accepted" for a in answers) > len(lines) // 4  # the other lane's and the reference's
