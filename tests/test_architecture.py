"""The import graph: dependencies point down only.

domain <- application (write service) <- projections / consumers / relay <- audit <- api / cli

Every ``import`` counts, also inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ledger"

# What the pure domain may use: the standard library without I/O, and the library's
# domain module. No database, broker, network, files, environment or clock source.
DOMAIN_ALLOWED = {"__future__", "collections", "dataclasses", "datetime", "decimal", "enum", "functools",
                  "itertools", "math", "re", "typing", "uuid", "eventsourcing.domain", "ledger.domain"}
IO_MODULES = {"os", "sys", "io", "socket", "sqlite3", "subprocess", "pathlib", "shutil", "psycopg",
              "kafka", "fastavro", "httpx", "fastapi", "uvicorn", "click", "rich", "threading", "asyncio"}

WRITE_SIDE = {"ledger.write.application", "ledger.write.unit", "ledger.write.handlers", "ledger.write.commands", "ledger.integrity.crypto",
              "ledger.store.receipts", "ledger.events", "ledger.config"}
UPPER = ("ledger.projections", "ledger.consumers", "ledger.kafka.relay", "ledger.kafka.relay_pages", "ledger.audit", "ledger.api", "ledger.cli",
         "ledger.console", "ledger.readmodels", "ledger.status", "ledger.kafka.broker", "ledger.generate",
         "ledger.credentials")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and every module it imports (absolute names)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative imports hide the graph; write them in full"
                if node.module == "ledger":
                    found.update(f"ledger.{alias.name}" for alias in node.names)
                elif node.module:
                    found.add(node.module)
        graph[name] = found
    return graph


def _within(module: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


GRAPH = _imports()


def test_the_graph_was_read() -> None:
    assert {"ledger.domain.officer", "ledger.write.application", "ledger.projections.runner", "ledger.api.app"} <= set(GRAPH)
    assert "ledger.domain.ids" in GRAPH["ledger.domain.officer"]


def test_the_domain_imports_no_io_and_nothing_above_it() -> None:
    stdlib = set(sys.stdlib_module_names)
    for module, imports in GRAPH.items():
        if not _within(module, ("ledger.domain",)):
            continue
        for imported in imports:
            top = imported.split(".")[0]
            assert top not in IO_MODULES, (module, imported)
            assert _within(imported, DOMAIN_ALLOWED) or (top in stdlib and top not in IO_MODULES), (module, imported)


def test_the_write_side_imports_no_reader_consumer_or_interface() -> None:
    for module in WRITE_SIDE:
        offending = {i for i in GRAPH[module] if _within(i, UPPER)}
        assert offending == set(), (module, offending)


def test_projections_import_no_consumer_relay_api_or_cli() -> None:
    for module, imports in GRAPH.items():
        if _within(module, ("ledger.projections",)):
            offending = {i for i in imports if _within(i, ("ledger.consumers", "ledger.kafka.relay", "ledger.kafka.relay_pages", "ledger.api",
                                                           "ledger.cli", "ledger.audit", "ledger.status"))}
            assert offending == set(), (module, offending)


def test_consumers_and_relay_import_no_api_or_cli() -> None:
    for module, imports in GRAPH.items():
        if _within(module, ("ledger.consumers", "ledger.kafka.relay", "ledger.kafka.relay_pages", "ledger.kafka.client", "ledger.status", "ledger.audit",
                            "ledger.credentials")):
            offending = {i for i in imports if _within(i, ("ledger.api", "ledger.cli"))}
            assert offending == set(), (module, offending)


def test_only_the_cli_imports_the_cli_and_only_interfaces_import_the_api() -> None:
    for module, imports in GRAPH.items():
        if not _within(module, ("ledger.cli",)):
            assert not any(_within(i, ("ledger.cli",)) for i in imports), module
        if not _within(module, ("ledger.cli", "ledger.api", "ledger.console")):
            assert not any(_within(i, ("ledger.api",)) for i in imports), module
        if not _within(module, ("ledger.api", "ledger.console")):  # the console is served by the API only
            assert not any(_within(i, ("ledger.console",)) for i in imports), module


def test_no_module_is_longer_than_one_sitting() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
