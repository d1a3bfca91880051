"""Scenario files (../shared/spec/scenario-format.md): JSON or YAML.

Parsing keeps each event's file index and JSON line so errors point at them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.domain.errors import InvalidArgument


@dataclass
class Scenario:
    path: str
    organisations: list[dict[str, Any]] = field(default_factory=list)
    agreements: list[dict[str, Any]] = field(default_factory=list)
    amendments: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    event_lines: list[int] = field(default_factory=list)


def _event_lines(text: str, count: int) -> list[int]:
    """Best-effort line numbers of each event object (for error messages)."""
    lines: list[int] = []
    marker = '"event_id"'
    for number, line in enumerate(text.splitlines(), start=1):
        if marker in line or line.lstrip().startswith("- event_id") or line.lstrip().startswith("event_id:"):
            lines.append(number)
    return lines if len(lines) == count else [0] * count


def read_scenario(path: str | Path) -> Scenario:
    text = Path(path).read_text(encoding="utf-8")
    data: Any
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{path}:{exc.lineno}", f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(str(path), "a scenario is one JSON/YAML object")
    for key in ("organisations", "agreements", "amendments", "events", "reports"):
        if not isinstance(data.get(key, []), list):
            raise InvalidArgument(f"{path}:{key}", "must be a list")
    events = data.get("events", [])
    return Scenario(
        path=str(path), organisations=data.get("organisations", []),
        agreements=data.get("agreements", []), amendments=data.get("amendments", []),
        events=events, reports=data.get("reports", []),
        event_lines=_event_lines(text, len(events)),
    )
