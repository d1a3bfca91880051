"""A plain summary of an incident's current state, for listings and timelines,
read off the incident state machine (ledger.domain.incident_state)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory
from ledger.domain.claims import Authority, judge
from ledger.domain.incident_state import INITIAL, evolve
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


def summarise(events: Sequence[ev.LedgerEvent],
              history: AgreementHistory | None = None) -> IncidentSummary:
    """The incident once everything known counts. With its agreement's
    `history`, claims (spec section 11) count as the SLA read model folds
    them: accepted, or deemed accepted once their window passes (the listing
    from the model and from the streams must agree). Without, every stored
    priority change and root cause counts, claims or not."""
    timeline = effective_timeline(events)
    opened = next(e for e in events if isinstance(e.payload, ev.Opened))
    assert isinstance(opened.payload, ev.Opened)
    entries, voided = timeline.entries, timeline.voided
    if history is not None:
        judged = judge(timeline, Authority.for_incident(history, opened.occurred_at), None)
        entries, voided = judged.entries, judged.voided
    state = evolve(INITIAL, opened)
    for event in entries:
        if event is not opened:
            state = evolve(state, event)
    return IncidentSummary(
        incident_id=opened.incident_id, agreement_id=opened.agreement_id,
        service=opened.payload.service, priority=state.priority,
        status="voided" if voided else state.status, opened_at=opened.occurred_at,
        custody=state.holder, paused=state.paused, root_cause=state.root_cause or "",
        last_position=max(e.position for e in events),
    )
