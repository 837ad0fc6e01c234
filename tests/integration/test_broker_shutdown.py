"""`ledger broker` stops its broker child on SIGTERM and on Ctrl-C: no process left, the port free."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.integration.proc import alive, children, port_free, wait_for
from tests.integration.util import child_env
from tests.ports import free_port

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signalling_ledger_broker_stops_its_broker_and_frees_the_port(sig: signal.Signals) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ledger.cli", "broker", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    try:
        wait_for(lambda: not port_free(port), 30, "the broker listens")
        brokers = children(proc.pid)
        assert len(brokers) == 1 and alive(brokers[0])

        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        wait_for(lambda: not alive(brokers[0]), 5, "the broker child is gone")
        assert port_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
