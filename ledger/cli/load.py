"""`sla-ledger load`: append a scenario file through the public gRPC API."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import grpc

from ledger.adapters.scenario import Scenario
from ledger.application.appends import AppendResult
from ledger.client import LedgerClient
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import InvalidArgument
from ledger.domain.events import LedgerEvent
from ledger.domain.instants import parse_instant
from ledger.domain.terms_parsing import parse_terms, parse_terms_changes
from ledger.grpc.errors import decode_error

T = TypeVar("T")
_NS = uuid.UUID("0d7f3c2e-7a8b-4f4e-9a51-3b1f6d2c9e10")
BATCH = 200
FATAL = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED,
         grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@dataclass
class LoadSummary:
    stored: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # file index -> ledger position (stored or duplicate), for knowledge cuts
    positions: dict[int, int] = field(default_factory=dict)

    def position_after(self, file_events: int) -> int:
        """The ledger position of the last event among the first N file events."""
        known = [p for i, p in self.positions.items() if i < file_events]
        return max(known, default=0)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def load_scenario(client: LedgerClient, scenario: Scenario,
                  progress: Callable[[int, int], None] | None = None,
                  batch_size: int = BATCH) -> LoadSummary:
    summary = LoadSummary()
    for i, raw in enumerate(scenario.agreements):
        agreement_id = raw.get("id", "")
        event_id = raw.get("event_id") or str(uuid.uuid5(_NS, f"register:{agreement_id}"))
        _append_terms(summary, f"agreements[{i}]", raw, event_id,
                      partial(parse_terms, raw), partial(client.register_agreement, agreement_id))
    for i, raw in enumerate(scenario.amendments):
        agreement_id = raw.get("agreement", "")
        # Only what the amendment names is sent: the ledger applies
        # amendments in effective_from order, whatever order the file has.
        named = {k: v for k, v in raw.items() if k not in ("agreement", "effective_from", "event_id")}
        event_id = raw.get("event_id") or str(uuid.uuid5(_NS, f"amend:{agreement_id}:{_digest(raw)}"))
        _append_terms(summary, f"amendments[{i}]", raw, event_id,
                      partial(parse_terms_changes, named),
                      partial(client.amend_agreement, agreement_id))

    parsed: list[tuple[int, LedgerEvent]] = []
    for index, raw in enumerate(scenario.events):
        try:
            parsed.append((index, event_from_dict(raw, f"events[{index}]")))
        except InvalidArgument as exc:
            summary.rejected.append(_rejection(scenario, index, raw, f"invalid_argument: {exc}"))
    done = len(scenario.events) - len(parsed)
    total = len(scenario.events)
    for start in range(0, len(parsed), batch_size):
        batch = parsed[start : start + batch_size]
        _settle(client, scenario, batch, summary)
        done += len(batch)
        if progress is not None:
            progress(min(done, total), total)
    return summary


def _append_terms(summary: LoadSummary, where: str, raw: dict[str, Any], event_id: str,
                  parse: Callable[[str], T],
                  send: Callable[[int, T, str], AppendResult]) -> None:
    """Registers or amends one agreement, recording the outcome in the summary."""
    try:
        terms = parse(where)
        effective = parse_instant(str(raw.get("effective_from", "")))
    except (InvalidArgument, ValueError) as exc:
        summary.rejected.append({"where": where, "reason": f"invalid_argument: {exc}"})
        return
    try:
        result = send(effective, terms, event_id)
    except grpc.RpcError as exc:
        if exc.code() in FATAL:
            raise
        summary.rejected.append({"where": where, "reason": _reason(exc)})
        return
    summary.duplicates += result.duplicate
    summary.stored += not result.duplicate


def _settle(client: LedgerClient, scenario: Scenario,
            batch: list[tuple[int, LedgerEvent]], summary: LoadSummary) -> None:
    """Appends the batch until every event of it is stored, a duplicate or
    rejected with its reason.

    A batch is atomic, so a rejection stores nothing: the events before the
    one named are settled on their own (they may hold another bad event: the
    server may name a later conflicting id before an earlier invalid event),
    and the events after it are tried again.
    """
    while batch:
        try:
            results = client.append([e for _, e in batch])
        except grpc.RpcError as exc:
            if exc.code() in FATAL:
                raise
            offset = _offending(exc, len(batch))
            if offset is None:
                if len(batch) == 1:
                    offset = 0
                else:
                    # The error names no event: settle each one on its own.
                    for item in batch:
                        _settle(client, scenario, [item], summary)
                    return
            _settle(client, scenario, batch[:offset], summary)
            index, _ = batch[offset]
            summary.rejected.append(_rejection(scenario, index, scenario.events[index], _reason(exc)))
            batch = batch[offset + 1 :]
            continue
        for (index, _), result in zip(batch, results, strict=True):
            summary.positions[index] = result.position
            if result.duplicate:
                summary.duplicates += 1
            else:
                summary.stored += 1
        return


def _offending(exc: grpc.RpcError, size: int) -> int | None:
    decoded = decode_error(exc)
    if "index" in decoded and 0 <= decoded["index"] < size:
        return decoded["index"]
    for violation in decoded["field_violations"]:
        match = re.match(r"events\[(\d+)\]", violation["field"])
        if match and int(match.group(1)) < size:
            return int(match.group(1))
    match = re.search(r"events\[(\d+)\]", decoded["message"])
    if match and int(match.group(1)) < size:
        return int(match.group(1))
    return None


_REASONS = {
    "FAILED_PRECONDITION": "invalid_timeline",
    "INVALID_ARGUMENT": "invalid_argument",
    "ALREADY_EXISTS": "duplicate_event_id",
    "NOT_FOUND": "not_found",
    "PERMISSION_DENIED": "permission_denied",
}


def _reason(exc: grpc.RpcError) -> str:
    decoded = decode_error(exc)
    label = _REASONS.get(decoded["code"], decoded["code"].lower())
    message = re.sub(r"^events\[\d+\][.:]?\s*", "", decoded["message"])
    return f"{label}: {message}"


def _rejection(scenario: Scenario, index: int, raw: Any, reason: str) -> dict[str, Any]:
    line = scenario.event_lines[index] if index < len(scenario.event_lines) else 0
    return {
        "index": index, "line": line,
        "event_id": raw.get("event_id") if isinstance(raw, dict) else None,
        "incident_id": raw.get("incident_id") if isinstance(raw, dict) else None,
        "type": raw.get("type") if isinstance(raw, dict) else None,
        "reason": reason,
    }


def progress_bar(stream: Any = sys.stderr) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if not stream.isatty():
            return
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show
