"""The command line's promises to people and scripts: clear errors, trustworthy exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ledger.cli import cli
from tests.helpers import reference, register


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--store", f"sqlite:///{tmp_path / 'cli.db'}", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_a_missing_input_file_is_a_one_line_error(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "ingest", str(tmp_path / "nope.jsonl"))
    assert code == 1 and "FILE: cannot read" in err and "Traceback" not in err


def test_a_bad_store_url_names_the_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--store", "bogus://x", "stats"])
    assert result.exit_code == 1 and "LEDGER_STORE" in result.stderr


def test_exit_codes_of_ingest_follow_the_spec(tmp_path: Path) -> None:
    commands = [{**c, "command_id": f"c{i}"} for i, c in enumerate([*reference(), register()])]
    good = "\n".join(json.dumps(c) for c in commands) + "\n"
    code, out, _ = run(tmp_path, "ingest", "-", "--json", stdin=good)
    assert code == 0 and {json.loads(line)["status"] for line in out.splitlines()} == {"accepted"}
    code, out, _ = run(tmp_path, "ingest", "-", "--json", stdin=good + "{bad\n")
    answers = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and answers[-1]["status"] == "rejected" and answers[0]["status"] == "duplicate"


def test_queries_for_unknown_things_exit_1_and_bad_instants_name_the_option(tmp_path: Path) -> None:
    run(tmp_path, "ingest", "-", stdin="\n".join(json.dumps(c) for c in [*reference(), register()]) + "\n")
    assert run(tmp_path, "record", "NOBODY")[0] == 1
    code, _, err = run(tmp_path, "record", "O1")
    assert code == 1 and "ledger project" in err  # in the store, not yet projected
    code, _, err = run(tmp_path, "record", "O1", "--as-of", "yesterday")
    assert code == 1 and "--as-of" in err
    code, out, _ = run(tmp_path, "record", "O1", "--as-of", "2030-01-01T00:00:00Z", "--json")
    assert code == 0 and json.loads(out)["name"] == "Asha Verma"
    assert run(tmp_path, "project", "--until-idle")[0] == 0
    assert run(tmp_path, "ministry", "NOWHERE")[0] == 1
    assert json.loads(run(tmp_path, "competencies", "O1", "--json")[1])["post_id"] == "P-US"


def test_verify_and_status_are_health_checks(tmp_path: Path) -> None:
    run(tmp_path, "ingest", "-", stdin="\n".join(json.dumps(c) for c in [*reference(), register()]) + "\n")
    code, out, _ = run(tmp_path, "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    assert run(tmp_path, "status", "--stuck-after", "0")[0] == 1  # behind and nothing projecting
    run(tmp_path, "project", "--until-idle")
    assert run(tmp_path, "status")[0] == 0


def test_migrate_upgrades_an_old_store_that_every_other_command_refuses(tmp_path: Path) -> None:
    import gzip
    import shutil

    fixture = Path(__file__).parent / "fixtures" / "pre-migrations.db.gz"
    with gzip.open(fixture) as src, open(tmp_path / "cli.db", "wb") as dst:
        shutil.copyfileobj(src, dst)
    code, _, err = run(tmp_path, "stats")
    assert code == 1 and "ledger migrate" in err and "Traceback" not in err
    code, _, err = run(tmp_path, "migrate")
    assert code == 0 and "applied 0001" in err and "was 0" in err
    code, _, err = run(tmp_path, "migrate")
    assert code == 0 and "applied" not in err
    assert run(tmp_path, "verify")[0] == 0


def test_checkpoint_then_verify_against_it_and_against_another_key(tmp_path: Path) -> None:
    commands = [*reference(), register()]
    run(tmp_path, "ingest", "-", stdin="\n".join(json.dumps(c) for c in commands))
    key = ["--signing-key", str(tmp_path / "key.pem")]
    store = ["--store", f"sqlite:///{tmp_path / 'cli.db'}"]
    runner = CliRunner()
    made = runner.invoke(cli, [*store, *key, "checkpoint", "--out", str(tmp_path / "cp.json")])
    assert made.exit_code == 0, made.stderr
    assert set(json.loads((tmp_path / "cp.json").read_text())) == {"position", "root", "at", "key_id", "signature"}
    mine = runner.invoke(cli, [*store, *key, "checkpoint", "--public-key"])
    (tmp_path / "key.pub").write_text(mine.stdout)
    ok = runner.invoke(cli, [*store, "verify", "--checkpoint", str(tmp_path / "cp.json"),
                             "--public-key", str(tmp_path / "key.pub"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["checkpoint"]["ok"] is True
    configured = runner.invoke(cli, [*store, "--trusted-public-key", str(tmp_path / "key.pub"), "verify",
                                     "--checkpoint", str(tmp_path / "cp.json")])
    assert configured.exit_code == 0, configured.stderr
    pem = runner.invoke(cli, [*store, "--signing-key", str(tmp_path / "other.pem"), "checkpoint", "--public-key"])
    (tmp_path / "other.pub").write_text(pem.stdout)
    wrong = runner.invoke(cli, [*store, *key, "verify", "--checkpoint", str(tmp_path / "cp.json"),
                                "--public-key", str(tmp_path / "other.pub")])
    assert wrong.exit_code == 1 and "signature" in wrong.stderr
    (tmp_path / "bad.json").write_bytes(b"\xff{not json")
    bad = runner.invoke(cli, [*store, "verify", "--checkpoint", str(tmp_path / "bad.json"),
                              "--public-key", str(tmp_path / "key.pub")])
    assert bad.exit_code == 1 and "Traceback" not in bad.stderr and "checkpoint" in bad.stderr


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path: Path) -> None:
    import subprocess
    import sys

    commands = [*reference(), *[register(f"O{i}") for i in range(300)]]
    run(tmp_path, "ingest", "-", stdin="\n".join(json.dumps(c) for c in commands))
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    pipeline = subprocess.run(
        f"{sys.executable} -m ledger.cli --store {store} history O7 --json >/dev/null && "
        f"{sys.executable} -m ledger.cli --store {store} ingest --json - < /dev/null && "
        f"yes '{json.dumps(register('O1'))}' | head -5000 | "
        f"{sys.executable} -m ledger.cli --store {store} ingest --json - | head -1",
        shell=True, capture_output=True, text=True, timeout=120, executable="/bin/bash",
    )
    assert pipeline.stdout.count("\n") == 1
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr, pipeline.stderr
