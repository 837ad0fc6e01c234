"""The supervisor on plain child processes: restart with growing backoff, and nothing left after stop."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.ops.supervisor import ChildSpec, Supervisor
from tests.integration.proc import alive, wait_for

STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ignores the polite request
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(sys.argv[1], "w").write(str(grandchild.pid))
time.sleep(300)
"""


def _run(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    return thread


def test_a_child_that_keeps_exiting_is_restarted_with_a_doubling_backoff() -> None:
    supervisor = Supervisor([ChildSpec("flaky", (sys.executable, "-c", "pass"))], initial_backoff=0.1,
                            max_backoff=0.4, stable_after=60, poll=0.02)
    thread = _run(supervisor)
    try:
        wait_for(lambda: supervisor.children[0].restarts >= 4, 15, "four restarts")
    finally:
        supervisor.stop.set()
        thread.join(timeout=10)
    child = supervisor.children[0]
    assert child.backoff == 0.4  # 0.1, 0.2, 0.4, then capped
    assert len(set(child.pids)) == len(child.pids) >= 4


def test_stop_kills_a_child_that_ignores_sigterm_and_what_it_started(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    gentle = ChildSpec("gentle", (sys.executable, "-c", "import time; time.sleep(300)"))
    stubborn = ChildSpec("stubborn", (sys.executable, "-c", STUBBORN, str(marker)))
    supervisor = Supervisor([gentle, stubborn], stop_timeout=1.0, poll=0.05)
    thread = _run(supervisor)
    try:
        wait_for(lambda: marker.exists() and marker.read_text(), 15, "the grandchild started")
        time.sleep(0.2)  # the stubborn child has set its SIGTERM handler by now
        pids = [c.pids[0] for c in supervisor.children] + [int(marker.read_text())]
        assert all(alive(pid) for pid in pids)
    finally:
        supervisor.stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
    wait_for(lambda: not any(alive(pid) for pid in pids), 5, "no child or grandchild left")
    assert all(c.restarts == 0 for c in supervisor.children)  # stopping is not a crash


def test_ledger_up_gives_its_children_the_settings_through_the_environment_not_the_command_line() -> None:
    from ledger.cli.supervise import child_env, children
    from ledger.config import Settings

    settings = Settings(store="postgresql://ledger:s3cret-pw@db.internal:5432/ledger",
                        kafka_bootstrap="broker:9092", signing_key="/etc/ledger/signing.pem")
    specs = children(settings, "127.0.0.1", 8080, 9300, 2)
    assert {s.name for s in specs} == {"relay", "projector-1", "projector-2", "issuer", "api"}
    assert all("--no-issue" in s.argv for s in specs if s.name.startswith("projector"))  # one signer: issuer
    for spec in specs:
        assert not any("s3cret" in arg or "db.internal" in arg for arg in spec.argv), spec.argv
    env = child_env(settings)
    assert env["LEDGER_STORE"] == settings.store and env["LEDGER_KAFKA_BOOTSTRAP"] == "broker:9092"
    assert Settings.from_env(env) == settings
    assert settings.store_shown == "postgresql://ledger:***@db.internal:5432/ledger"


def test_a_setting_only_some_commands_read_reaches_the_children_as_the_environment_has_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """LEDGER_ISSUER_KEY and LEDGER_PUBLIC_URL are read by `ledger issue` itself: `ledger up` must not blank them."""
    from ledger.cli.supervise import child_env
    from ledger.config import Settings

    monkeypatch.setenv("LEDGER_ISSUER_KEY", "/etc/ledger/issuer.pem")
    monkeypatch.setenv("LEDGER_PUBLIC_URL", "https://ledger.example.gov.in")
    env = child_env(Settings(store="sqlite:///x.db"))
    assert env["LEDGER_ISSUER_KEY"] == "/etc/ledger/issuer.pem"
    assert env["LEDGER_PUBLIC_URL"] == "https://ledger.example.gov.in" and env["LEDGER_STORE"] == "sqlite:///x.db"
