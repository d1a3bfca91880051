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


SCENARIO_KEYS = ("organisations", "agreements", "amendments", "events", "reports")


def _key_line(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith((f'"{key}"', f"{key}:")):
            return number
    return 0


def read_scenario(path: str | Path) -> Scenario:
    """A scenario file (JSON or YAML), or the JSON Lines `sla-ledger events`
    writes (one stored event a line, agreement events included)."""
    text = Path(path).read_text(encoding="utf-8")
    data: Any
    if str(path).endswith((".jsonl", ".ndjson")):
        return read_event_lines(path, text)
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":  # several documents: JSON Lines
                return read_event_lines(path, text)
            raise InvalidArgument(f"{path}:{exc.lineno}", f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(str(path), "a scenario is one JSON/YAML object")
    for key in data:
        if key not in SCENARIO_KEYS:
            raise InvalidArgument(f"{path}:{_key_line(text, key)}",
                                  f"unknown key {key!r} (a scenario has {', '.join(SCENARIO_KEYS)})")
    for key in SCENARIO_KEYS:
        if not isinstance(data.get(key, []), list):
            raise InvalidArgument(f"{path}:{key}", "must be a list")
    events = data.get("events", [])
    return Scenario(
        path=str(path), organisations=data.get("organisations", []),
        agreements=data.get("agreements", []), amendments=data.get("amendments", []),
        events=events, reports=data.get("reports", []),
        event_lines=_event_lines(text, len(events)),
    )


def read_event_lines(path: str | Path, text: str) -> Scenario:
    """JSON Lines of events: agreement registrations and amendments become
    the scenario's agreements and amendments, the rest its events."""
    scenario = Scenario(path=str(path))
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{path}:{number}", f"not JSON: {exc.msg}") from None
        if not isinstance(raw, dict):
            raise InvalidArgument(f"{path}:{number}", "each line is one event object")
        kind = raw.get("type")
        if kind in ("agreement_registered", "agreement_amended"):
            terms = raw.get("terms")
            if not isinstance(terms, dict):
                raise InvalidArgument(f"{path}:{number}", f"{kind} needs its terms")
            entry = {**terms, "effective_from": raw.get("effective_from"), "event_id": raw.get("event_id")}
            if kind == "agreement_registered":
                scenario.agreements.append({"id": raw.get("agreement"), **entry})
            else:
                scenario.amendments.append({"agreement": raw.get("agreement"), **entry})
            continue
        scenario.events.append(raw)
        scenario.event_lines.append(number)
    return scenario
