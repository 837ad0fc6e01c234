"""One rebuild per read model at a time (a second one at once used to empty the first's
shadow tables and lose officers), a lease that dies with its process, and a swap that
never moves a position back. Written as attacks."""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.projections.lease import RebuildLease
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.integration.test_projections import assert_matches_fold, export_all
from tests.integration.util import child_env, ledger_cmd, run_ledger


def _store(settings: Settings, officers: int) -> None:
    list(Ledger(settings).ingest(generate_lines(officers, seed=77)))
    assert run_ledger(settings, "project", "--until-idle").returncode == 0


def test_a_second_rebuild_of_a_model_being_rebuilt_is_refused_and_another_model_is_not(settings: Settings) -> None:
    _store(settings, 60)
    with RebuildLease(Database(settings), ["records"]):
        refused = run_ledger(settings, "rebuild", "records")
        assert refused.returncode == 1
        assert "another rebuild of records is running" in refused.stderr
        assert run_ledger(settings, "rebuild", "all").returncode == 1  # all includes records
        assert run_ledger(settings, "rebuild", "ministries").returncode == 0
    assert run_ledger(settings, "rebuild", "records").returncode == 0  # released
    assert_matches_fold(settings)


def test_concurrent_rebuilds_in_a_loop_lose_nothing(settings: Settings) -> None:
    _store(settings, 120)
    before = export_all(settings)

    def rebuild(_: int) -> subprocess.CompletedProcess[str]:
        return run_ledger(settings, "rebuild", "all")

    outcomes: list[int] = []
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(rebuild, range(2)))
        for d in done:
            assert d.returncode == 0 or "another rebuild" in d.stderr, d.stderr
        outcomes += [d.returncode for d in done]
        assert export_all(settings) == before
    assert 0 in outcomes
    assert_matches_fold(settings)


def test_a_killed_rebuild_leaves_no_lease_behind(sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    _store(settings, 300)
    proc = subprocess.Popen(ledger_cmd(settings, "rebuild", "all"), env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    taken = False
    while time.monotonic() < deadline and proc.poll() is None and not taken:
        try:
            with RebuildLease(Database(settings), ["records"]):
                time.sleep(0.01)
        except Exception:
            taken = True  # the rebuild holds it now
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert run_ledger(settings, "rebuild", "all").returncode == 0
    assert_matches_fold(settings)


def test_a_swap_never_moves_a_position_back(sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    _store(settings, 30)
    db = Database(settings)
    with db.transaction() as c:  # a consumer already further than the rebuild will reach
        c.execute("UPDATE ledger_offsets SET next_offset = 10000000 WHERE projection = 'records'")
    assert run_ledger(settings, "rebuild", "records").returncode == 0
    with db.reading() as c:
        c.execute("SELECT next_offset FROM ledger_offsets WHERE projection = 'records'")
        rows: list[Any] = c.fetchall()
    assert [int(r[0]) for r in rows] == [10000000]
