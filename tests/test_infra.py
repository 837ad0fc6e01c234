"""The deployment files run commands the ledger has, and Prometheus scrapes the ports they serve."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ledger.cli import cli

INFRA = Path(__file__).resolve().parent.parent / "infra"
UNITS = sorted((INFRA / "systemd").glob("*.service"))


def _parses(args: list[str]) -> click.Context:
    """The subcommand's context for ``args``; raises on an unknown command or option."""
    name, *rest = args
    command = cli.commands[name]
    return command.make_context(name, rest)


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def _exec_args(path: Path) -> list[str]:
    line = _unit(path)["Service"]["ExecStart"]
    line = line.replace("$$((9300 + %i))", "9301")  # the projector template's instance port
    words = shlex.split(line)
    if words[:2] == ["/bin/sh", "-c"]:
        words = shlex.split(words[2])[1:]  # after "exec"
    assert words[0] == "/opt/ledger/bin/ledger", path
    return words[1:]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_systemd_unit_runs_a_ledger_command_that_parses(path: Path) -> None:
    unit = _unit(path)
    assert unit["Service"]["User"] == "ledger" and unit["Service"]["EnvironmentFile"] == "/etc/ledger/ledger.env"
    ctx = _parses(_exec_args(path))
    if unit["Service"].get("Type") != "oneshot":
        assert unit["Service"]["KillSignal"] == "SIGTERM" and unit["Service"]["Restart"] == "on-failure"
    if "metrics_port" in ctx.params:
        assert ctx.params["metrics_port"] in {9300, 9301}, path


def _compose() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((INFRA / "compose.yaml").read_text())
    return found


def test_the_compose_file_runs_relay_projector_and_api_beside_kafka_and_postgres() -> None:
    services = _compose()["services"]
    assert {"kafka", "postgres", "ledger-relay", "ledger-projector", "ledger-api", "prometheus", "grafana"} <= set(services)
    ports = {}
    for name, service in services.items():
        if not name.startswith("ledger-"):
            assert "profiles" not in service or name in {"prometheus", "grafana"}
            continue
        assert service["profiles"] == ["ledger"]  # `up -d` alone still starts Kafka and PostgreSQL only
        ctx = _parses([str(word) for word in service["command"]])
        ports[name] = ctx.params.get("metrics_port") or ctx.params.get("port")
    env = dict(line.split("=", 1) for line in (INFRA / "ledger.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["LEDGER_KAFKA_BOOTSTRAP"] == "kafka:29092" and "INTERNAL://kafka:29092" in str(services["kafka"])

    scraped = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scraped for config in job["static_configs"] for t in config["targets"]}
    assert targets == {f"{name}:{port}" for name, port in ports.items() if name != "ledger-migrate"}


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    grafana = _compose()["services"]["grafana"]
    assert any(str(v).startswith("./grafana/ledger.json:") for v in grafana["volumes"])
    assert re.search(r"url: http://prometheus:9090", (INFRA / "grafana/provisioning/datasources/prometheus.yaml").read_text())
