"""`ledger up` on PostgreSQL and the broker: a SIGKILLed child comes back and the read models stay
exact; /metrics of the relay, the projector and the API agree with `ledger status`; the JSON logs
carry no name or email; SIGTERM leaves no process and no port behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.monitor.status import collect
from ledger.write.application import Ledger
from tests.integration.proc import alive, cmdline, descendants, port_free, wait_for
from tests.integration.test_projections import assert_matches_fold, kafka_args
from tests.integration.util import child_env, run_ledger
from tests.ports import free_port, free_ports

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]

ROLES = ("relay", "projector-1", "projector-2", "api")


def _roles(supervisor: int) -> dict[str, int]:
    """The supervisor's children by role (relay, projector-1 and -2 on half the partitions each, api)."""
    found = {}
    for pid in descendants(supervisor):
        argv = cmdline(pid)
        if "ledger.cli" not in argv:
            continue
        if "relay" in argv:
            found["relay"] = pid
        elif "serve" in argv:
            found["api"] = pid
        elif "project" in argv:
            found[f"projector-{int(argv[argv.index('--instance') + 1].split('/')[0]) + 1}"] = pid
    return found


def _caught_up(settings: Settings) -> bool:
    report = collect(Ledger(settings), settings, stuck_after=3600)
    # The issuer child signs at its own pace (seconds per officer): not what is waited for here.
    return bool(report["relay"]["lag_events"] == 0
                and all(p["lag_events"] == 0 for name, p in report["projections"].items()
                        if name != "issued_credentials"))


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _names_and_emails(lines: list[str]) -> set[str]:
    found = set()
    for line in lines:
        command = json.loads(line)
        if command.get("type") == "register_officer":
            found.update({str(command.get("name")), str(command.get("email")), str(command.get("email")).split("@")[0]})
    return {p for p in found if len(p) >= 5}  # the generator's few invalid commands have empty fields


def test_ledger_up_restarts_a_killed_child_agrees_with_status_and_stops_cleanly(
    pg_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # A password in the store URL (trust authentication ignores it) must reach no command line.
    secret = "pw-never-on-a-command-line"
    store = pg_settings.store.replace("://postgres@", f"://postgres:{secret}@", 1)
    assert secret in store
    settings = Settings(store=store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    lines = list(generate_lines(120, seed=61))
    half = len(lines) // 2
    ledger = Ledger(settings)
    list(ledger.ingest(lines[:half]))
    api_port, metrics_port = free_port(), free_ports(3)
    log_file = tmp_path / "up.log"
    env = {**child_env(settings), "LEDGER_LOG_FORMAT": "json", "LEDGER_STORE": settings.store}
    with log_file.open("wb") as log_out:
        # The store through the environment: this test's own command line holds no password either.
        up = subprocess.Popen([sys.executable, "-m", "ledger.cli", *kafka_args(settings), "up", "--port", str(api_port),
                               "--metrics-port", str(metrics_port), "--max-backoff", "1", "--projectors", "2"],
                              stdout=subprocess.DEVNULL, stderr=log_out, env=env)
    seen: set[int] = set()
    try:
        wait_for(lambda: _roles(up.pid).keys() == set(ROLES), 30, "relay, two projectors and api run")
        wait_for(lambda: not port_free(api_port), 30, "the API listens")
        wait_for(lambda: _caught_up(settings), 60, "the first half is projected")
        first = _roles(up.pid)
        seen.update(descendants(up.pid))
        for pid in [up.pid, *seen]:
            assert not any(secret in arg for arg in cmdline(pid)), (pid, "has the password on its command line")

        # A projection consumer killed outright is started again, and nothing is lost or doubled.
        projector = first["projector-1"]
        subprocess.run(["kill", "-KILL", str(projector)], check=True)
        list(ledger.ingest(lines[half:]))
        wait_for(lambda: _roles(up.pid).get("projector-1", projector) != projector, 15, "projector restarted")
        assert {k: v for k, v in _roles(up.pid).items() if k != "projector-1"} == {
            k: v for k, v in first.items() if k != "projector-1"}  # the others were left alone
        wait_for(lambda: _caught_up(settings), 60, "the second half is projected")
        assert_matches_fold(settings)
        seen.update(descendants(up.pid))

        # Every endpoint agrees with `ledger status`.
        wait_for(lambda: not port_free(metrics_port + 1), 15, "the new projector serves metrics")
        done = run_ledger(settings, *kafka_args(settings), "status", "--json", "--stuck-after", "3600")
        report = json.loads(done.stdout)
        _assert_agree(report, _scrape(metrics_port), _scrape(metrics_port + 1), _scrape(api_port))
        again = _scrape(api_port)  # the API counts requests by route template, its scrapes too
        assert again[("ledger_http_request_duration_seconds_count",
                      (("method", "GET"), ("route", "/metrics"), ("status", "200")))] >= 1
    finally:
        seen.update(descendants(up.pid))
        up.send_signal(signal.SIGTERM)
        try:
            code = up.wait(timeout=40)
        except subprocess.TimeoutExpired:
            for pid in [up.pid, *descendants(up.pid)]:
                subprocess.run(["kill", "-KILL", str(pid)], check=False)
            raise
    assert code == 0
    assert [pid for pid in seen if alive(pid)] == []
    assert all(port_free(port) for port in (api_port, metrics_port, metrics_port + 1, metrics_port + 2))
    _assert_json_logs_without_personal_data(log_file.read_text(), _names_and_emails(lines))


def _assert_agree(report: dict[str, Any], relay: dict[Any, float], projector: dict[Any, float],
                  api: dict[Any, float]) -> None:
    assert report["relay"]["position"] > 0
    for scraped in (relay, api):
        assert scraped[("ledger_relay_position", ())] == report["relay"]["position"]
        assert scraped[("ledger_relay_lag_events", ())] == report["relay"]["lag_events"] == 0
    for scraped in (projector, api):
        assert scraped[("ledger_dead_letters", ())] == report["dead_letters"]
        for name, entry in report["projections"].items():
            if name == "issued_credentials":  # the issuer child still signing: it moves between the scrapes
                continue
            label = (("projection", name),)
            assert scraped[("ledger_projection_position", label)] == entry["position"] > 0
            assert scraped[("ledger_projection_lag_events", label)] == entry["lag_events"] == 0
            assert scraped[("ledger_projection_lag_seconds", label)] == entry["lag_seconds"] == 0
            # credential_status follows the store's log (a store position), the others the topics' partitions.
            for part in entry["partitions"] if name != "credential_status" else []:
                key = (("partition", str(part["partition"])), ("projection", name), ("topic", part["topic"]))
                assert scraped[("ledger_projection_partition_position", key)] == part["position"]
    assert ("ledger_projection_position", (("projection", "records"),)) not in relay
    # The consumer and the relay counted what they did.
    assert sum(v for (n, labels), v in projector.items() if n == "ledger_consumer_messages_total") > 0
    assert sum(v for (n, labels), v in projector.items() if n == "ledger_projection_events_total") > 0
    assert relay[("ledger_relay_published_total", ())] > 0


def _assert_json_logs_without_personal_data(text: str, personal: set[str]) -> None:
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    started = [r for r in records if r["component"] == "supervisor" and r["message"].startswith("started")]
    children = (*ROLES, "issuer")  # the issuing worker, found by the supervisor's records only
    assert {r["child"] for r in started} == set(children) and all(r["pid"] > 0 for r in started)
    assert any(r.get("child") == "projector-1" and r.get("status") == -signal.SIGKILL for r in records)
    stopped = {r["child"]: r["status"] for r in records if r["message"].startswith(children)
               and "stopped" in r["message"]}
    assert stopped == dict.fromkeys(children, 0)  # each finished and exited 0 on SIGTERM
    assert {"time", "level", "component", "message"} <= set(records[0])
    leaked = {p for p in personal if p in text}
    assert personal and leaked == set()
