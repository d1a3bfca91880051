"""The typed incident view: one incident's clocks and facts at an evaluation
instant, at report precision (instants and durations in whole microseconds,
ratios to 12 decimals), built from the exact facts. Its JSON rendering (the
contract in scenario-format.md) is in ``incident_json``; every consumer
reads this value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from ledger.domain.agreements import AgreementHistory
from ledger.domain.claims import ClaimState
from ledger.domain.sla.clocks import ClockResult, incident_clocks
from ledger.domain.sla.facts import IncidentFacts, charged_custody, held_time
from ledger.domain.sla.period import incident_period
from ledger.domain.sla.report import Dispute, report_ratio


@dataclass(frozen=True, slots=True)
class CustodySpan:
    """Time charged to an org (misrouted time goes to the sender)."""

    org: str
    start: int
    end: int | None


@dataclass(frozen=True, slots=True)
class HolderSpan:
    """Time an org held the incident."""

    org: str
    start: int
    end: int | None
    misrouted: bool


@dataclass(frozen=True, slots=True)
class OutageSpan:
    start: int
    end: int | None
    impact: Decimal


@dataclass(frozen=True, slots=True)
class IncidentClaim:
    """A claim on the incident: the dispute fields, what is claimed and who
    answered how."""

    dispute: Dispute
    # What is claimed, by field, in the order the claim states it.
    claim: tuple[tuple[str, str], ...]
    accepted_by: tuple[str, ...]
    disputed_by: tuple[str, ...]

    @classmethod
    def of(cls, incident_id: str, claim: ClaimState) -> IncidentClaim:
        return cls(Dispute.of(incident_id, claim), tuple(claim.claim),
                   tuple(claim.accepted_by), tuple(claim.disputed_by))


@dataclass(frozen=True, slots=True)
class ClockView:
    """One service level's clock on the incident."""

    level_id: str
    kind: str
    calendar: str
    threshold: int
    elapsed: int
    due_at: int | None
    outcome: str
    stopped: bool
    # org -> accountable µs, sorted by org; only positive amounts.
    accountable: Mapping[str, int]
    customer_wait: int
    # org -> share, sorted by org; only for a missed clock.
    shares: Mapping[str, Decimal]

    @classmethod
    def of(cls, clock: ClockResult) -> ClockView:
        return cls(clock.level_id, clock.kind, clock.calendar_id, clock.threshold,
                   clock.elapsed, clock.due_at, clock.outcome, clock.stopped,
                   dict(sorted(clock.accountable.items())), clock.customer_wait,
                   {org: report_ratio(s) for org, s in sorted(clock.shares.items())})


@dataclass(frozen=True, slots=True)
class IncidentView:
    """What is known of one incident at ``evaluated_at`` as of the log
    position ``recorded_position``. An incident opened after T does not
    exist yet (10.8): only the head is set. A voided one has its opening
    facts and no clocks."""

    incident_id: str
    agreement: str
    evaluated_at: int
    recorded_position: int
    exists: bool
    voided: bool = False
    service: str | None = None
    opened_at: int | None = None
    # The month whose report counts it (reading 25).
    period: str | None = None
    priority: str | None = None
    status: str | None = None
    paused: bool = False
    root_cause: str | None = None
    excused: bool = False
    custody: tuple[CustodySpan, ...] = ()
    holders: tuple[HolderSpan, ...] = ()
    outages: tuple[OutageSpan, ...] = ()
    claims: tuple[IncidentClaim, ...] = ()
    service_levels: tuple[ClockView, ...] = ()

    def clock(self, level_id: str) -> ClockView:
        return next(c for c in self.service_levels if c.level_id == level_id)


def incident_view(
    history: AgreementHistory,
    facts: IncidentFacts,
    evaluated_at: int,
    recorded_position: int,
) -> IncidentView:
    """One incident's clocks at T, from facts exact at T."""
    view = IncidentView(facts.incident_id, history.agreement_id, evaluated_at,
                        recorded_position, facts.exists)
    if not facts.exists:
        return view
    view = replace(view, voided=facts.voided, service=facts.service,
                   opened_at=facts.opened_at, period=incident_period(history, facts.opened_at))
    if facts.voided:
        return view
    terms = history.terms_at(facts.opened_at)
    clocks = incident_clocks(facts, terms, evaluated_at) if terms is not None else ()
    return replace(
        view, priority=facts.priority, status=facts.status, paused=facts.paused_at_end(),
        root_cause=facts.root_cause, excused=facts.excused,
        custody=tuple(CustodySpan(org, a, b) for org, a, b in charged_custody(facts)),
        holders=tuple(HolderSpan(h.org, h.start, h.end, h.misrouted)
                      for h in held_time(facts.holders)),
        outages=tuple(OutageSpan(o.start, o.end, report_ratio(o.impact))
                      for o in facts.outages if o.end is None or o.end > o.start),
        claims=tuple(IncidentClaim.of(facts.incident_id, c) for c in facts.claims),
        service_levels=tuple(ClockView.of(c) for c in clocks),
    )
