"""Schema evolution checks: can data written with one schema be read with another?

Two independent checks, both must pass: the Avro resolution rules applied to the
schema structure, and a trial that writes generated data with the writer schema and
reads it back with the reader schema through fastavro.

The schema tree defaults to the one packaged with the ledger (``ledger/kafka/schemas/``,
read through :mod:`importlib.resources`); any directory laid out the same way, such as
the repository's published ``schemas/``, can be checked instead.
"""

from __future__ import annotations

import io
import json
from importlib.resources.abc import Traversable
from typing import Any

import fastavro
from fastavro.utils import generate_many

from ledger.kafka.codec import SCHEMAS, current_schema_files, history_schema_files

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"]) if schema["type"] in ("record", "enum", "array", "map", "fixed") else _kind(schema["type"])
    return str(schema)


def structural_problems(writer: Any, reader: Any, path: str = "") -> list[str]:
    """Reasons data written with ``writer`` cannot be resolved to ``reader`` (empty if it can)."""
    wk, rk = _kind(writer), _kind(reader)
    if wk == "union":
        return [p for branch in writer for p in structural_problems(branch, reader, path)]
    if rk == "union":
        for branch in reader:
            if not structural_problems(writer, branch, path):
                return []
        return [f"{path or '<root>'}: writer type {wk} matches no branch of the reader's union"]
    if wk != rk and rk not in _PROMOTIONS.get(wk, {wk}):
        return [f"{path or '<root>'}: writer type {wk} cannot be read as {rk}"]
    if rk == "record":
        problems = []
        written = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            source = next((written[n] for n in names if n in written), None)
            where = f"{path}.{field['name']}" if path else field["name"]
            if source is None:
                if "default" not in field:
                    problems.append(f"{where}: reader field has no default and the writer lacks it")
                continue
            problems += structural_problems(source["type"], field["type"], where)
        return problems
    if rk == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            return [f"{path}: reader enum lacks symbols {sorted(missing)}"]
    if rk == "array":
        return structural_problems(writer["items"], reader["items"], f"{path}[]")
    if rk == "map":
        return structural_problems(writer["values"], reader["values"], f"{path}{{}}")
    return []


def trial_problems(writer: Any, reader: Any, samples: int = 25) -> list[str]:
    """Write generated records with ``writer``, read them with ``reader``."""
    w, r = fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    for record in generate_many(w, samples):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, w, record)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, w, r)
        except Exception as exc:
            return [f"trial read failed: {type(exc).__name__}: {exc}"]
    return []


def problems(writer: Any, reader: Any) -> list[str]:
    """Every reason the pair is not compatible in this direction."""
    return structural_problems(writer, reader) + trial_problems(writer, reader)


def versions(schema_dir: Traversable, name: str) -> list[tuple[str, Any]]:
    """Every published version of a schema, oldest first, then the current file."""
    out = [
        (f"history/{name}/{p.name}", json.loads(p.read_text(encoding="utf-8")))
        for p in history_schema_files(schema_dir, name)
    ]
    current = schema_dir / f"{name}.avsc"
    out.append((f"{name}.avsc", json.loads(current.read_text(encoding="utf-8"))))
    return out


def check_full_transitive(schema_dir: Traversable = SCHEMAS) -> list[str]:
    """Each version of each schema must read, and be read by, every other version."""
    found = []
    for name, _ in current_schema_files(schema_dir):
        all_versions = versions(schema_dir, name)
        for wname, writer in all_versions:
            for rname, reader in all_versions:
                if wname != rname:
                    found += [f"{wname} -> {rname}: {p}" for p in problems(writer, reader)]
    return found
