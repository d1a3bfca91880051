"""The worked Hertfordshire scenario and the report it must produce, resolved
inside this repository (the demo's own copy of the scenario and the expected
output kept under tests/data, so no test depends on a path outside the
checkout or skips when one is missing), and how answers are compared with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "ledger" / "demo" / "herts-2026-10.json"
EXPECTED = REPO / "tests" / "data" / "herts-2026-10.expected.json"


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Every expected field must be present and equal (extra fields are allowed)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}{key} missing"
            assert_same(actual[key], value, f"{path}{key}.")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}{i}.")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def without_position(doc: dict[str, Any]) -> dict[str, Any]:
    # The ledger also stores the agreement's registration, so its positions are
    # those of the file's events shifted (the scenario's as_recorded_at counts
    # file events); both fields are checked separately against ledger positions.
    return {k: v for k, v in doc.items() if k not in ("recorded_position", "as_recorded_at")}
