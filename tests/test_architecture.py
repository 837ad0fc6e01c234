"""The import graph: dependencies point down only, and no module imports itself round a cycle.

Layers, lowest first (a layer may import itself and the layers below it, never above):

    domain <- config, events, ops, integrity <- store <- write <- projections
           <- kafka, consumers, credentials, xapi <- monitor, read, generate <- api, console <- cli

Every ``import`` counts for the layers, also inside functions: a lazy import is still a
dependency. For cycles, what runs counts: imports under ``if TYPE_CHECKING:`` do not.
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

LAYERS: list[tuple[str, ...]] = [
    ("ledger.domain",),
    ("ledger.config", "ledger.events", "ledger.ops", "ledger.integrity"),
    ("ledger.store",),
    ("ledger.write",),
    ("ledger.projections",),
    ("ledger.kafka", "ledger.consumers", "ledger.credentials", "ledger.xapi"),
    ("ledger.monitor", "ledger.read", "ledger.generate"),
    ("ledger.api", "ledger.console"),
    ("ledger.cli",),
]

WRITE_SIDE = {"ledger.write.application", "ledger.write.unit", "ledger.write.handlers", "ledger.write.commands",
              "ledger.integrity.crypto", "ledger.store.receipts", "ledger.events", "ledger.config"}
UPPER = ("ledger.projections", "ledger.consumers", "ledger.kafka.relay", "ledger.kafka.relay_pages", "ledger.read",
         "ledger.api", "ledger.cli", "ledger.console", "ledger.monitor", "ledger.kafka.broker", "ledger.generate",
         "ledger.credentials")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of import nodes under ``if TYPE_CHECKING:`` (never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _read_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Every module of the package and every module it imports (absolute names): all of
    them, and those imported at run time (a name imported from a package is the
    submodule when there is one)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    runtime: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        found: set[str] = set()
        running: set[str] = set()
        for node in ast.walk(tree):
            names: set[str] = set()
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative imports hide the graph; write them in full"
                if node.module:
                    subs = {f"{node.module}.{alias.name}" for alias in node.names}
                    names = {s for s in subs if s in modules} or {node.module}
            found |= names
            if id(node) not in skipped:
                running |= {n for n in names if n in modules}
        graph[name] = found
        runtime[name] = running
    return graph, runtime


def _within(module: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


GRAPH, RUNTIME = _read_graph()


def _layer(module: str) -> int | None:
    for level, prefixes in enumerate(LAYERS):
        if _within(module, prefixes):
            return level
    return None


def test_every_module_has_a_layer() -> None:
    assert {m for m in GRAPH if m != "ledger" and _layer(m) is None} == set()


def test_no_layer_imports_one_above_it() -> None:
    upward = []
    for module, imports in GRAPH.items():
        mine = _layer(module)
        for imported in imports:
            theirs = _layer(imported)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} ({LAYERS[mine][0]}) imports {imported} ({LAYERS[theirs][0]})")
    assert upward == []


def _cycle_from(start: str) -> list[str] | None:
    """A path of run-time imports from ``start`` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, path = stack.pop()
        for imported in RUNTIME.get(module, set()):
            if imported == start:
                return [*path, start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return None


def test_no_runtime_import_cycle() -> None:
    cycles = [" -> ".join(c) for m in sorted(RUNTIME) if (c := _cycle_from(m)) is not None]
    assert cycles == []


def test_the_cycle_check_finds_a_cycle() -> None:
    RUNTIME["ledger.fake_a"] = {"ledger.fake_b"}
    RUNTIME["ledger.fake_b"] = {"ledger.fake_a"}
    try:
        assert _cycle_from("ledger.fake_a") == ["ledger.fake_a", "ledger.fake_b", "ledger.fake_a"]
    finally:
        del RUNTIME["ledger.fake_a"], RUNTIME["ledger.fake_b"]


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
                                                           "ledger.cli", "ledger.read.audit", "ledger.monitor.status"))}
            assert offending == set(), (module, offending)


def test_consumers_and_relay_import_no_api_or_cli() -> None:
    for module, imports in GRAPH.items():
        if _within(module, ("ledger.consumers", "ledger.kafka.relay", "ledger.kafka.relay_pages", "ledger.kafka.client", "ledger.monitor.status", "ledger.read.audit",
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
