"""`sla-ledger load`: append a scenario file through the public gRPC API."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import grpc

from ledger.adapters.scenario import Scenario
from ledger.client import LedgerClient
from ledger.client.errors import decode_error
from ledger.domain.codec import event_from_dict, unknown_event_keys
from ledger.domain.errors import InvalidArgument
from ledger.domain.events import AppendResult, LedgerEvent
from ledger.domain.instants import parse_instant
from ledger.domain.terms_parsing import parse_terms, parse_terms_changes

T = TypeVar("T")
_NS = uuid.UUID("0d7f3c2e-7a8b-4f4e-9a51-3b1f6d2c9e10")
BATCH = 200
FATAL = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED,
         grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@dataclass
class LoadSummary:
    stored: int = 0  # with dry_run: would be stored
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # dry run: events of agreements this file would register (the server
    # cannot check an event against an agreement it does not hold yet)
    unchecked: int = 0
    # file index -> ledger position (stored or duplicate), for knowledge cuts
    positions: dict[int, int] = field(default_factory=dict)

    def position_after(self, file_events: int) -> int:
        """The ledger position of the last event among the first N file events."""
        known = [p for i, p in self.positions.items() if i < file_events]
        return max(known, default=0)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _parse_events(scenario: Scenario, summary: LoadSummary) -> list[tuple[int, LedgerEvent]]:
    """The file's events that parse, with their index; the others go to
    `summary.rejected` with the reason."""
    parsed: list[tuple[int, LedgerEvent]] = []
    for index, raw in enumerate(scenario.events):
        unknown = unknown_event_keys(raw) if isinstance(raw, dict) else []
        if unknown:
            summary.rejected.append(_rejection(
                scenario, index, raw, f"invalid_argument: events[{index}]: unknown field(s) "
                f"{', '.join(unknown)} for {raw.get('type')!r}"))
            continue
        try:
            parsed.append((index, event_from_dict(raw, f"events[{index}]")))
        except InvalidArgument as exc:
            summary.rejected.append(_rejection(scenario, index, raw, f"invalid_argument: {exc}"))
    return parsed


def load_scenario(client: LedgerClient, scenario: Scenario,
                  progress: Callable[[int, int], None] | None = None,
                  batch_size: int = BATCH, *, dry_run: bool = False) -> LoadSummary:
    """Appends the file in order. With dry_run the server checks every event
    (AppendEvents validate_only) and nothing is stored; agreements are
    checked here, and events of agreements not yet stored are counted as
    unchecked."""
    summary = LoadSummary()
    register: Callable[..., AppendResult] = client.register_agreement
    amend: Callable[..., AppendResult] = client.amend_agreement
    if dry_run:
        register = amend = _would_append(client)
    for i, raw in enumerate(scenario.agreements):
        agreement_id = raw.get("id", "")
        event_id = raw.get("event_id") or str(uuid.uuid5(_NS, f"register:{agreement_id}"))
        _append_terms(summary, f"agreements[{i}]", raw, event_id,
                      partial(parse_terms, raw), partial(register, agreement_id))
    for i, raw in enumerate(scenario.amendments):
        agreement_id = raw.get("agreement", "")
        # Only what the amendment names is sent: the ledger applies
        # amendments in effective_from order, whatever order the file has.
        named = {k: v for k, v in raw.items() if k not in ("agreement", "effective_from", "event_id")}
        event_id = raw.get("event_id") or str(uuid.uuid5(_NS, f"amend:{agreement_id}:{_digest(raw)}"))
        _append_terms(summary, f"amendments[{i}]", raw, event_id,
                      partial(parse_terms_changes, named), partial(amend, agreement_id))

    parsed = _parse_events(scenario, summary)
    if dry_run:
        missing = _missing_agreements(client, {e.agreement_id for _, e in parsed if e.agreement_id})
        unchecked = {i for i, e in parsed if e.agreement_id in missing}
        summary.unchecked = len(unchecked)
        parsed = [(i, e) for i, e in parsed if i not in unchecked]
    done = len(scenario.events) - len(parsed)
    total = len(scenario.events)
    batches = _by_incident(parsed, batch_size) if dry_run else \
        [parsed[start : start + batch_size] for start in range(0, len(parsed), batch_size)]
    for batch in batches:
        if dry_run:
            _validate(client, scenario, batch, summary)
        else:
            _settle(client, scenario, batch, summary)
        done += len(batch)
        if progress is not None:
            progress(min(done, total), total)
    return summary


def _would_append(client: LedgerClient) -> Callable[..., AppendResult]:
    """A dry run's registration or amendment: checked here (the terms
    parsed), a duplicate when the ledger already holds its event id."""
    def check(agreement_id: str, effective_from: int, terms: object, event_id: str) -> AppendResult:
        try:
            stored = client.get_agreement(agreement_id)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return AppendResult(event_id, 0, False)
        known = {a.event_id for a in stored.amendments}
        registered = str(uuid.uuid5(_NS, f"register:{agreement_id}"))
        return AppendResult(event_id, 0, event_id in known or event_id == registered)
    return check


def _missing_agreements(client: LedgerClient, ids: set[str]) -> set[str]:
    missing = set()
    for agreement_id in sorted(ids):
        try:
            client.get_agreement(agreement_id)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            missing.add(agreement_id)
    return missing


def _by_incident(parsed: list[tuple[int, LedgerEvent]],
                 size: int) -> list[list[tuple[int, LedgerEvent]]]:
    """Batches holding whole incidents: nothing is stored between batches of
    a dry run, so an incident's events must be checked together."""
    groups: dict[str, list[tuple[int, LedgerEvent]]] = {}
    for item in parsed:
        groups.setdefault(item[1].incident_id or f"#{item[0]}", []).append(item)
    batches: list[list[tuple[int, LedgerEvent]]] = [[]]
    for group in groups.values():
        if batches[-1] and len(batches[-1]) + len(group) > size:
            batches.append([])
        batches[-1].extend(group)
    return [sorted(b, key=lambda item: item[0]) for b in batches if b]


def _validate(client: LedgerClient, scenario: Scenario,
              batch: list[tuple[int, LedgerEvent]], summary: LoadSummary) -> None:
    """A dry run of one batch: each event the server names is rejected and
    the rest is checked again without it, as a real load would store the
    others."""
    while batch:
        try:
            results = client.append([e for _, e in batch], validate_only=True)
        except grpc.RpcError as exc:
            if exc.code() in FATAL:
                raise
            offset = _offending(exc, len(batch))
            if offset is None:
                offset = 0
            index, _ = batch[offset]
            summary.rejected.append(_rejection(scenario, index, scenario.events[index], _reason(exc)))
            batch = batch[:offset] + batch[offset + 1 :]
            continue
        for result in results:
            summary.duplicates += result.duplicate
            summary.stored += not result.duplicate
        return


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


def progress_bar(stream: Any = sys.stderr,
                 clock: Callable[[], float] = time.monotonic) -> Callable[[int, int], None]:
    """A bar with the rate and the time left, on a terminal only (a pipe or a
    log file gets the summary alone)."""
    started = clock()

    def show(done: int, total: int) -> None:
        if not stream.isatty():
            return
        stream.write("\r" + progress_line(done, total, clock() - started))
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def progress_line(done: int, total: int, elapsed: float, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    rate = done / elapsed if elapsed > 0 else 0.0
    if done >= total:
        tail = f"in {_clock_text(elapsed)}"
    elif rate > 0:
        tail = f"ETA {_clock_text((total - done) / rate)}"
    else:
        tail = "ETA --:--"
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events {rate:,.0f}/s {tail}"


def _clock_text(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
