"""The hostile-input battery, end to end: through `ledger ingest` and through `POST /commands`.

Written from the rules (DOMAIN.md "Commands", issue 11): every line of a file and every
command of a request gets its own accepted/duplicate/rejected, whatever its bytes; no
exit 70 and no 5xx; the valid commands around a bad one are applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ledger.api.app import create_app
from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.integration.test_api_lost_clients import serving
from tests.integration.util import child_env


def good(i: int) -> bytes:
    return json.dumps({"type": "define_competency", "competency_id": f"G{i}", "name": f"Good {i}",
                       "kind": "domain", "command_id": f"good-{i}"}).encode()


POISON: list[bytes] = [
    b"[" * 100_000 + b"]" * 100_000,                                        # nesting 100,000 deep
    b'{"type":"publish_course","course_id":"K","title":"t","provider":"p","duration_hours":' + b"9" * 5000
    + b',"competencies":[],"assessment":null}',                              # a 5,000-digit number
    b'{"type":"define_competency","competency_id":"\\ud800","name":"x","kind":"domain"}',  # lone surrogate in an id
    b'{"type":"define_competency","competency_id":"S1","name":"\\udfff","kind":"domain"}',  # ... in a name
    b'{"type":"define_competency","\\ud800":1,"competency_id":"S2","name":"x","kind":"domain"}',  # ... in a field name
    b"\xff\xfe\xfd not utf-8",                                               # invalid UTF-8
    b'{"type":"define_competency","competency_id":"N1","name":"a\\u0000b","kind":"domain"}',  # NUL in text
    b'{"type":"define_competency","competency_id":"N\x00","name":"x","kind":"domain"}',      # raw NUL byte
    b'\xef\xbb\xbf{"type":"define_competency","competency_id":"B1","name":"x","kind":"domain"}',  # BOM
    b'{"type":"define_competency","competency_id":"D1","competency_id":"D2","name":"x","kind":"domain"}',  # duplicate key
    b'{"type":"publish_course","course_id":"K2","title":"t","provider":"p","duration_hours":NaN,"competencies":[],"assessment":null}',
    b'{"type":"publish_course","course_id":"K3","title":"t","provider":"p","duration_hours":Infinity,"competencies":[],"assessment":null}',
    b'{"type":"define_competency","competency_id":"OFF-0000007\\n","name":"x","kind":"domain"}',  # trailing newline in an id
    b'{"type":"define_competency","competency_id":"T1","name":"' + b"x" * (20 << 20) + b'","kind":"domain"}',  # 20 MB line
    b"null", b"[]", b'"just a string"', b"{", b"\x00\x00\x00",
]


# Poison (by index) that makes a whole request body invalid JSON, so it cannot be split.
BODY_LEVEL = {0, 5, 7, 17, 18}


def test_a_file_mixing_good_and_hostile_lines_answers_each_and_applies_the_good(
    settings: Settings, tmp_path: Path
) -> None:
    lines: list[bytes] = []
    for i, poison in enumerate(POISON):
        lines += [good(i), poison]
    lines.append(good(len(POISON)) + b"\r")  # CRLF: the \r before \n is ignored
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    done = subprocess.run([sys.executable, "-m", "ledger.cli", "--store", settings.store, "ingest", "--json", str(path)],
                          capture_output=True, env=child_env(), timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]  # some rejected; never 70
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["line"] for a in answers] == list(range(1, len(lines) + 1))
    for a in answers:
        expected = "accepted" if a["line"] % 2 == 1 else "rejected"
        assert a["status"] == expected, a
        assert a["status"] == "accepted" or a["error"]
    stored = {e["competency_id"] for _, e in Ledger(settings).iter_log() if e["type"] == "CompetencyDefined"}
    assert stored == {f"G{i}" for i in range(len(POISON) + 1)}
    assert len(done.stdout) < 100_000  # no answer echoes a 20 MB line back


def test_concurrent_clients_some_sending_poison_all_valid_commands_land(settings: Settings) -> None:
    token = create_token(Database(settings), "feed", "ingest")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # A byte order mark before a whole body is allowed by RFC 8259 (the API ignores it,
    # so that body is a valid command); every other poison counts here.
    small_poison = [p for p in POISON if len(p) < 1 << 20 and not p.startswith(b"\xef\xbb\xbf")]

    def client(n: int) -> list[tuple[int, Any]]:
        results = []
        with httpx.Client(base_url=base, timeout=60) as http:
            for round_ in range(4):
                i = n * 10 + round_
                body = b"[" + good(1000 + i) + b"]"
                if n % 2:  # every other client mixes poison into its batches, or sends it alone
                    poison = small_poison[i % len(small_poison)]
                    body = b"[" + good(1000 + i) + b"," + poison + b"]" if round_ % 2 else poison
                response = http.post("/commands", content=body, headers=headers)
                results.append((response.status_code, response.json() if response.status_code == 200 else None))
        return results

    with serving(create_app(settings, project=False)) as base, ThreadPoolExecutor(16) as pool:
        everything = [r for rs in pool.map(client, range(16)) for r in rs]
    assert all(status < 500 for status, _ in everything), everything
    # A body that is not JSON as a whole (bad UTF-8, a raw control character, broken
    # syntax, nesting past the body's limit) cannot be split into commands: 4xx, nothing
    # applied. Any body that is JSON gets one answer per command.
    for n in range(16):
        for round_ in range(4):
            status, answers = everything[n * 4 + round_]
            mixed = n % 2 == 1 and round_ % 2 == 1
            if n % 2 == 0 or (mixed and POISON.index(small_poison[(n * 10 + round_) % len(small_poison)]) not in BODY_LEVEL):
                assert status == 200, (n, round_, status)
                assert answers[0]["status"] == "accepted" and all(a["status"] == "rejected" for a in answers[1:])
    stored = {e["competency_id"] for _, e in Ledger(settings).iter_log() if e["type"] == "CompetencyDefined"}
    sent_good = {f"G{1000 + n * 10 + r}" for n in range(16) for r in range(4) if everything[n * 4 + r][0] == 200
                 and (n % 2 == 0 or r % 2 == 1)}
    assert sent_good <= stored and len(sent_good) >= 40
    assert all(cid.startswith("G") for cid in stored), stored
