#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster if it is not answering (Debian layout).
set -euo pipefail
if pg_isready -h 127.0.0.1 -p 5432 -q; then echo "PostgreSQL is up"; exit 0; fi
pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && exit 0; sleep 1; done
echo "PostgreSQL did not come up" >&2; exit 1
