"""Ingest under faults: SIGKILL mid-file, and concurrent writers for the same officers."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.generate import generate_lines
from tests.helpers import at, reference, register
from tests.integration.util import popen_ledger, run_ledger, store_facts


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_sigkilled_ingest_rerun_applies_every_command_exactly_once(
    settings: Settings, sqlite_settings: Settings, tmp_path: Path
) -> None:
    data = _write(tmp_path / "commands.jsonl", list(generate_lines(300, seed=11)))
    total = sum(1 for line in data.read_text().splitlines() if line.strip())

    # The expected result: the same file ingested once, cleanly, into another store.
    clean = Settings(store=f"sqlite:///{tmp_path / 'clean.db'}")
    assert run_ledger(clean, "ingest", str(data), "--json").returncode == 1  # it has invalid lines

    kills = 0
    for stop_after in (400, 1500, 3000):
        child = popen_ledger(settings, "ingest", str(data), "--json", "--batch-size", "50")
        assert child.stdout is not None
        for answered, _ in enumerate(child.stdout, start=1):
            if answered >= stop_after:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        kills += 1
    final = run_ledger(settings, "ingest", str(data), "--json")
    statuses = [json.loads(line)["status"] for line in final.stdout.splitlines()]
    assert len(statuses) == total and kills == 3
    assert statuses.count("duplicate") > 0, "nothing survived the kills"
    assert statuses.count("accepted") > 0, "the kills came after the whole file was applied"
    assert store_facts(settings) == store_facts(clean)


def _concurrent_files(tmp_path: Path, officers: int, steps: int) -> tuple[Path, Path]:
    files = []
    for name, course in (("a", "K-BUD"), ("b", "K-ETH")):
        lines = []
        for i in range(officers):
            oid = f"O{i}"
            lines.append(json.dumps({"type": "enrol", "officer_id": oid, "course_id": course,
                                     "occurred_at": at(1), "command_id": f"{name}-{oid}-e"}))
            for step in range(1, steps + 1):
                lines.append(json.dumps({"type": "record_progress", "officer_id": oid, "course_id": course,
                                         "percent": step, "occurred_at": at(1),
                                         "command_id": f"{name}-{oid}-{step}"}))
        files.append(_write(tmp_path / f"{name}.jsonl", lines))
    return files[0], files[1]


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_writing_the_same_officers_lose_and_duplicate_nothing(
    pg_settings: Settings, tmp_path: Path
) -> None:
    officers, steps = 10, 40
    setup = _write(tmp_path / "setup.jsonl",
                   [json.dumps(c) for c in [*reference(), *(register(f"O{i}") for i in range(officers))]])
    assert run_ledger(pg_settings, "ingest", str(setup)).returncode == 0
    file_a, file_b = _concurrent_files(tmp_path, officers, steps)
    # Small batches interleave the two writers on every officer.
    a = popen_ledger(pg_settings, "ingest", str(file_a), "--json", "--batch-size", "7")
    b = popen_ledger(pg_settings, "ingest", str(file_b), "--json", "--batch-size", "5")
    out_a, err_a = a.communicate(timeout=300)
    out_b, err_b = b.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    for out in (out_a, out_b):
        assert {json.loads(line)["status"] for line in out.splitlines()} == {"accepted"}

    facts = store_facts(pg_settings)
    for i in range(officers):
        events = facts[("officer_id", f"O{i}")]
        assert [e["version"] for e in events] == list(range(1, 2 + 2 * (steps + 1)))
        for course in ("K-BUD", "K-ETH"):
            progress = [e["percent"] for e in events
                        if e["type"] == "ProgressRecorded" and e["course_id"] == course]
            assert progress == list(range(1, steps + 1))


def test_ingest_from_stdin_with_blank_lines_counts_lines_from_one(sqlite_settings: Settings, tmp_path: Path) -> None:
    import subprocess

    from tests.integration.util import child_env, ledger_cmd

    text = "\n".join([json.dumps(reference()[0]), "", "   ", "{oops", json.dumps(reference()[1])]) + "\n"
    done = subprocess.run(ledger_cmd(sqlite_settings, "ingest", "-", "--json"), input=text,
                          capture_output=True, text=True, env=child_env(), timeout=60)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["line"], a["status"]) for a in answers] == [(1, "accepted"), (4, "rejected"), (5, "accepted")]
    assert "error" in answers[1] and "error" not in answers[0]
    assert done.returncode == 1
    again = subprocess.run(ledger_cmd(sqlite_settings, "ingest", "-", "--json"),
                           input=json.dumps(reference()[2]) + "\n", capture_output=True, text=True,
                           env=child_env(), timeout=60)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "accepted"
