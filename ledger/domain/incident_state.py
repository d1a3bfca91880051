"""One incident, one state machine (spec sections 4-6, 10.1-10.8 and 11).

`evolve(state, event) -> state` is the incident's only transition function:
a pure fold over frozen values, in the style of the eventsourcing library's
functional aggregates. Every question about an incident's state derives
from it; they differ only in which events they fold:

- write-side validation folds the validity timeline (the effective timeline,
  answers and unretracted voids included) and reads `violation`, the first
  event the order-dependent rules refuse (ledger.domain.validation);
- the SLA facts fold the timeline judged at T, claims not in effect left out
  (ledger.domain.sla.facts);
- the incident summary folds the effective timeline
  (ledger.application.incidents).

The facts part of the state is lenient: facts are folded over stored
histories, and an event the rules would refuse changes nothing the facts
cannot make sense of. On a valid timeline the rules' view of the state
(holder, pending handoff, paused, open outage) is read off the same facts,
so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import Literal, NamedTuple, assert_never

from ledger.domain import events as ev
from ledger.domain.claims import ANSWER_TYPES
from ledger.domain.timeline import effective_timeline, timeline_key

Status = Literal["open", "resolved", "closed"]
# A refused event, the rule it breaks (an id of validation_rules.RULES), the text.
Violation = tuple[ev.LedgerEvent, str, str]


@dataclass(frozen=True, slots=True)
class Span:
    """[start, end); end None = still open when the events were folded."""

    start: int
    end: int | None

    def closed_at(self, t: int) -> tuple[int, int]:
        """The span as it stands at t (an open end runs until t)."""
        return (self.start, t if self.end is None else min(self.end, t))


@dataclass(frozen=True, slots=True)
class Holding:
    """One stretch of custody as it happened.

    `misrouted` marks a handoff that its receiver later rejected: the
    receiver held the call but the time is charged to `sender` (spec 6).
    """

    org: str
    start: int
    end: int | None
    sender: str | None = None
    misrouted: bool = False

    @property
    def charged_to(self) -> str:
        if self.misrouted and self.sender is not None:
            return self.sender
        return self.org


@dataclass(frozen=True, slots=True)
class Outage:
    start: int
    end: int | None
    impact: Decimal


class IncidentState(NamedTuple):
    """An incident after the events folded so far, in timeline order.

    A NamedTuple rather than a frozen dataclass: one is built per event of
    every fold, and a tuple is several times cheaper to build."""

    opened: ev.LedgerEvent | None = None
    # The latest occurred_at folded: an event dated at or after it lands at
    # the end of the timeline and can be judged on this state alone.
    last_at: int | None = None
    violation: Violation | None = None
    priority: str = ""
    status: Status = "open"
    root_cause: str | None = None
    holders: tuple[Holding, ...] = ()
    # Index in holders of the stretch started by the latest handoff while
    # that handoff can still be rejected (10.4: only the latest one).
    rejectable: int | None = None
    pauses: tuple[Span, ...] = ()
    response: Span | None = None
    resolution: tuple[Span, ...] = ()
    outages: tuple[Outage, ...] = ()
    # What the claim rules read (section 11): unretracted voids, and the
    # opened, priority changes, possible root-cause claims and answers.
    voids: tuple[ev.LedgerEvent, ...] = ()
    claim_events: tuple[ev.LedgerEvent, ...] = ()

    @property
    def holder(self) -> str:
        return self.holders[-1].org if self.holders else ""

    @property
    def pending_handoff(self) -> tuple[str, str] | None:
        """(sender, receiver) of the handoff that may still be rejected."""
        if self.rejectable is None:
            return None
        held = self.holders[self.rejectable]
        return (held.sender or "", held.org)

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1].end is None

    @property
    def outage_open(self) -> bool:
        return bool(self.outages) and self.outages[-1].end is None


INITIAL = IncidentState()


def evolve(state: IncidentState, event: ev.LedgerEvent) -> IncidentState:  # noqa: C901, PLR0912, PLR0915  the state machine: one case per event type, exhaustive (assert_never), on the hot path of every fold
    """The state after `event`, the next event in timeline order."""
    payload = event.payload
    t = event.occurred_at
    last_at = t if state.last_at is None or t > state.last_at else state.last_at
    violation = state.violation
    if violation is None and not isinstance(payload, ANSWER_TYPES):
        # Answers are accepted in any state (11.3).
        violation = broken_rule(state, event)
    if state.opened is None:
        if isinstance(payload, ev.Opened):
            return state._replace(
                opened=event, last_at=last_at, violation=violation,
                priority=payload.priority, holders=(Holding(payload.custody, t, None),),
                response=Span(t, None), resolution=(Span(t, None),),
                claim_events=(*state.claim_events, event),
            )
        return state._replace(last_at=last_at, violation=violation)
    # One new value per event (this runs for every event of every fold):
    # locals, then a single construction.
    priority, status, root_cause = state.priority, state.status, state.root_cause
    holders, rejectable, pauses = state.holders, state.rejectable, state.pauses
    response, resolution, outages = state.response, state.resolution, state.outages
    voids, claim_events = state.voids, state.claim_events
    # claim_events: what claims.may_be_claim accepts, voids apart.
    match payload:
        case ev.Opened():
            pass  # a second one is refused; the first stands
        case ev.Responded():
            response = _stopped(response, t)
        case ev.Resolved(root_cause=cause):
            response = _stopped(response, t)
            if resolution and resolution[-1].end is None:
                resolution = (*resolution[:-1], Span(resolution[-1].start, t))
            status = "resolved"
            if cause:
                root_cause = cause
                claim_events = (*claim_events, event)
        case ev.Reopened():
            # The response clock does not restart: only the first response
            # counts (10.3).
            if resolution and resolution[-1].end is not None:
                resolution = (*resolution, Span(t, None))
            status = "open"
        case ev.Closed():
            status = "closed"
        case ev.HandedOff(to=to):
            last = holders[-1]
            holders = (*holders[:-1], Holding(last.org, last.start, t, last.sender, last.misrouted),
                       Holding(to, t, None, sender=last.org))
            rejectable = len(holders) - 1
        case ev.HandoffRejected():
            # The write side only accepts a rejection of the latest handoff,
            # whose receiver is then the holder; anything else is ignored
            # rather than guessed at.
            held = holders[rejectable] if rejectable == len(holders) - 1 else None
            if held is not None and held.sender is not None:
                holders = (*holders[:-1], Holding(held.org, held.start, t, held.sender, True),
                           Holding(held.sender, t, None))
                rejectable = None
        case ev.ClockPaused():
            if not state.paused:
                pauses = (*pauses, Span(t, None))
        case ev.ClockResumed():
            if state.paused:
                pauses = (*pauses[:-1], Span(pauses[-1].start, t))
        case ev.PriorityChanged(priority=new_priority):
            priority = new_priority
            claim_events = (*claim_events, event)
        case ev.OutageStarted(impact=impact):
            if not state.outage_open:
                outages = (*outages, Outage(t, None, impact))
        case ev.OutageEnded():
            if state.outage_open:
                outages = (*outages[:-1], Outage(outages[-1].start, t, outages[-1].impact))
        case ev.RootCauseAssigned(root_cause=cause):
            root_cause = cause
            if cause:
                claim_events = (*claim_events, event)
        case ev.Voided():
            voids = (*voids, event)
        case ev.ClaimAccepted() | ev.ClaimDisputed():
            claim_events = (*claim_events, event)
        case ev.Retracted():
            # Retractions are applied by effective_timeline before folding:
            # a correction changes the past, so it means a fold afresh.
            pass
        case ev.MaintenanceScheduled() | ev.AgreementRegistered() | ev.AgreementAmended():
            pass  # not an incident's event
        case _:
            assert_never(payload)
    return IncidentState(
        state.opened, last_at, violation, priority, status, root_cause, holders, rejectable,
        pauses, response, resolution, outages, voids, claim_events,
    )


def _stopped(response: Span | None, t: int) -> Span | None:
    if response is None or response.end is not None:
        return response
    return Span(response.start, t)


def broken_rule(state: IncidentState, event: ev.LedgerEvent) -> Violation | None:  # noqa: C901, PLR0911, PLR0912  the rule table of section 4 and 10.1-10.7: one case per event type, one return per rule
    """The order-dependent rule (section 4, 10.1-10.7) `event` breaks as the
    next event after `state`, or None.

    Rules about an event on its own (actor roles, root causes, services) are
    checked once, when the event is appended, so that a later amendment of
    the terms cannot wedge a stored incident.
    """
    payload, kind = event.payload, event.type
    if state.opened is None:
        if not isinstance(payload, ev.Opened):
            return event, "before_opened", f"{kind} dated before the incident is opened"
        return None
    if state.status == "closed" and not isinstance(payload, ev.RootCauseAssigned):
        return event, "after_closed", f"{kind} after closed"
    match payload:
        case ev.Opened():
            return event, "already_opened", "opened twice"
        case ev.Responded():
            if state.status == "resolved":
                return event, "responded_after_resolved", "responded while resolved"
        case ev.HandedOff(to=to):
            holder = state.holder
            if event.actor != holder:
                return (event, "not_custody_holder",
                        f"handed_off by {event.actor!r}, custody holder is {holder!r}")
            if to == holder:
                return (event, "invalid_handoff_target",
                        f"handed_off to {to!r}, who already holds custody")
        case ev.HandoffRejected():
            pending = state.pending_handoff
            if pending is None:
                return event, "no_pending_handoff", "handoff_rejected with no pending handoff"
            if event.actor != pending[1]:
                return (event, "not_handoff_receiver",
                        f"handoff_rejected by {event.actor!r}, "
                        f"the last handoff went to {pending[1]!r}")
        case ev.ClockPaused():
            if state.paused:
                return event, "already_paused", "clock_paused while already paused"
        case ev.ClockResumed():
            if not state.paused:
                return event, "not_paused", "clock_resumed while not paused"
        case ev.OutageStarted():
            if state.outage_open:
                return event, "outage_already_open", "outage_started while an outage is open"
        case ev.OutageEnded():
            if not state.outage_open:
                return event, "no_open_outage", "outage_ended while no outage is open"
        case ev.Resolved():
            if state.status != "open":
                return event, "already_resolved", "resolved while already resolved"
        case ev.Reopened():
            if state.status != "resolved":
                return event, "not_resolved", "reopened while not resolved"
        case ev.Closed():
            if state.status != "resolved":
                return event, "not_resolved", "closed while not resolved"
            if state.outage_open:
                return event, "outage_open_at_close", "closed while an outage is open"
        case _:
            # A change to the priority it already has is accepted and
            # changes nothing (10.19); root causes, voids and the rest
            # change no rule's state.
            pass
    return None


def fold(events: Iterable[ev.LedgerEvent], state: IncidentState = INITIAL) -> IncidentState:
    """`events` (in timeline order) folded onto `state`."""
    return reduce(evolve, events, state)


def validity_events(stored: Iterable[ev.LedgerEvent]) -> list[ev.LedgerEvent]:
    """What validity is judged on, in timeline order: the effective timeline
    (retractions applied) plus the unretracted voids, kept because a void's
    own date must respect before_opened/after_closed and the claim rules
    read them. Answers are in it but take no part in the rules."""
    effective = effective_timeline(stored)
    if not effective.voids:
        return list(effective.entries)
    return sorted([*effective.entries, *effective.voids], key=timeline_key)


def validity_state(stored: Iterable[ev.LedgerEvent]) -> IncidentState:
    """The state write-side validation judges the next event against."""
    return fold(validity_events(stored))


def catch_up(state: IncidentState, later: Iterable[ev.LedgerEvent]) -> IncidentState | None:
    """`state` advanced by events stored after the ones it folds, or None when
    one of them does not land at the end of the timeline (a late event or a
    retraction): then only a fold afresh is right."""
    for event in sorted(later, key=timeline_key):
        if isinstance(event.payload, ev.Retracted) or (
                state.last_at is not None and event.occurred_at < state.last_at):
            return None
        state = evolve(state, event)
    return state
