"""Signed forks, written as attacks by an insider with write access to the database.

From DOMAIN.md's "Tamper evidence": a signer never signs a fork (it keeps its latest
checkpoint beside its key and signs a new root only if the chain recomputed from that
checkpoint's root over the events since reaches it); `ledger verify --checkpoints`
checks many checkpoints against the store and against each other; verifying never
creates a key. The relay's side is in tests/integration/test_relay_forks.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.config import Settings
from ledger.integrity import chain, checkpoint
from ledger.integrity.signer import ForkError, Signer, state_path
from ledger.read.audit import AuditReader
from ledger.write.application import Ledger
from tests.helpers import register
from tests.test_tamper import _forge_everything, _sql, _world


def _raise_progress(position: int, s: Any) -> bytes:
    return bytes(s.state).replace(b'"percent":40', b'"percent":100')


def _forge(settings: Settings) -> int:
    """Rewrite an early event (a progress report) and recompute both chains; its position."""
    ledger = Ledger(settings)
    [target] = [p for p, s in checkpoint.iter_events(ledger.recorder) if b'"percent":40' in bytes(s.state)]
    _forge_everything(settings, ledger, _raise_progress)
    assert AuditReader(Ledger(settings)).verify()[1] == []  # self-consistent: verify alone passes
    return target


def _append(settings: Settings, day: int) -> None:
    """One more event: a new officer registers."""
    answer = Ledger(settings).execute(register(f"N{day}", day))
    assert answer.status == "accepted", answer


def _truncate(settings: Settings, keep: int) -> None:
    """Delete every event after position ``keep`` with its chain rows (the store stays self-consistent)."""
    ledger = Ledger(settings)
    gone = [(chain.originator_key(s.originator_id), s.originator_version)
            for p, s in checkpoint.iter_events(ledger.recorder) if p > keep]

    def cut(execute: Any, table: str, position_column: str) -> None:
        execute(f"DELETE FROM {table} WHERE {position_column} > ?", keep)
        execute(f"DELETE FROM {chain.LOG_TABLE} WHERE position > ?", keep)
        for entity, version in gone:
            execute(f"DELETE FROM {chain.TABLE} WHERE originator_id = ? AND version = ?", entity, version)

    _sql(settings, cut)
    assert AuditReader(Ledger(settings)).verify()[1] == []


class Cli:
    """The real command line against ``settings``' store, with a signing key of its own."""

    def __init__(self, settings: Settings, key: Path) -> None:
        self.settings, self.key = settings, key

    def run(self, *args: str, stdin: str | None = None) -> Any:
        return CliRunner().invoke(cli, ["--store", self.settings.store, "--signing-key", str(self.key), *args],
                                  input=stdin)

    def checkpoint(self) -> dict[str, Any]:
        made = self.run("checkpoint")
        assert made.exit_code == 0, made.stderr
        body: dict[str, Any] = json.loads(made.stdout)
        return body

    def public_key(self, folder: Path) -> Path:
        path = folder / "trusted.pub"
        path.write_text(self.run("checkpoint", "--public-key").stdout)
        return path

    def verify_many(self, bodies: list[dict[str, Any]], public: Path) -> tuple[int, dict[str, Any]]:
        lines = "".join(json.dumps(b) + "\n" for b in bodies)
        done = self.run("verify", "--checkpoints", "-", "--public-key", str(public), "--json", stdin=lines)
        assert done.exit_code in (0, 1), done.stderr
        return done.exit_code, json.loads(done.stdout)


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[Cli]:
    _world(settings)
    yield Cli(settings, tmp_path / "keys" / "signing-key.pem")


def _kinds(report: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(p["kind"], p["position"]) for p in report["checkpoints"]["problems"]]


def test_successive_checkpoints_extend_each_other_and_all_verify(world: Cli, tmp_path: Path) -> None:
    made = [world.checkpoint()]
    for day in (10, 11):
        _append(world.settings, day)
        made.append(world.checkpoint())
    assert [c["position"] for c in made] == sorted({c["position"] for c in made})  # three positions, rising
    remembered = json.loads(state_path(world.key).read_text())
    assert remembered == made[-1]  # the signer keeps its latest checkpoint beside its key
    assert state_path(world.key).stat().st_mode & 0o777 == 0o600
    public = world.public_key(tmp_path)
    code, report = world.verify_many([*made, made[0]], public)  # in any order, repeated
    assert code == 0 and report["ok"] and report["checkpoints"] == {"ok": True, "forks": 0, "problems": []}
    text = world.run("verify", "--checkpoints", "-", "--public-key", str(public),
                     stdin="".join(json.dumps(c) + "\n" for c in made))
    assert text.exit_code == 0 and "each later one extends the earlier ones" in text.stderr


def test_ledger_checkpoint_refuses_to_sign_a_rewritten_history_and_names_the_position(world: Cli) -> None:
    signed = world.checkpoint()
    forged_at = _forge(world.settings)
    assert forged_at < signed["position"]
    refused = world.run("checkpoint")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert f"fork at position {signed['position']}" in refused.stderr and "rewritten" in refused.stderr
    assert json.loads(state_path(world.key).read_text()) == signed  # nothing new remembered
    _append(world.settings, 10)  # new events after the forgery change nothing
    again = world.run("checkpoint", "--out", str(world.key.parent / "cp.json"))
    assert again.exit_code == 1 and f"fork at position {signed['position']}" in again.stderr
    assert not (world.key.parent / "cp.json").exists()


def test_ledger_checkpoint_refuses_a_truncated_store(world: Cli) -> None:
    signed = world.checkpoint()
    _truncate(world.settings, signed["position"] - 3)
    refused = world.run("checkpoint")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert f"fork at position {signed['position'] - 2}" in refused.stderr and "truncated" in refused.stderr
    # Truncated, then refilled to beyond the signed position: still not what was signed.
    for day in range(10, 14):
        _append(world.settings, day)
    refilled = world.run("checkpoint")
    assert refilled.exit_code == 1 and f"fork at position {signed['position']}" in refilled.stderr


def test_events_altered_after_the_last_checkpoint_are_named_by_position(world: Cli) -> None:
    world.checkpoint()
    _append(world.settings, 10)
    _append(world.settings, 11)
    ledger = Ledger(world.settings)
    last, _ = checkpoint.head(ledger.recorder)

    def alter(execute: Any, table: str, position_column: str) -> None:  # no chain recomputed
        execute(f"UPDATE {table} SET state = ? WHERE {position_column} = ?", b'{"forged":true}', last - 1)

    _sql(world.settings, alter)
    fresh = Ledger(world.settings)
    with pytest.raises(ForkError) as refused:
        Signer(checkpoint.SigningKey.load(world.key)).sign_head(fresh.recorder)
    assert refused.value.position == last - 1


def test_the_signer_reads_only_the_events_since_its_last_checkpoint(
    world: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = world.checkpoint()
    _append(world.settings, 10)
    ledger = Ledger(world.settings)
    starts: list[int] = []
    select = ledger.recorder.select_notifications

    def spy(start: int, *args: Any, **kwargs: Any) -> Any:
        starts.append(start)
        return select(start, *args, **kwargs)

    monkeypatch.setattr(ledger.recorder, "select_notifications", spy)
    body = Signer(checkpoint.SigningKey.load(world.key)).sign_head(ledger.recorder)
    assert body["position"] == signed["position"] + 1
    assert starts and min(starts) >= signed["position"], starts


def test_a_last_checkpoint_file_that_was_edited_or_replaced_stops_signing(world: Cli, tmp_path: Path) -> None:
    signed = world.checkpoint()
    state = state_path(world.key)
    state.write_text(json.dumps(dict(signed, position=signed["position"] - 5)))
    edited = world.run("checkpoint")
    assert edited.exit_code == 1 and "not signed by this key" in edited.stderr and edited.stdout == ""
    ledger = Ledger(world.settings)
    other = Signer(checkpoint.SigningKey.load_or_create(tmp_path / "other.pem")).sign_head(ledger.recorder)
    state.write_text(json.dumps(other))
    assert world.run("checkpoint").exit_code == 1
    state.write_text("{garbage")
    garbage = world.run("checkpoint")
    assert garbage.exit_code == 1 and "last checkpoint" in garbage.stderr


def test_verify_checkpoints_reports_the_fork_of_a_signer_whose_memory_was_deleted(
    world: Cli, tmp_path: Path
) -> None:
    public = world.public_key(tmp_path)
    before = world.checkpoint()
    _forge(world.settings)
    state_path(world.key).unlink()  # the attacker also deletes what the signer remembered
    _append(world.settings, 10)
    after = world.checkpoint()  # signs the forged history: it has nothing left to compare with
    code, report = world.verify_many([before, after], public)
    assert code == 1 and not report["ok"] and report["checkpoints"]["forks"] == 1
    assert ("store", before["position"]) in _kinds(report)  # the store is not what was signed first
    [fork] = [p for p in report["checkpoints"]["problems"] if p["kind"] == "fork"]
    assert fork["position"] == after["position"] and "part at or before position" in fork["problem"]
    assert [c["root"] for c in fork["checkpoints"]] == [before["root"], after["root"]]
    text = world.run("verify", "--checkpoints", "-", "--public-key", str(public),
                     stdin=json.dumps(before) + "\n" + json.dumps(after) + "\n")
    assert text.exit_code == 1 and "checkpoints: fork:" in text.stderr


def test_two_signed_roots_at_one_position_are_a_fork(world: Cli, tmp_path: Path) -> None:
    public = world.public_key(tmp_path)
    before = world.checkpoint()
    _forge(world.settings)
    state_path(world.key).unlink()
    after = world.checkpoint()
    assert after["position"] == before["position"] and after["root"] != before["root"]
    code, report = world.verify_many([after, before], public)
    assert code == 1 and report["checkpoints"]["forks"] == 1
    assert ("fork", before["position"]) in _kinds(report)


def test_a_later_checkpoint_that_does_not_extend_an_earlier_one_is_a_fork_against_the_honest_store(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """The forged copy is signed elsewhere with the same key; the honest store still tells."""
    _world(sqlite_settings)
    honest = Cli(sqlite_settings, tmp_path / "keys" / "signing-key.pem")
    public = honest.public_key(tmp_path)
    early = honest.checkpoint()
    _append(sqlite_settings, 10)
    _append(sqlite_settings, 11)
    copy = Settings(store=f"sqlite:///{tmp_path / 'copy.db'}")
    for suffix in ("", "-wal", "-shm"):  # the database with its write-ahead log
        source = Path(f"{sqlite_settings.sqlite_path}{suffix}")
        if source.exists():
            shutil.copy(source, f"{copy.sqlite_path}{suffix}")
    _forge(copy)
    state_path(honest.key).unlink()
    late = Cli(copy, honest.key).checkpoint()
    code, report = honest.verify_many([early, late], public)
    assert code == 1 and report["checkpoints"]["forks"] == 1
    [fork] = [p for p in report["checkpoints"]["problems"] if p["kind"] == "fork"]
    assert fork["position"] == late["position"] and "does not extend" in fork["problem"]
    assert ("store", late["position"]) in _kinds(report)


def test_verify_checkpoints_reports_truncation_bad_signatures_and_unreadable_lines(
    world: Cli, tmp_path: Path
) -> None:
    public = world.public_key(tmp_path)
    first = world.checkpoint()
    _append(world.settings, 10)
    second = world.checkpoint()
    _truncate(world.settings, first["position"])
    edited = dict(first, at="2020-01-01T00:00:00+00:00")
    lines = [json.dumps(first), json.dumps(second), json.dumps(edited), "not json",
             json.dumps({"type": "Checkpoint", **first}),
             json.dumps({"partition": 0, "offset": 7, "event": {"type": "Checkpoint", **first}})]
    done = world.run("verify", "--checkpoints", "-", "--public-key", str(public), "--json",
                     stdin="\n".join(lines) + "\n")
    assert done.exit_code == 1
    kinds = _kinds(json.loads(done.stdout))
    assert ("store", second["position"]) in kinds and ("signature", first["position"]) in kinds
    assert ("unreadable", None) in kinds and len(kinds) == 3  # topic records and tail lines are read
    truncated = [p for p in json.loads(done.stdout)["checkpoints"]["problems"] if p["kind"] == "store"]
    assert "truncated" in truncated[0]["problem"]


def test_verifying_a_checkpoint_never_creates_a_key_and_needs_a_trusted_one(
    world: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = tmp_path / "cp.json"
    cp.write_text(json.dumps(world.checkpoint()))
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("LEDGER_TRUSTED_PUBLIC_KEY", raising=False)
    unset = tmp_path / "nowhere" / "signing-key.pem"
    runner = CliRunner()
    for option in ("--checkpoint", "--checkpoints"):
        for key_args in ([], ["--signing-key", str(unset)]):
            done = runner.invoke(cli, ["--store", world.settings.store, *key_args, "verify", option, str(cp)])
            assert done.exit_code == 2 and "trusted public key" in done.stderr, done.stderr
    assert not unset.exists() and not unset.parent.exists() and not config.exists()
    public = world.public_key(tmp_path)
    monkeypatch.setenv("LEDGER_TRUSTED_PUBLIC_KEY", str(public))
    configured = runner.invoke(cli, ["--store", world.settings.store, "--signing-key", str(unset),
                                     "verify", "--checkpoints", str(cp)])
    assert configured.exit_code == 0, configured.stderr
    assert not unset.exists() and not config.exists()
