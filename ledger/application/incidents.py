"""A plain summary of an incident's current state, for listings and timelines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.domain import events as ev
from ledger.domain.timeline import effective_timeline


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    incident_id: str
    agreement_id: str
    service: str
    priority: str
    status: str  # open, resolved, closed, voided
    opened_at: int
    custody: str
    paused: bool
    root_cause: str
    last_position: int


def summarise(events: Sequence[ev.LedgerEvent]) -> IncidentSummary:
    timeline = effective_timeline(events)
    opened = next(e for e in events if isinstance(e.payload, ev.Opened))
    assert isinstance(opened.payload, ev.Opened)
    priority, custody, status = opened.payload.priority, opened.payload.custody, "open"
    paused, root_cause = False, ""
    handoffs: list[tuple[str, str]] = []  # (sender, receiver)
    for event in timeline.entries:
        payload = event.payload
        if isinstance(payload, ev.PriorityChanged):
            priority = payload.priority
        elif isinstance(payload, ev.HandedOff):
            handoffs.append((custody, payload.to))
            custody = payload.to
        elif isinstance(payload, ev.HandoffRejected) and handoffs:
            custody = handoffs[-1][0]
        elif isinstance(payload, ev.Resolved):
            status = "resolved"
            root_cause = payload.root_cause or root_cause
        elif isinstance(payload, ev.Reopened):
            status = "open"
        elif isinstance(payload, ev.Closed):
            status = "closed"
        elif isinstance(payload, ev.ClockPaused):
            paused = True
        elif isinstance(payload, ev.ClockResumed):
            paused = False
        elif isinstance(payload, ev.RootCauseAssigned):
            root_cause = payload.root_cause
    return IncidentSummary(
        incident_id=opened.incident_id, agreement_id=opened.agreement_id,
        service=opened.payload.service, priority=priority,
        status="voided" if timeline.voided else status, opened_at=opened.occurred_at,
        custody=custody, paused=paused, root_cause=root_cause,
        last_position=max(e.position for e in events),
    )
