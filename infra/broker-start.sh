#!/usr/bin/env bash
# Run the bundled Tansu broker in the foreground on PORT (default 9092), memory only.
set -euo pipefail
cd "$(dirname "$0")/.."
make install >/dev/null
exec .venv/bin/ledger broker --port "${1:-9092}"
