"""Modules stay small and single-purpose: no Python module in the repository
passes 400 lines, tests and benchmarks included. The generated protobuf code
(ledger/v1) is exempt: tools/gen-proto writes it and CI checks it for drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400
GENERATED = ROOT / "ledger" / "v1"
# environments, caches and build output, not the project's code
SKIPPED = {"build", "dist", "node_modules", "__pycache__"}


def modules() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(p.startswith(".") or p in SKIPPED or p.endswith(".egg-info") for p in parts):
            continue
        if path.is_relative_to(GENERATED):
            continue
        yield path


def test_the_walk_sees_the_packages() -> None:
    seen = {path.relative_to(ROOT).parts[0] for path in modules()}
    assert {"ledger", "projections", "tests", "bench"} <= seen


def test_no_module_passes_400_lines() -> None:
    lengths = {path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for path in modules()}
    too_long = {name: n for name, n in lengths.items() if n > LIMIT}
    assert not too_long, f"modules over {LIMIT} lines (split them along their seams): {too_long}"
