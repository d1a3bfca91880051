"""Architecture rules, checked on the source with ast (nothing is imported):
the domain is pure (no transport, storage, logging or wall clock), and
projections do not depend on gRPC.
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
