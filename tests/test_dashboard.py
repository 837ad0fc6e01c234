"""The Grafana dashboard queries only metrics the ledger exports, and covers what ops watch."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ledger.monitor.collector import STATUS_METRICS
from ledger.ops import metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "infra" / "grafana" / "ledger.json"

FUNCTIONS = {"rate", "irate", "increase", "histogram_quantile", "time", "max", "min", "sum", "avg", "count",
             "abs", "clamp_min", "topk", "delta", "deriv", "max_over_time", "min_over_time", "avg_over_time"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exported() -> set[str]:
    return metrics.names() | STATUS_METRICS


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects; raises on an unknown function or keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    found = set()
    for match in IDENTIFIER.finditer(text):
        word = match.group()
        rest = text[match.end():].lstrip()
        if rest.startswith("("):
            assert word in FUNCTIONS, f"unknown function {word!r} in {expr!r}"
        elif word not in KEYWORDS:
            found.add(word)
    return found


def _targets(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for panel in panels:
        found += [(panel["title"], t["expr"]) for t in panel.get("targets", [])]
        found += _targets(panel.get("panels", []))
    return found


def test_every_query_of_the_dashboard_names_only_metrics_the_ledger_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    targets = _targets(dashboard["panels"])
    assert len(targets) >= 20
    known = exported()
    used: set[str] = set()
    for title, expr in targets:
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= known, (title, names - known)
        used |= names
    # What the issue asks the dashboard to show.
    for needed in ("ledger_projection_lag_events", "ledger_projection_lag_seconds", "ledger_events_written_total",
                   "ledger_dead_letters", "ledger_http_request_duration_seconds_bucket",
                   "ledger_projection_partition_lag_events", "ledger_group_commit_wait_seconds_bucket"):
        assert needed in used, needed


def test_the_check_catches_a_metric_that_is_not_exported() -> None:
    assert metric_names('sum by (le) (rate(ledger_http_request_duration_seconds_bucket{route="/x"}[5m]))') == {
        "ledger_http_request_duration_seconds_bucket"}
    assert metric_names("time() - max(ledger_relay_last_processed_timestamp_seconds)") == {
        "ledger_relay_last_processed_timestamp_seconds"}
    assert "ledger_projection_lag" not in exported()  # a misspelling is not an exported name
    assert metric_names("max(ledger_projection_lag)") - exported() == {"ledger_projection_lag"}


def test_exported_names_follow_the_conventions() -> None:
    families = [f for f in metrics.REGISTRY.collect() if f.name.startswith("ledger_")]
    histograms = {f.name for f in families if f.type == "histogram"}
    assert histograms and all(h.endswith("_seconds") or "_batch_" in h for h in histograms), histograms
    assert all(f"{f.name}_total" in exported() for f in families if f.type == "counter")
    assert not any(name.endswith("_total") for name in STATUS_METRICS)  # gauges
    assert all(name.startswith("ledger_") for name in STATUS_METRICS)
