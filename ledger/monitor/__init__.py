"""Monitoring: health, positions and lag of the relay and each projection (ledger status), and the Prometheus collector that serves them."""
