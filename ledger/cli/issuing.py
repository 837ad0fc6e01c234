"""``ledger issue``: the issuing worker, the one process that holds the credential issuer key.

It signs every credential and status list once, as the store's log grows, and stores them
(the ``issued_credentials`` read model); the API and the console serve what it stored.
``ledger project`` runs the same worker beside its read models (unless ``--no-issue``),
``ledger up`` runs it as a child of its own, and ``ledger serve`` in embedded mode starts
it as a child process (:func:`spawn`), so the server itself never loads the key.

A new command about issuing goes here and into ``COMMANDS`` at the bottom.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ledger.cli.common import Context, issuer_options, log_to_stderr, on_sigterm
from ledger.cli.render import err
from ledger.config import Settings
from ledger.domain.errors import LedgerError


def with_issuer(settings: Settings) -> Settings:
    """``settings`` with the issuer's settings from the environment where they name none (the
    top-level command line reads only the store's; `ledger credentials` and `ledger issue` take
    them as options)."""
    from_env = Settings.from_env()
    return settings.with_overrides(**{name: getattr(settings, name) or getattr(from_env, name)
                                      for name in ("issuer_key", "issuer_did", "issuer_name", "public_url")})


def worker(settings: Settings, ledger: Any, stop: threading.Event | None = None, page: int = 200,
           poll_interval: float = 0.2) -> Any:
    """An issuing worker with the configured key (created on first use, here, where it signs)."""
    from ledger.credentials.issuer import for_settings
    from ledger.credentials.worker import IssuingWorker
    from ledger.store.db import Database

    settings = with_issuer(settings)
    return IssuingWorker(ledger, Database(settings), for_settings(settings), page=page,
                         poll_interval=poll_interval, stop=stop)


def beside(obj: Context) -> Any:
    """For ``ledger project``: the worker, or None (with a warning) when the key cannot be used."""
    try:
        return worker(obj.settings, obj.ledger)
    except LedgerError as exc:
        err.print(f"warning: credentials are not issued by this process ({exc}); run `ledger issue` "
                  "where the issuer key is", highlight=False, markup=False)
        return None


def run_beside(found: Any, until_idle: bool) -> threading.Thread | None:
    """Run ``found`` (see :func:`beside`): to idle, here; else in a thread that is returned."""
    if found is None:
        return None
    if until_idle:
        found.run(until_idle=True)
        return None
    thread = threading.Thread(target=found.run, name="issuer", daemon=True)
    thread.start()
    return thread


def follow_beside(follower: Any, run: Callable[[], Any], issuing: Any, until_idle: bool) -> Any:
    """Run ``follower`` and, beside it, the issuing worker (after it, when running to idle)."""
    if issuing is not None:
        issuing.stop = issuing.status.stop = follower.stop  # one SIGTERM stops both
    on_sigterm(follower.stop)
    thread = None if until_idle else run_beside(issuing, until_idle)
    stats = run()
    if until_idle:
        run_beside(issuing, until_idle)
    elif thread is not None:
        thread.join()
    return stats


def add_to_rebuild(obj: Context, runner: Any, required: bool) -> None:
    """Add issued_credentials to ``runner`` when asked for by name (the key is then created if
    need be), or, for `rebuild all`, when an issuing worker has run on this store and its key is
    here; otherwise `rebuild all` leaves it out, and says so when a worker has run."""
    from ledger.credentials.issuer import existing, for_settings
    from ledger.credentials.issuing import IssuedCredentialsProjection
    from ledger.credentials.stored import PROJECTION

    settings = with_issuer(obj.settings)
    if required:
        runner.projections.append(IssuedCredentialsProjection(obj.ledger, for_settings(settings)))
        return
    if PROJECTION not in runner.offsets():
        return  # no issuing worker has run here: nothing to rebuild
    issuer = existing(settings)
    if issuer is None:
        err.print("note: issued_credentials is not rebuilt: no issuer key here (LEDGER_ISSUER_KEY); "
                  "rebuild it where credentials are signed", highlight=False, markup=False)
        return
    runner.projections.append(IssuedCredentialsProjection(obj.ledger, issuer))


def child_env(settings: Settings) -> dict[str, str]:
    """A child's environment: this process's, with the settings given as LEDGER_* variables (those
    not given, e.g. LEDGER_PUBLIC_URL read by the child itself, are left as the environment has them)."""
    return {**os.environ, **{name: value for name, value in settings.to_env().items() if value}}


@contextmanager
def child_beside(settings: Settings, enabled: bool) -> Iterator[None]:
    """For ``ledger serve``: ``ledger issue`` as a child process while the block runs (settings
    through its environment, never its command line; SIGTERM on the parent's death on Linux)."""
    if not enabled:
        yield
        return
    from ledger.ops.supervisor import die_with_parent, stop_process

    child = subprocess.Popen([sys.executable, "-m", "ledger.cli", "issue"], env=child_env(settings),
                             preexec_fn=die_with_parent)  # noqa: PLW1509 - only sets the death signal
    try:
        yield
    finally:
        stop_process(child, timeout=20)


@click.command()
@click.option("--until-idle", is_flag=True, help="Issue what the store holds, then exit.")
@click.option("--page", default=200, show_default=True, help="Log events per batch (signed, then stored in one transaction).")
@click.option("--poll", default=0.2, show_default=True, help="Seconds between looks at the log when it is idle.")
@issuer_options
@click.pass_obj
def issue(obj: Context, until_idle: bool, page: int, poll: float, issuer_key: str | None, issuer_did: str | None,
          issuer_name: str | None, public_url: str | None) -> None:
    """Sign credentials and status lists once, as the store grows, and store them.

    The issuing worker: for each officer event a credential depends on, in the store's log
    order, the officer's current Open Badges / CLR credentials are signed with the issuer
    key and stored, and each revocation status list that changed is signed again. The API
    (`GET /officers/{id}/credentials`, `/credentials/status/<n>`, `/issuer`) serves what is
    stored and holds no key. Exactly once: each batch is stored with its position, so a
    restart resumes where it ended. The issuer DID and name and the public URL say what the
    credentials name (as for `ledger credentials`). SIGTERM finishes the batch and exits 0.
    """
    obj.settings = obj.settings.with_overrides(issuer_key=issuer_key, issuer_did=issuer_did,
                                               issuer_name=issuer_name, public_url=public_url)
    log_to_stderr("issuer")
    found = worker(obj.settings, obj.ledger, page=page, poll_interval=poll)
    on_sigterm(found.stop)
    stats = found.run(until_idle=until_idle)
    err.print(f"issue: {stats.events:,} events in {stats.batches:,} batches", highlight=False)


COMMANDS: tuple[click.Command, ...] = (issue,)
