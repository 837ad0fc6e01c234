"""The schemas ship inside the package: a wheel install encodes and decodes on its own.

``ledger/kafka/schemas/`` is package data (read through ``importlib.resources``); the
top-level ``schemas/`` is the same tree published for subscribers. One test keeps the
two identical; the other builds a wheel, installs it into a fresh virtualenv and runs a
round trip there, far from the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.events import OFFICER_EVENTS, REFERENCE_EVENTS
from ledger.generate import generate_lines
from ledger.kafka.codec import Codec
from ledger.write.application import Ledger
from tests.helpers import correct_and_retract

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "schemas"
PACKAGED = REPO / "ledger" / "kafka" / "schemas"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative POSIX path, with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_packaged_schemas_are_the_published_schemas() -> None:
    published, packaged = tree(PUBLISHED), tree(PACKAGED)
    assert published, f"no files in {PUBLISHED}"
    only_published = sorted(set(published) - set(packaged))
    only_packaged = sorted(set(packaged) - set(published))
    differ = sorted(n for n in set(published) & set(packaged) if published[n] != packaged[n])
    assert not (only_published or only_packaged or differ), (
        "schemas/ (published contract) and ledger/kafka/schemas/ (package data) must be identical; "
        f"only in schemas/: {only_published}; only in ledger/kafka/schemas/: {only_packaged}; "
        f"different bytes: {differ}"
    )


# Runs inside the fresh virtualenv, with isolated mode (-I): neither the working
# directory nor PYTHONPATH is on sys.path, so ``ledger`` can only be the installed one.
ROUND_TRIP = """
import json, sys
import ledger
from ledger.kafka.codec import SCHEMAS, default_codec
from ledger.kafka.compat import check_full_transitive

events = json.loads(sys.stdin.read())
codec = default_codec()
messages = [codec.encode(event) for event in events]
print(json.dumps({
    "ledger_file": ledger.__file__,
    "schemas": str(SCHEMAS),
    "current": sorted(codec.current),
    "writers": len(codec.writers),
    "messages": [m.hex() for m in messages],
    "decoded": [codec.decode(m) for m in messages],
    "compat_problems": check_full_transitive(),
}))
"""


def run(
    args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=cwd, env=env, input=stdin)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def one_event_of_each_type(tmp_path: Path) -> list[dict[str, object]]:
    ledger = Ledger(Settings(store=f"sqlite:///{tmp_path / 'l.db'}"))
    list(ledger.ingest(generate_lines(30, seed=5)))
    ledger.erase("OFF-0000001", reason="test")
    correct_and_retract(ledger, "OFF-0000003")
    seen: dict[str, dict[str, object]] = {}
    for _, event in ledger.iter_log():
        seen.setdefault(event["type"], event)
    assert set(seen) == set(OFFICER_EVENTS) | set(REFERENCE_EVENTS)
    return [seen[name] for name in sorted(seen)]


@pytest.mark.slow
def test_a_wheel_install_encodes_and_decodes_without_the_source_tree(tmp_path: Path) -> None:
    # Build from a clean copy: no stale build/ directory can supply files the
    # package-data configuration forgot, and the working tree is left alone.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "ledger", src / "ledger", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(dist)])
    (wheel,) = dist.glob("learning_record_ledger-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {f"ledger/kafka/schemas/{name}" for name in tree(PUBLISHED)}
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"

    # A fresh virtualenv with only the wheel in it. Third-party dependencies come from
    # this test's environment through a .pth file, placed after the venv's own
    # site-packages (and, unlike PYTHONPATH, kept under -I); the editable install's
    # finder there is not activated, since .pth files on a plain path entry are not run.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    purelib = run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib.stdout.strip()) / "zz_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")

    events = one_event_of_each_type(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LEDGER_"))}
    done = run([str(python), "-I", "-c", ROUND_TRIP], stdin=json.dumps(events), cwd=elsewhere, env=env)
    result = json.loads(done.stdout)

    installed = Path(result["ledger_file"]).resolve()
    assert installed.is_relative_to(venv.resolve()), f"imported ledger from {installed}, not the wheel"
    assert Path(result["schemas"]).resolve().is_relative_to(venv.resolve())
    assert result["current"] == sorted(p.stem for p in PUBLISHED.glob("*.avsc"))
    assert result["writers"] == len(Codec().writers)
    assert result["compat_problems"] == []
    assert result["decoded"] == events
    # And the installed codec's bytes are the source tree's bytes.
    source = Codec()
    for hexed, event in zip(result["messages"], events, strict=True):
        assert bytes.fromhex(hexed)[:2] == b"\xc3\x01"
        assert bytes.fromhex(hexed) == source.encode(event)
