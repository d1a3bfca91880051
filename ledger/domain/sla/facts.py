"""Fold an incident's stored events into the facts the SLA rules measure
(spec sections 4-6 and 10.2-10.8).

The fold is the incident state machine (incident_state.evolve) run over the
timeline judged at T. Folding is split from evaluating on purpose: a read model stores one
IncidentFacts per incident (as a plain dict) and evaluates it at many
instants without re-reading events. Facts hold intervals whose end may still
be open (None); evaluation clips them at the evaluation instant T.

A fold at T sees only events with occurred_at <= T (10.8); retractions and
voids apply whatever their date (effective_timeline does that), and claims
count only when in effect at T (section 11, ledger.domain.claims). Because
the fold depends on T only through which events are counted and which
claims are in effect, and claims change only at events or at their deemed
instants, one IncidentFacts is exact for every T in [valid_from,
valid_until): `facts_valid_at` says whether stored facts may be reused at
another instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.domain import events as ev
from ledger.domain.agreements import ROOT_CAUSE_CUSTOMER, AgreementHistory
from ledger.domain.claims import Authority, ClaimState, judge
from ledger.domain.incident_state import INITIAL, Holding, Outage, Span, Status, evolve
from ledger.domain.timeline import effective_timeline

FACTS_FORMAT = 2


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    incident_id: str
    agreement_id: str
    service: str
    opened_at: int
    # False when the incident was opened after the fold instant (10.8).
    exists: bool
    voided: bool
    priority: str
    status: Status
    root_cause: str | None
    holders: tuple[Holding, ...]
    pauses: tuple[Span, ...]
    response: Span
    resolution: tuple[Span, ...]
    outages: tuple[Outage, ...]
    # The fold is exact for every evaluation instant in [valid_from,
    # valid_until); None means unbounded on that side.
    valid_from: int | None
    valid_until: int | None
    # Every claim on the incident at T, in effect or not (section 11).
    claims: tuple[ClaimState, ...] = ()

    @property
    def excused(self) -> bool:
        return self.root_cause == ROOT_CAUSE_CUSTOMER

    @property
    def counts(self) -> bool:
        """Takes part in measurements at all (exists and not voided)."""
        return self.exists and not self.voided

    def paused_at_end(self) -> bool:
        return bool(self.pauses) and self.pauses[-1].end is None


def facts_valid_at(facts: IncidentFacts, evaluated_at: int) -> bool:
    """Whether folding the same events at `evaluated_at` gives these facts."""
    return (facts.valid_from is None or facts.valid_from <= evaluated_at) and (
        facts.valid_until is None or evaluated_at < facts.valid_until
    )


def held_time(holders: Iterable[Holding]) -> list[Holding]:
    """The holdings that hold time: a closed one of zero length (a handoff
    at the instant of opened, two events at one instant) is left out of
    every list (10.20); an open one is kept (shown with `to: null`)."""
    return [h for h in holders if h.end is None or h.end > h.start]


def charged_custody(facts: IncidentFacts) -> list[tuple[str, int, int | None]]:
    """Charged custody intervals: misrouted time goes to the sender, and
    neighbouring intervals charged to the same org are joined (a rejected
    handoff leaves one unbroken stretch for the sender). Stretches that hold
    no time are left out first (10.20), so they never split a stretch."""
    out: list[tuple[str, int, int | None]] = []
    for holding in held_time(facts.holders):
        org = holding.charged_to
        if out and out[-1][0] == org and out[-1][2] == holding.start:
            out[-1] = (org, out[-1][1], holding.end)
        else:
            out.append((org, holding.start, holding.end))
    return out


def fold_incident(
    events: Iterable[ev.LedgerEvent], evaluated_at: int | None, history: AgreementHistory
) -> IncidentFacts:
    """The facts of one incident at `evaluated_at` (None: every event counts
    and every claim that can be deemed accepted is).

    `events` are the incident's stored events inside the knowledge cut, in
    any order; `history` is its agreement (the claim rules read the customer
    and the dispute window from the terms at opened_at). Raises ValueError
    if there is no `opened` event.
    """
    timeline = effective_timeline(events)
    entries = timeline.entries
    opened = next((e for e in entries if isinstance(e.payload, ev.Opened)), None)
    if opened is None or not isinstance(opened.payload, ev.Opened):
        raise ValueError("an incident needs an opened event")
    payload = opened.payload
    authority = Authority.for_incident(history, opened.occurred_at)
    judged = judge(timeline, authority, evaluated_at)
    if evaluated_at is not None and opened.occurred_at > evaluated_at:
        # Not yet opened at T: it does not exist (10.8). Exact until it opens.
        return IncidentFacts(
            incident_id=opened.incident_id, agreement_id=opened.agreement_id,
            service=payload.service, opened_at=opened.occurred_at, exists=False,
            voided=judged.voided, priority=payload.priority, status="open",
            root_cause=None, holders=(), pauses=(),
            response=Span(opened.occurred_at, None), resolution=(), outages=(),
            valid_from=None, valid_until=opened.occurred_at,
        )
    state = evolve(INITIAL, opened)
    for event in judged.entries:
        if event is not opened:
            state = evolve(state, event)
    # Entries are sorted, so what is not counted is exactly the tail.
    counted = sum(1 for e in entries if evaluated_at is None or e.occurred_at <= evaluated_at)
    later = entries[counted:]
    valid_from = entries[counted - 1].occurred_at
    valid_until = later[0].occurred_at if later else None
    for instant in judged.deemed_instants:
        if evaluated_at is None or instant <= evaluated_at:
            valid_from = max(valid_from, instant)
        elif valid_until is None or instant < valid_until:
            valid_until = instant
    assert state.response is not None
    return IncidentFacts(
        incident_id=opened.incident_id, agreement_id=opened.agreement_id,
        service=payload.service, opened_at=opened.occurred_at, exists=True,
        voided=judged.voided, priority=state.priority, status=state.status,
        root_cause=state.root_cause, holders=state.holders, pauses=state.pauses,
        response=state.response, resolution=state.resolution, outages=state.outages,
        valid_from=valid_from, valid_until=valid_until, claims=judged.claims,
    )


# --- plain-dict form (for read models); ints, strings, bools, None only ---


def _span_to_list(span: Span) -> list[int | None]:
    return [span.start, span.end]


def _span_from(raw: Any) -> Span:
    start, end = raw
    return Span(int(start), None if end is None else int(end))


def facts_to_dict(facts: IncidentFacts) -> dict[str, Any]:
    """JSON-able and exact: instants as int µs, impacts as decimal strings."""
    return {
        "format": FACTS_FORMAT,
        "incident_id": facts.incident_id,
        "agreement_id": facts.agreement_id,
        "service": facts.service,
        "opened_at": facts.opened_at,
        "exists": facts.exists,
        "voided": facts.voided,
        "priority": facts.priority,
        "status": facts.status,
        "root_cause": facts.root_cause,
        "holders": [
            {"org": h.org, "start": h.start, "end": h.end, "sender": h.sender,
             "misrouted": h.misrouted}
            for h in facts.holders
        ],
        "pauses": [_span_to_list(s) for s in facts.pauses],
        "response": _span_to_list(facts.response),
        "resolution": [_span_to_list(s) for s in facts.resolution],
        "outages": [[o.start, o.end, str(o.impact)] for o in facts.outages],
        "valid_from": facts.valid_from,
        "valid_until": facts.valid_until,
        "claims": [_claim_to_dict(c) for c in facts.claims],
    }


def _claim_to_dict(claim: ClaimState) -> dict[str, Any]:
    return {
        "event_id": claim.event_id, "type": claim.type, "claimed_by": claim.claimed_by,
        "occurred_at": claim.occurred_at, "position": claim.position,
        "claim": [list(pair) for pair in claim.claim], "awaits": list(claim.awaits),
        "accepted_by": list(claim.accepted_by), "disputed_by": list(claim.disputed_by),
        "deemed_instant": claim.deemed_instant, "in_effect": claim.in_effect,
        "accepted": claim.accepted,
    }


def _claim_from(raw: Mapping[str, Any]) -> ClaimState:
    return ClaimState(
        event_id=str(raw["event_id"]), type=str(raw["type"]), claimed_by=str(raw["claimed_by"]),
        occurred_at=int(raw["occurred_at"]), position=int(raw["position"]),
        claim=tuple((str(k), str(v)) for k, v in raw["claim"]),
        awaits=tuple(str(o) for o in raw["awaits"]),
        accepted_by=tuple(str(o) for o in raw["accepted_by"]),
        disputed_by=tuple(str(o) for o in raw["disputed_by"]),
        deemed_instant=_opt_int(raw["deemed_instant"]), in_effect=bool(raw["in_effect"]),
        accepted=bool(raw["accepted"]),
    )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def facts_from_dict(raw: Mapping[str, Any]) -> IncidentFacts:
    if raw.get("format") != FACTS_FORMAT:
        raise ValueError(f"unknown incident facts format {raw.get('format')!r}")
    status = raw["status"]
    if status not in ("open", "resolved", "closed"):
        raise ValueError(f"unknown status {status!r}")
    return IncidentFacts(
        incident_id=str(raw["incident_id"]),
        agreement_id=str(raw["agreement_id"]),
        service=str(raw["service"]),
        opened_at=int(raw["opened_at"]),
        exists=bool(raw["exists"]),
        voided=bool(raw["voided"]),
        priority=str(raw["priority"]),
        status=status,
        root_cause=None if raw["root_cause"] is None else str(raw["root_cause"]),
        holders=tuple(
            Holding(str(h["org"]), int(h["start"]), _opt_int(h["end"]),
                    None if h["sender"] is None else str(h["sender"]), bool(h["misrouted"]))
            for h in raw["holders"]
        ),
        pauses=tuple(_span_from(s) for s in raw["pauses"]),
        response=_span_from(raw["response"]),
        resolution=tuple(_span_from(s) for s in raw["resolution"]),
        outages=tuple(
            Outage(int(o[0]), _opt_int(o[1]), Decimal(str(o[2]))) for o in raw["outages"]
        ),
        valid_from=_opt_int(raw["valid_from"]),
        valid_until=_opt_int(raw["valid_until"]),
        claims=tuple(_claim_from(c) for c in raw["claims"]),
    )
