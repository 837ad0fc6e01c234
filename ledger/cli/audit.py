"""Commands for auditors: an officer's history, the hash chains, who read what, what could not be applied."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
@click.option("--public-key", "public_key_file", metavar="PEM",
              help="Check the checkpoint's signature with this public key (default: the ledger's signing key).")
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
@click.pass_obj
def verify(obj: Context, officer_id: str | None, checkpoint_file: str | None, public_key_file: str | None,
           as_json: bool) -> None:
    """Recompute the hash chains: the whole log's and every entity's (or OFFICER_ID's).

    Reports each altered, removed, inserted, reordered or retyped event by officer
    (or entity) and version. With --checkpoint, also recomputes the log's root up to
    the checkpoint's position from the events alone and compares it with what was
    signed: a truncated history or one rewritten with fresh hashes fails; events
    appended after the checkpoint do not matter. Exit status 1 on any break.
    """
    checked, breaks = audit_reader(obj).verify(officer_id)
    if officer_id is not None and not obj.ledger.officer_events(officer_id) and not breaks:
        fail(f"officer {officer_id!r} is not registered")
    problems: list[str] = []
    if checkpoint_file is not None:
        problems = _check_against(obj, checkpoint_file, public_key_file)
    ok = not breaks and not problems
    if as_json:
        out: dict[str, object] = {"checked": checked, "breaks": breaks, "ok": ok}
        if checkpoint_file is not None:
            out["checkpoint"] = {"ok": not problems, "problems": problems}
        emit_json(out)
    else:
        print_chain_breaks(checked, breaks)
        for problem in problems:
            err.print(f"checkpoint: {problem}", highlight=False, markup=False)
        if checkpoint_file is not None and not problems:
            err.print("checkpoint: the history up to its position is exactly what was signed", highlight=False)
    sys.exit(0 if ok else 1)


def _check_against(obj: Context, checkpoint_file: str, public_key_file: str | None) -> list[str]:
    from ledger.integrity import checkpoint
    try:
        data = sys.stdin.buffer.read() if checkpoint_file == "-" else Path(checkpoint_file).read_bytes()
    except OSError as exc:
        fail(f"checkpoint: cannot read {checkpoint_file}: {exc.strerror}")
    body = checkpoint.parse(data)
    if public_key_file is not None:
        try:
            public = checkpoint.load_public_key(Path(public_key_file).read_bytes())
        except OSError as exc:
            fail(f"public key: cannot read {public_key_file}: {exc.strerror}")
    else:
        public = checkpoint.SigningKey.load_or_create(obj.settings.signing_key_path).public
    return checkpoint.verify_against(obj.ledger.recorder, body, public)


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
    first use.
    """
    from ledger.integrity import checkpoint
    key = checkpoint.SigningKey.load_or_create(obj.settings.signing_key_path)
    if print_public_key:
        sys.stdout.write(f"# key_id {key.key_id}\n{checkpoint.public_pem(key.public)}")
        return
    body = checkpoint.make(obj.ledger.recorder, key)
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
