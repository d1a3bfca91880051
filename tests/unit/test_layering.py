"""Architecture rules, checked on the source with ast (nothing is imported):
the domain is pure (no transport, storage, logging or wall clock),
projections do not depend on gRPC, every package imports only the packages
it is allowed to (LAYERS), and no modules or packages import each other in
a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "ledger" / "domain"
PROJECTIONS = ROOT / "projections"

FORBIDDEN_IN_DOMAIN = (
    "grpc", "google.protobuf", "ledger.v1", "psycopg", "sqlite3", "eventsourcing",
    "structlog", "logging", "time",
)
# Calls that read the wall clock, by qualified name...
WALL_CLOCK = {
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today", "time.time",
}
# ...and, for names the module does not bind by import, by their tail.
WALL_CLOCK_TAILS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
                    ("date", "today"), ("time", "time")}


def modules(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def imported_modules(tree: ast.AST, path: Path) -> Iterator[tuple[int, str]]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from google import protobuf`, `from ledger import v1`
                yield node.lineno, f"{module}.{alias.name}"


def forbidden(module: str, prefixes: tuple[str, ...]) -> str | None:
    for prefix in prefixes:
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return None


def attribute_chain(node: ast.AST) -> tuple[str, ...] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return None


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


DOMAIN_MODULES = modules(DOMAIN)


def test_domain_modules_are_found() -> None:
    assert len(DOMAIN_MODULES) >= 10
    assert DOMAIN / "events.py" in DOMAIN_MODULES
    assert DOMAIN / "sla" / "api.py" in DOMAIN_MODULES


@pytest.mark.parametrize("path", DOMAIN_MODULES, ids=rel)
def test_domain_imports_no_infrastructure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [
        f"{rel(path)}:{line}: imports {module} ({prefix})"
        for line, module in imported_modules(tree, path)
        if (prefix := forbidden(module, FORBIDDEN_IN_DOMAIN))
    ]
    assert not bad, "\n".join(bad)


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> qualified name, for `import x as y` and `from x import y as z`."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def wall_clock_uses(tree: ast.AST) -> list[tuple[int, str]]:
    aliases = import_aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = attribute_chain(node)
            if chain is None:
                continue
            if chain[0] in aliases:
                qualified = ".".join((aliases[chain[0]], *chain[1:]))
                if qualified in WALL_CLOCK:
                    found.append((node.lineno, ".".join(chain)))
            elif any(len(chain) >= len(t) and chain[-len(t):] == t for t in WALL_CLOCK_TAILS):
                found.append((node.lineno, ".".join(chain)))
        elif isinstance(node, ast.ImportFrom) and node.module in ("datetime", "time"):
            for alias in node.names:  # the clock function imported bare
                if f"{node.module}.{alias.name}" in WALL_CLOCK:
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    return found


@pytest.mark.parametrize("path", DOMAIN_MODULES, ids=rel)
def test_domain_never_reads_the_wall_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{rel(path)}:{line}: {use}" for line, use in wall_clock_uses(tree)]
    assert not bad, "\n".join(bad)


PROJECTION_MODULES = modules(PROJECTIONS) if PROJECTIONS.is_dir() else []


@pytest.mark.skipif(not PROJECTION_MODULES, reason="projections/ has no .py files yet")
@pytest.mark.parametrize("path", PROJECTION_MODULES or [None], ids=lambda p: rel(p) if p else "none")
def test_projections_do_not_import_grpc(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [
        f"{rel(path)}:{line}: imports {module}"
        for line, module in imported_modules(tree, path)
        if forbidden(module, ("grpc", "ledger.grpc", "ledger.v1"))
    ]
    assert not bad, "\n".join(bad)


# -- the checker itself ---------------------------------------------------------

def _check_source(source: str, path: Path = DOMAIN / "x.py") -> list[str]:
    tree = ast.parse(source)
    found = [m for _, m in imported_modules(tree, path) if forbidden(m, FORBIDDEN_IN_DOMAIN)]
    return found + [use for _, use in wall_clock_uses(tree)]


@pytest.mark.parametrize("source", [
    "import grpc", "import grpc.aio as g", "from google.protobuf import timestamp_pb2",
    "from google import protobuf", "from ledger.v1 import events_pb2", "from ledger import v1",
    "from ..v1 import events_pb2", "import psycopg", "import sqlite3", "import logging",
    "from eventsourcing.persistence import StoredEvent", "import structlog", "import time",
    "from time import monotonic",
    "x = datetime.now()", "x = datetime.datetime.utcnow()", "x = date.today()",
    "import datetime as d\nx = d.datetime.now(tz)", "x = time.time()",
    "from datetime import datetime as dt\nx = dt.now()", "from datetime import date as D\nD.today()",
])
def test_checker_catches(source: str) -> None:
    assert _check_source(source)


@pytest.mark.parametrize("source", [
    "from datetime import UTC, datetime, timedelta", "import zoneinfo",
    "from ledger.domain import events", "from . import events", "x = datetime.fromisoformat(s)",
    "import timeit_free_name as timely", "from datetime import datetime\nx = datetime.fromtimestamp(0)",
    "from ledger.domain import instants as time_\nx = time_.now",
])
def test_checker_allows(source: str) -> None:
    assert not _check_source(source)


# -- packages and their allowed dependencies ------------------------------------
#
# Every module of ledger/ and projections/ (generated ledger/v1 aside) belongs
# to one unit below, the longest prefix that names it. A unit may import only
# itself and the units it lists; imports of third-party code are not checked
# here (the domain's are, above). See docs/architecture.md for the picture.

LAYERS: dict[str, set[str]] = {
    "ledger.domain": set(),
    "ledger.audit": {"ledger.domain"},
    "ledger.formats": {"ledger.domain"},
    "ledger.application": {"ledger.domain", "ledger.audit"},
    # Adapters implement the ports, so they see those (and nothing else of the application).
    "ledger.adapters": {"ledger.domain", "ledger.application.ports"},
    "projections": {"ledger.domain", "ledger.audit", "ledger.adapters"},
    "ledger.client": {"ledger.domain", "ledger.audit", "ledger.v1"},
    "ledger.grpc": {"ledger.domain", "ledger.audit", "ledger.application", "ledger.adapters",
                    "ledger.client", "ledger.v1"},
    # Metrics and logs: an interceptor on the transport's base, figures from the domain.
    "ledger.observability": {"ledger.domain", "ledger.grpc", "ledger.v1"},
    "ledger.web": {"ledger.domain", "ledger.application", "ledger.adapters", "ledger.grpc",
                   "ledger.formats", "ledger.client"},
    "ledger.server": {"ledger.domain", "ledger.audit", "ledger.application", "ledger.adapters",
                      "projections", "ledger.grpc", "ledger.observability", "ledger.web",
                      "ledger.client", "ledger.formats"},
    "ledger.cli": {"ledger.domain", "ledger.audit", "ledger.application", "ledger.adapters",
                   "projections", "ledger.grpc", "ledger.observability", "ledger.web",
                   "ledger.client", "ledger.formats", "ledger.server"},
    "ledger.demo": set(),
    "ledger": set(),  # the package's own __init__ (its version) and nothing else
}
GENERATED = "ledger.v1"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCE = {module_name(p): p for p in [*modules(ROOT / "ledger"), *PROJECTION_MODULES]
          if not module_name(p).startswith(GENERATED + ".")}


def unit_of(module: str) -> str | None:
    """The longest LAYERS key (or ledger.v1) that is the module or a package holding it."""
    names = [*LAYERS, GENERATED]
    found = [n for n in names if module == n or (n != "ledger" and module.startswith(n + "."))]
    return max(found, key=len) if found else None


def internal_imports(path: Path) -> set[tuple[int, str]]:
    """(line, module) of every import of a module of this code base. ``from
    pkg import mod`` imports both: it runs pkg/__init__.py first."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[tuple[int, str]] = set()
    for line, imported in imported_modules(tree, path):
        name = imported
        while name and name not in SOURCE and unit_of(name) != GENERATED:
            name = name.rpartition(".")[0]  # an imported function or class: its module
        if name:
            out.add((line, name))
    return out


def import_graph() -> dict[str, set[str]]:
    return {name: {m for _, m in internal_imports(path) if m != name}
            for name, path in SOURCE.items()}


def allowed(importer: str, imported: str) -> bool:
    source, target = unit_of(importer), unit_of(imported)
    if target in (source, "ledger"):  # the root package holds only the version
        return True
    assert source is not None
    return any(imported == a or imported.startswith(a + ".") for a in LAYERS[source])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_belongs_to_a_known_package() -> None:
    assert {"ledger.domain.events", "ledger.application.ports", "ledger.cli.main",
            "projections.runner"} <= set(SOURCE)
    assert [m for m in SOURCE if unit_of(m) is None] == []


@pytest.mark.parametrize("name", sorted(SOURCE))
def test_imports_stay_within_the_allowed_packages(name: str) -> None:
    bad = [f"{rel(SOURCE[name])}:{line}: {unit_of(name)} imports {module}"
           for line, module in sorted(internal_imports(SOURCE[name]))
           if module != name and not allowed(name, module)]
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_modules() -> None:
    assert cycles(import_graph()) == []


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported in import_graph().items():
        source = unit_of(importer)
        assert source is not None
        graph.setdefault(source, set()).update(
            target for m in imported if (target := unit_of(m)) not in (None, source))
    assert cycles(graph) == []


def test_the_rules_catch_what_they_should() -> None:
    assert unit_of("ledger.application.ports") == "ledger.application"
    assert unit_of("ledger.formats") == "ledger.formats"
    assert unit_of("ledger.stray") is None
    assert allowed("ledger.adapters.eventstore", "ledger.application.ports")
    assert not allowed("ledger.adapters.eventstore", "ledger.application.reports")
    assert not allowed("ledger.application.reports", "projections.runner")
    assert not allowed("ledger.domain.events", "ledger.application.ports")
    assert not allowed("ledger.client.x", "ledger.application.ports")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
