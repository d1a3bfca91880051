"""Response and resolution clocks of one incident at an evaluation instant
(spec sections 5 and 6, readings 10.3, 10.5, 10.9 and 10.10).

Each clock is reduced to sets of UTC instants, and only then measured in the
service level's calendar:
  would_run = the clock's running intervals, up to T
  active    = would_run minus pauses          -> elapsed, accountable time
  waiting   = would_run inside pauses         -> customer_wait
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import ledger.domain.sla.intervals as iv
from ledger.domain.agreements import AgreementTerms, Calendar, ServiceLevel
from ledger.domain.calendars import business_add, business_elapsed
from ledger.domain.incident_state import Span
from ledger.domain.sla.facts import IncidentFacts

Outcome = Literal["met", "missed", "pending", "excused"]
OUTCOMES: tuple[Outcome, ...] = ("met", "missed", "pending", "excused")


@dataclass(frozen=True, slots=True)
class ClockResult:
    level_id: str
    kind: str
    calendar_id: str
    threshold: int
    elapsed: int
    due_at: int | None
    outcome: Outcome
    stopped: bool
    # org -> accountable µs; only orgs with a positive amount.
    accountable: dict[str, int]
    customer_wait: int
    # org -> share of this incident; only for a missed clock, no zero shares.
    shares: dict[str, Fraction]


def _runs(facts: IncidentFacts, level: ServiceLevel) -> tuple[Span, ...]:
    if level.kind == "response":
        return (facts.response,)
    return facts.resolution


def _crossing(cal: Calendar, active: iv.IntervalSet, threshold: int) -> int | None:
    """The instant accumulated clock time first reaches `threshold` within
    `active`, or None if it does not."""
    before = 0
    for start, end in active:
        here = business_elapsed(cal, start, end)
        if before + here >= threshold:
            # threshold - before > 0 here: a smaller remainder would have
            # been reached in an earlier piece.
            return business_add(cal, start, threshold - before)
        before += here
    return None


def _due_ahead(cal: Calendar, t: int, remaining: int) -> int | None:
    """business_add, except that a calendar with no working time left (an
    empty weekly schedule is valid terms) never reaches the threshold: the
    clock has no due instant rather than the report failing."""
    try:
        return business_add(cal, t, remaining)
    except ValueError:
        return None


def incident_shares(
    accountable: dict[str, int], policy: str, root_cause: str | None, providers: tuple[str, ...]
) -> dict[str, Fraction]:
    """Shares of one missed clock (spec 6): 100% to a root-cause provider
    under `root_cause`, otherwise each org's accountable time over the sum."""
    if policy == "root_cause" and root_cause is not None and root_cause in providers:
        return {root_cause: Fraction(1)}
    total = sum(accountable.values())
    if total == 0:
        return {}
    return {org: Fraction(t, total) for org, t in sorted(accountable.items()) if t > 0}


def evaluate_clock(
    facts: IncidentFacts, level: ServiceLevel, terms: AgreementTerms, evaluated_at: int,
    *, with_due: bool = True,
) -> ClockResult:
    """One clock of an existing incident at T. `terms` are the terms in force
    at the incident's opened_at (10.13). Without `with_due`, due_at is left
    None: period tallies need outcomes and shares only, and finding the
    crossing instant is a third of a running clock's cost."""
    if level.kind not in ("response", "resolution") or level.threshold is None:
        raise ValueError(f"service level {level.id!r} has no clock")
    t = evaluated_at
    cal = terms.calendar(level.calendar)
    runs = _runs(facts, level)
    would_run = iv.normalize(r.closed_at(t) for r in runs)
    paused = iv.normalize(p.closed_at(t) for p in facts.pauses)
    active = iv.subtract(would_run, paused)
    waiting = iv.intersect(would_run, paused)

    elapsed = iv.business_length(cal, active)
    customer_wait = iv.business_length(cal, waiting)
    accountable: dict[str, int] = {}
    for holding in facts.holders:
        end = t if holding.end is None else min(holding.end, t)
        mine = iv.intersect(active, iv.normalize([(holding.start, end)]))
        amount = iv.business_length(cal, mine)
        if amount:
            org = holding.charged_to
            accountable[org] = accountable.get(org, 0) + amount
    accountable = dict(sorted(accountable.items()))

    stopped = bool(runs) and runs[-1].end is not None and runs[-1].end <= t
    threshold = level.threshold
    outcome: Outcome
    if facts.excused:
        outcome = "excused"  # relief wins over every other outcome (10.9)
    elif elapsed > threshold:
        outcome = "missed"
    elif stopped:
        outcome = "met"
    else:
        outcome = "pending"  # a paused clock still counts as running

    due_at: int | None = None
    if with_due and not stopped and not facts.paused_at_end():
        # Earliest instant the clock reaches the threshold if it keeps
        # running from T: still ahead, or the crossing already passed.
        due_at = (
            _due_ahead(cal, t, threshold - elapsed)
            if elapsed < threshold
            else _crossing(cal, active, threshold)
        )

    shares: dict[str, Fraction] = {}
    if outcome == "missed":
        shares = incident_shares(accountable, terms.policy, facts.root_cause, terms.providers)
    return ClockResult(
        level_id=level.id, kind=level.kind, calendar_id=level.calendar, threshold=threshold,
        elapsed=elapsed, due_at=due_at, outcome=outcome, stopped=stopped,
        accountable=accountable, customer_wait=customer_wait, shares=shares,
    )


def applicable_levels(terms: AgreementTerms, priority: str,
                      service: str) -> tuple[ServiceLevel, ...]:
    """The clock levels of the (final) priority, in the terms' order; a
    level naming a service applies only to that service's incidents (10.26)."""
    return tuple(
        sl for sl in terms.service_levels
        if sl.kind in ("response", "resolution") and sl.priority == priority
        and (sl.service is None or sl.service == service)
    )


def incident_clocks(
    facts: IncidentFacts, terms: AgreementTerms, evaluated_at: int, *, with_due: bool = True
) -> tuple[ClockResult, ...]:
    """Every clock of the incident at T; none if it does not count (not yet
    opened at T, or voided)."""
    if not facts.counts:
        return ()
    return tuple(
        evaluate_clock(facts, sl, terms, evaluated_at, with_due=with_due)
        for sl in applicable_levels(terms, facts.priority, facts.service)
    )
