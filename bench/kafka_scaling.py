"""Projection consumers in 1, 2 and 3 processes (`ledger project --instance i/n`).

Each n starts fresh read models and n processes on the same relayed topics. The rate is
measured once every process has started (imported, connected, assigned its partitions):
the events still to apply then, over the time to the last commit in the read-model
database. Start-up is left out because it is the same for any n and would weigh more the
more processes share the cores; the idle wait at the end is left out too. None when more
than half the events were applied before the last process was ready (too small a
dataset to say).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _ready_when_logged(child: subprocess.Popen[str], ready: threading.Event) -> None:
    """Drain a consumer's stderr; set ``ready`` once it logs its partitions (start-up done)."""
    assert child.stderr is not None
    for line in child.stderr:
        if "consuming" in line:
            ready.set()
    ready.set()  # it ended: do not wait for it


def consumer_scaling(bootstrap: str, prefix: str, events: int, new_pg: Any, drop_pg: Any,
                     processes: tuple[int, ...] = (1, 2, 3)) -> dict[str, dict[str, float | None]]:
    from ledger.config import Settings
    from ledger.store import schema
    from ledger.store.db import Database

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-scale-"))
    out: dict[str, dict[str, float | None]] = {"sqlite": {}, "postgres": {}}
    for backend, rates in out.items():
        for n in processes:
            name, store = new_pg() if backend == "postgres" else (None, f"sqlite:///{folder / f'scale{n}.db'}")
            try:
                db = Database(Settings(store=store))
                db.schema_checked = True
                schema.migrate(db)
                children = [subprocess.Popen(
                    [sys.executable, "-m", "ledger.cli", "--store", store, "--kafka", bootstrap, "--topic-prefix",
                     prefix, "project", "--until-idle", "--idle", "1.5", "--instance", f"{i}/{n}"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(n)]
                ready = [threading.Event() for _ in children]
                for child, flag in zip(children, ready, strict=True):
                    threading.Thread(target=_ready_when_logged, args=(child, flag), daemon=True).start()
                for flag in ready:
                    flag.wait(120)
                with db.reading() as c:
                    c.execute("SELECT COALESCE(SUM(next_offset), 0) FROM ledger_offsets WHERE projection = 'records'")
                    done_then = int(c.fetchone()[0])
                then = datetime.now(timezone.utc)
                assert [child.wait() for child in children] == [0] * n
                with db.reading() as c:
                    c.execute("SELECT MAX(updated_at) FROM ledger_offsets")
                    last = datetime.fromisoformat(c.fetchone()[0])
                db.close()
                seconds = (last - then).total_seconds()
                rates[str(n)] = (events - done_then) / seconds if done_then < events / 2 and seconds > 0 else None
                print(f"consumers: {n} processes, {backend}: {rates[str(n)] or 0:,.0f} events/s "
                      f"({done_then:,} of {events:,} applied during start-up)", flush=True)
            finally:
                if name:
                    drop_pg(name)
    return out
