"""Benchmark of portable credentials: `ledger credentials export` for a generated population.

Builds a SQLite store of ``ledger generate --officers N --seed 1`` (10,000 officers;
300 with ``--quick``), then times the full export (read the events, build, canonicalise
with RDFC-1.0, sign) into a null sink, beside two baselines measured in the same run:
the bare Ed25519 signing rate of the same key over 64-byte messages, and the rate of
canonicalising alone. Writes ``bench/credentials-results.json`` (or ``-quick``) and
prints a table.

    python bench/credentials_bench.py [--quick] [--officers N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.config import Settings  # noqa: E402
from ledger.credentials import proof  # noqa: E402
from ledger.credentials.issue import CredentialIssuer, json_line  # noqa: E402
from ledger.credentials.issuer import for_settings  # noqa: E402
from ledger.generate import generate_lines  # noqa: E402
from ledger.write.application import Ledger  # noqa: E402


def signing_baseline(issuer: CredentialIssuer, seconds: float = 2.0) -> float:
    """Bare Ed25519 signatures per second (the data eddsa-rdfc-2022 signs is 64 bytes)."""
    key, message, count = issuer.issuer.private, bytes(range(64)), 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            key.sign(message)
        count += 200
    return count / (time.perf_counter() - start)


def canonicalise_rate(credentials: list[dict[str, Any]]) -> float:
    """Credentials per second for the two canonicalisations alone (no signing, no store)."""
    start = time.perf_counter()
    for credential in credentials:
        proof.hashes(credential, credential["proof"])
    return len(credentials) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--officers", type=int)
    args = parser.parse_args()
    officers = args.officers or (300 if args.quick else 10_000)
    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-credentials-"))
    settings = Settings(store=f"sqlite:///{folder / 'bench.db'}", issuer_key=str(folder / "issuer.pem"))
    ledger = Ledger(settings)
    start = time.perf_counter()
    list(ledger.ingest(generate_lines(officers, seed=1), batch_size=1000))
    print(f"ingested {officers:,} officers in {time.perf_counter() - start:.0f} s", flush=True)

    issuer = CredentialIssuer(ledger, for_settings(settings))
    counts = {"AchievementCredential": 0, "ClrCredential": 0}
    total_bytes = 0
    sample: list[dict[str, Any]] = []
    start = time.perf_counter()
    for credential in issuer.export():
        counts[credential["type"][1]] += 1
        total_bytes += len(json_line(credential).encode()) + 1
        if len(sample) < 500 and credential["type"][1] == "AchievementCredential":
            sample.append(credential)
    elapsed = time.perf_counter() - start
    total = sum(counts.values())
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "officers": officers,
        "credentials": counts,
        "seconds": round(elapsed, 1),
        "credentials_per_s": round(total / elapsed, 1),
        "officers_per_s": round(counts["ClrCredential"] / elapsed, 1),
        "mb_written": round(total_bytes / 1e6, 1),
        "achievement_canonicalise_per_s": round(canonicalise_rate(sample), 1),
        "ed25519_signatures_per_s": round(signing_baseline(issuer)),
    }
    name = "credentials-results-quick.json" if args.quick else "credentials-results.json"
    (ROOT / "bench" / name).write_text(json.dumps(results, indent=2) + "\n")
    r = results
    print(f"""
| what | rate | baseline |
|---|---|---|
| `ledger credentials export`, {officers:,} officers ({total:,} credentials, {r['mb_written']} MB) | {r['credentials_per_s']:,} credentials/s, {r['officers_per_s']:,} officers with a CLR/s ({r['seconds']:,} s) | {r['ed25519_signatures_per_s']:,} bare Ed25519 signatures/s |
| canonicalising an AchievementCredential (RDFC-1.0 in pyld, document + proof options) | {r['achievement_canonicalise_per_s']:,}/s | — |
""")


if __name__ == "__main__":
    main()
