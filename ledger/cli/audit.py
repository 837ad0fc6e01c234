"""Commands for auditors: an officer's history, the hash chains, who read what, what could not be applied."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ledger.cli.common import Context, audit_reader, read_models
from ledger.cli.render import (
    access_line,
    emit_json,
    err,
    fail,
    print_chain_breaks,
    print_dead_letters,
    print_history,
    show,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@click.command()
@click.argument("officer_id")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of events.")
@click.pass_obj
def history(obj: Context, officer_id: str, as_json: bool) -> None:
    """Show OFFICER_ID's events in order, with business time and recorded time."""
    events = audit_reader(obj).history(officer_id)
    if not events:
        fail(f"officer {officer_id!r} is not registered")
    show(events, as_json, print_history)


@click.command()
@click.argument("officer_id", required=False)
@click.option("--checkpoint", "checkpoint_file", metavar="FILE|-",
              help="Also check the history up to this signed checkpoint's position against it.")
@click.option("--checkpoints", "checkpoints_file", metavar="FILE|-",
              help="Also check many checkpoints (JSON Lines, e.g. read from <prefix>.checkpoints): each against "
                   "the store, and all of them against each other (a fork is reported).")
@click.option("--public-key", "public_key_file", metavar="PEM",
              help="The public key to check signatures with (default: --trusted-public-key / "
                   "LEDGER_TRUSTED_PUBLIC_KEY; one of them is required with --checkpoint(s)).")
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
@click.pass_obj
def verify(obj: Context, officer_id: str | None, checkpoint_file: str | None, checkpoints_file: str | None,
           public_key_file: str | None, as_json: bool) -> None:
    """Recompute the hash chains: the whole log's and every entity's (or OFFICER_ID's).

    Reports each altered, removed, inserted, reordered or retyped event by officer
    (or entity) and version. With --checkpoint, also recomputes the log's root up to
    the checkpoint's position from the events alone and compares it with what was
    signed: a truncated history or one rewritten with fresh hashes fails; events
    appended after the checkpoint do not matter. With --checkpoints, the same for each
    of many, and two validly signed checkpoints whose histories disagree are reported
    as a fork. Signatures are checked with a trusted public key (--public-key or
    LEDGER_TRUSTED_PUBLIC_KEY), never with a key found on this host: without one, exit
    status 2 and nothing is created. Exit status 1 on any break.
    """
    public = _trusted_key(obj, public_key_file) if checkpoint_file or checkpoints_file else None
    checked, breaks = audit_reader(obj).verify(officer_id)
    if officer_id is not None and not obj.ledger.officer_events(officer_id) and not breaks:
        fail(f"officer {officer_id!r} is not registered")
    problems: list[str] = []
    if checkpoint_file is not None and public is not None:
        problems = _check_against(obj, checkpoint_file, public)
    findings: list[dict[str, Any]] = []
    if checkpoints_file is not None and public is not None:
        findings = _check_many(obj, checkpoints_file, public)
    ok = not breaks and not problems and not findings
    if as_json:
        out: dict[str, object] = {"checked": checked, "breaks": breaks, "ok": ok}
        if checkpoint_file is not None:
            out["checkpoint"] = {"ok": not problems, "problems": problems}
        if checkpoints_file is not None:
            out["checkpoints"] = {"ok": not findings, "forks": sum(f["kind"] == "fork" for f in findings),
                                  "problems": findings}
        emit_json(out)
    else:
        print_chain_breaks(checked, breaks)
        _print_checkpoint_results(checkpoint_file, problems, checkpoints_file, findings)
    sys.exit(0 if ok else 1)


def _print_checkpoint_results(checkpoint_file: str | None, problems: list[str], checkpoints_file: str | None,
                              findings: list[dict[str, Any]]) -> None:
    for problem in problems:
        err.print(f"checkpoint: {problem}", highlight=False, markup=False)
    if checkpoint_file is not None and not problems:
        err.print("checkpoint: the history up to its position is exactly what was signed", highlight=False)
    for finding in findings:
        err.print(f"checkpoints: {finding['kind']}: {finding['problem']}", highlight=False, markup=False)
    if checkpoints_file is not None and not findings:
        err.print("checkpoints: each one matches the store's history and each later one extends the earlier ones",
                  highlight=False)


def _trusted_key(obj: Context, public_key_file: str | None) -> Ed25519PublicKey:
    """The public key to verify checkpoints with: --public-key, else the configured one (never the
    signing key: on the ledger's host its administrators could replace that file)."""
    from ledger.integrity import checkpoint

    path = public_key_file or obj.settings.trusted_public_key
    if not path:
        raise click.UsageError("checking a checkpoint needs a trusted public key: --public-key PEM, or "
                               "--trusted-public-key / LEDGER_TRUSTED_PUBLIC_KEY (get it with `ledger checkpoint "
                               "--public-key` where the signing key is kept)")
    try:
        return checkpoint.load_public_key(Path(path).read_bytes())
    except OSError as exc:
        fail(f"public key: cannot read {path}: {exc.strerror}")


def _read(name: str, what: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        fail(f"{what}: cannot read {name}: {exc.strerror}")


def _check_against(obj: Context, checkpoint_file: str, public: Ed25519PublicKey) -> list[str]:
    from ledger.integrity import checkpoint

    body = checkpoint.parse(_read(checkpoint_file, "checkpoint"))
    return checkpoint.verify_against(obj.ledger.recorder, body, public)


def _check_many(obj: Context, checkpoints_file: str, public: Ed25519PublicKey) -> list[dict[str, Any]]:
    from ledger.integrity import forks

    bodies, unreadable = forks.read_lines(_read(checkpoints_file, "checkpoints"))
    if not bodies and not unreadable:
        fail(f"checkpoints: {checkpoints_file} holds no checkpoint")
    return [f.as_dict() for f in [*unreadable, *forks.check(obj.ledger.recorder, bodies, public)]]


@click.command("checkpoint")
@click.option("--out", "out_file", metavar="FILE", help="Write the checkpoint to FILE (default: stdout).")
@click.option("--public-key", "print_public_key", is_flag=True,
              help="Print the signing key's public key (PEM) and its key_id instead.")
@click.pass_obj
def make_checkpoint(obj: Context, out_file: str | None, print_public_key: bool) -> None:
    """Sign the log chain's current root: {"position", "root", "at", "key_id", "signature"}.

    Keep checkpoints somewhere the database's administrators cannot write (the relay
    also publishes them to <prefix>.checkpoints); `ledger verify --checkpoint FILE`
    later proves the history up to that position is unchanged. The Ed25519 key lives
    in a file outside the database (--signing-key / LEDGER_SIGNING_KEY), created on
    first use; the latest checkpoint it signed is kept beside it (<key file>.last.json).
    A new root is signed only if the chain recomputed from that checkpoint's root over
    the events since reaches it: otherwise nothing is signed, and exit status 1 names
    the position where the history no longer extends what was signed (a rewritten or
    truncated history, a fork).
    """
    from ledger.integrity import checkpoint
    from ledger.integrity.signer import Signer

    key = checkpoint.SigningKey.load_or_create(obj.settings.signing_key_path)
    if print_public_key:
        sys.stdout.write(f"# key_id {key.key_id}\n{checkpoint.public_pem(key.public)}")
        return
    body = Signer(key).sign_head(obj.ledger.recorder)
    text = json.dumps(body) + "\n"
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        with open(out_file, "w") as out:
            out.write(text)
    except OSError as exc:
        fail(f"--out: cannot write {out_file}: {exc.strerror}")
    err.print(f"checkpoint at position {body['position']:,} written to {out_file}", highlight=False)


@click.command("access-log")
@click.option("--officer", "officer_id", help="Only reads of this officer.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def access_log(obj: Context, officer_id: str | None, as_json: bool) -> None:
    """Show who read which officer's personal data or history, and when."""
    from ledger.api.auth import read_access_log
    from ledger.store.db import Database

    for row in read_access_log(Database(obj.settings), officer_id):
        if as_json:
            emit_json(row)
        else:
            sys.stdout.write(access_line(row))


def _list_dead_letters(obj: Context, as_json: bool) -> None:
    rows = read_models(obj).dead_letters()
    if as_json:
        for row in rows:
            emit_json(row)
    else:
        print_dead_letters(rows)


def _group_json(ctx: click.Context) -> bool:
    """``ledger dead-letters --json SUBCOMMAND`` means the same as ``... SUBCOMMAND --json``."""
    return bool(ctx.parent is not None and ctx.parent.params.get("as_json"))


@click.group("dead-letters", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
@click.pass_context
def dead_letters(ctx: click.Context, as_json: bool) -> None:
    """Events the projections could not apply: list them (the default) or retry them.

    Without a subcommand, the same as `list`: each undecodable or out-of-order event,
    and the officers' later events held back behind it. `retry` re-applies them from
    the event store once the cause is gone.
    """
    if ctx.invoked_subcommand is None:
        _list_dead_letters(ctx.obj, as_json)


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
@click.pass_context
def list_dead_letters(ctx: click.Context, as_json: bool) -> None:
    """List events the projections could not apply (and the officers held back behind them)."""
    _list_dead_letters(ctx.obj, as_json or _group_json(ctx))


@dead_letters.command("retry")
@click.argument("officer_id", required=False)
@click.option("--json", "as_json", is_flag=True,
              help='The result as JSON: {"ok", "officers": [{"officer_id", "kind", "applied", "cleared", ...}]}.')
@click.pass_context
def retry_dead_letters(ctx: click.Context, officer_id: str | None, as_json: bool) -> None:
    """Re-apply the events held back behind dead letters (every officer's, or OFFICER_ID's).

    Each officer's events are folded from the event store (whatever the source was:
    the store's log or Kafka) into every read model, after the version each document
    already has, and its dead letters are deleted in the same transaction, so nothing
    counts twice and the running `ledger project` carries on with the officer. An
    officer whose stream in the store still skips a version keeps its dead letters; so
    do messages that no event in the store stands behind (no key, or an unknown one).
    Running it again changes nothing. Exit status 1 unless everything was recovered.
    """
    from ledger.projections.recovery import retry

    obj: Context = ctx.obj
    results = retry(obj.ledger, read_models(obj).runner, officer_id)
    ok = all(r.cleared for r in results)
    if as_json or _group_json(ctx):
        emit_json({"ok": ok, "officers": [r.as_dict() for r in results]})
    else:
        for r in results:
            who = r.officer_id or "(no key)"
            if r.cleared:
                what = f"{r.applied:,} events applied"
                if r.kind == "reference":
                    what = f"reference entity: {r.reapplied_reference:,} events applied again"
                sys.stdout.write(f"{who}: {what}, {r.dead_letters:,} dead letters cleared\n")
            else:
                sys.stdout.write(f"{who}: {r.dead_letters:,} dead letters kept: {r.problem}\n")
        if not results:
            err.print("no dead letters" + (f" for {officer_id}" if officer_id else ""), highlight=False, markup=False)
        else:
            kept = sum(1 for r in results if not r.cleared)
            err.print(f"{len(results):,} officers or keys with dead letters: {len(results) - kept:,} recovered, "
                      f"{kept:,} kept", highlight=False)
    sys.exit(0 if ok else 1)


COMMANDS: tuple[click.Command, ...] = (history, verify, make_checkpoint, access_log, dead_letters)
