"""Serving the metrics: positions and lags from ``ledger status``, plus the process's counters.

The gauges of positions, lag and dead letters are computed when Prometheus scrapes,
by ``ledger.monitor.status.collect`` itself, so ``/metrics`` and ``ledger status`` always
agree and the relay and consumers pay nothing for them per event. A scrape reuses a
report younger than ``min_interval`` seconds, so a flood of scrapes cannot become a
flood of database queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ledger.config import Settings
from ledger.domain.values import parse_instant
from ledger.ops.metrics import REGISTRY, UP

log = logging.getLogger("ledger.ops.metrics")

# Every series the status collector exports (the dashboard test checks queries against these).
STATUS_METRICS = {
    "ledger_status_ok", "ledger_store_up", "ledger_store_events", "ledger_broker_up",
    "ledger_relay_position", "ledger_relay_lag_events", "ledger_relay_lag_seconds",
    "ledger_relay_last_processed_timestamp_seconds",
    "ledger_projection_position", "ledger_projection_lag_events", "ledger_projection_lag_seconds",
    "ledger_projection_last_processed_timestamp_seconds",
    "ledger_projection_partition_position", "ledger_projection_partition_lag_events",
    "ledger_dead_letters",
}


def _timestamp(value: Any) -> float | None:
    if not value:
        return None
    at: datetime = parse_instant(str(value))
    return at.timestamp()


class CachedStatus:
    """The status report, computed at most once every ``min_interval`` seconds however many ask.

    Callers that ask while it is being computed wait for that computation and share it.
    With ``fallback``, a failing store gives ``{"ok": False, "store": {"ok": False}}``
    (a scrape must answer); without, the error is raised to the caller.
    """

    def __init__(self, ledger: Any, settings: Settings, min_interval: float = 1.0, fallback: bool = False,
                 **options: Any) -> None:
        self.ledger = ledger
        self.settings = settings
        self.min_interval = min_interval
        self.fallback = fallback
        self.options = options
        self.computed = 0  # how many reports were computed (for tests)
        self._lock = threading.Lock()
        self._report: dict[str, Any] | None = None
        self._at = 0.0

    def report(self) -> dict[str, Any]:
        from ledger.monitor.status import collect

        with self._lock:
            if self._report is None or time.monotonic() - self._at >= self.min_interval:
                try:
                    report = collect(self.ledger, self.settings, **self.options)
                except Exception as exc:
                    if not self.fallback:
                        raise
                    log.warning("status for metrics failed (%s)", type(exc).__name__)
                    report = {"ok": False, "store": {"ok": False}}
                self._report, self._at = report, time.monotonic()
                self.computed += 1
            return self._report


class StatusCollector(Collector):
    """Turns the status report into gauges: relay and/or projections, as this process runs them."""

    def __init__(self, ledger: Any, settings: Settings, relay: bool = True, projections: bool = True,
                 min_interval: float = 1.0) -> None:
        self.relay = relay
        self.projections = projections
        self.status = CachedStatus(ledger, settings, min_interval, fallback=True, stuck_after=3600)

    def report(self) -> dict[str, Any]:
        """The status report, reused for ``min_interval`` seconds."""
        return self.status.report()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # collected on scrape only: registering must not query the store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self.report()
        store = report.get("store", {})
        yield GaugeMetricFamily("ledger_status_ok", "1 when `ledger status` reports no problem.",
                                value=1.0 if report.get("ok") else 0.0)
        yield GaugeMetricFamily("ledger_store_up", "1 when the event store answers.", value=1.0 if store.get("ok") else 0.0)
        if not store.get("ok"):
            return
        yield GaugeMetricFamily("ledger_store_events", "Newest notification position in the store.",
                                value=float(store.get("events") or 0))
        if "broker" in report:
            yield GaugeMetricFamily("ledger_broker_up", "1 when the Kafka broker answers.",
                                    value=1.0 if report["broker"].get("ok") else 0.0)
        if self.relay and "relay" in report:
            yield from self._relay(report["relay"])
        if self.projections:
            yield from self._projections(report.get("projections", {}))
            yield GaugeMetricFamily("ledger_dead_letters", "Rows in the dead-letter table.",
                                    value=float(report.get("dead_letters", 0)))

    @staticmethod
    def _relay(entry: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("ledger_relay_position", "Last store position the relay published.",
                                value=float(entry["position"]))
        yield GaugeMetricFamily("ledger_relay_lag_events", "Events stored but not yet published.",
                                value=float(entry["lag_events"]))
        yield GaugeMetricFamily("ledger_relay_lag_seconds", "How far behind the newest event the relay is, in seconds.",
                                value=float(entry["lag_seconds"]))
        at = _timestamp(entry.get("last_processed_at"))
        if at is not None:
            yield GaugeMetricFamily("ledger_relay_last_processed_timestamp_seconds",
                                    "When the relay last saved its position.", value=at)

    @staticmethod
    def _projections(entries: dict[str, dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
        position = GaugeMetricFamily("ledger_projection_position",
                                     "Projection position: store position (embedded) or sum of partition offsets (Kafka).",
                                     labels=["projection"])
        lag = GaugeMetricFamily("ledger_projection_lag_events", "Events not yet applied, by projection.",
                                labels=["projection"])
        seconds = GaugeMetricFamily("ledger_projection_lag_seconds",
                                    "How far behind the newest event, in seconds (absent where unknown).",
                                    labels=["projection"])
        last = GaugeMetricFamily("ledger_projection_last_processed_timestamp_seconds",
                                 "When the projection last committed a batch.", labels=["projection"])
        part_position = GaugeMetricFamily("ledger_projection_partition_position",
                                          "Next offset to apply, by projection, topic and partition (Kafka mode).",
                                          labels=["projection", "topic", "partition"])
        part_lag = GaugeMetricFamily("ledger_projection_partition_lag_events",
                                     "Messages acknowledged to the relay and not yet applied, by partition.",
                                     labels=["projection", "topic", "partition"])
        for name, entry in sorted(entries.items()):
            position.add_metric([name], float(entry["position"]))
            if entry.get("lag_events") is not None:
                lag.add_metric([name], float(entry["lag_events"]))
            if entry.get("lag_seconds") is not None:
                seconds.add_metric([name], float(entry["lag_seconds"]))
            at = _timestamp(entry.get("last_processed_at"))
            if at is not None:
                last.add_metric([name], at)
            for part in entry.get("partitions", []):
                labels = [name, part["topic"], str(part["partition"])]
                part_position.add_metric(labels, float(part["position"]))
                if part.get("lag_events") is not None:
                    part_lag.add_metric(labels, float(part["lag_events"]))
        yield from (position, lag, seconds, last, part_position, part_lag)


def export_status(ledger: Any, settings: Settings, component: str, relay: bool = True,
                  projections: bool = True) -> StatusCollector:
    """Register the status gauges for this process (once) and name its component."""
    collector = StatusCollector(ledger, settings, relay=relay, projections=projections)
    REGISTRY.register(collector)
    UP.labels(component).set(1)
    return collector


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` of this process's registry on ``host:port`` (a daemon thread)."""
    start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics on http://%s:%d/metrics", host, port)
