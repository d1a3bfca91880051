"""The incident state machine behind write-side validation (spec sections 4
and 10.1-10.7), and the catalogue of rule ids it reports.

Rule ids are API: the gRPC layer returns them to partners, whose systems
branch on them. Never rename or reuse one; add new ones at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.domain import events as ev

RULES: tuple[tuple[str, str], ...] = (
    ("future_event", "occurred_at is more than the allowed clock skew ahead of the ledger clock"),
    ("incident_voided", "the incident is voided: only a retraction of the void is accepted"),
    ("already_opened", "the incident id is already opened; an incident has exactly one opened"),
    ("wrong_agreement", "the event names another agreement than the incident's"),
    ("before_effective_from", "opened (or maintenance starting) before the agreement is in force"),
    ("unknown_service", "the service is not a service of the agreement"),
    ("custody_not_provider", "opened with an initial custody org that is not a provider"),
    ("not_a_party", "the actor is not a party (customer or provider) of the agreement"),
    ("not_a_provider", "responded or resolved by an org that is not a provider"),
    ("invalid_root_cause", "root cause is not a provider, customer or third_party"),
    ("before_opened", "the event is dated (or recorded) before the incident's opened"),
    ("after_closed", "after closed only root_cause_assigned and retracted are accepted"),
    ("not_custody_holder", "handed_off by an org that does not hold custody at that point"),
    ("invalid_handoff_target", "handed_off to the current holder or to a non-provider"),
    ("no_pending_handoff", "handoff_rejected with no handoff left to reject"),
    ("not_handoff_receiver", "handoff_rejected by an org other than the last handoff's receiver"),
    ("already_paused", "clock_paused while the clock is already paused (no nesting)"),
    ("not_paused", "clock_resumed while the clock is not paused"),
    # No longer raised (10.19: a change to the same priority is accepted and
    # changes nothing); kept because rule ids are never reused.
    ("same_priority", "priority_changed to the priority the incident already has"),
    ("outage_already_open", "outage_started while the incident already has an open outage"),
    ("no_open_outage", "outage_ended while the incident has no open outage"),
    ("already_resolved", "resolved while already resolved (and not reopened since)"),
    ("responded_after_resolved", "responded while resolved and not reopened"),
    ("not_resolved", "reopened or closed while the incident is not resolved"),
    ("outage_open_at_close", "closed while an outage of the incident is still open"),
    ("unknown_target", "retracted names no earlier stored event of this incident"),
    ("cannot_retract_opened", "retracted names the incident's opened (void the incident instead)"),
    ("cannot_retract_retraction", "retracted names a retraction (a correction is never undone)"),
    ("already_retracted", "retracted names an event that is already retracted"),
    ("target_has_dependents", "the timeline without the retracted event would be invalid"),
    ("not_own_event", "retracted names an event of another org: corrections are one's own (11.1)"),
    ("not_a_claim", "an answer names no stored claim of this incident (11.3)"),
    ("not_awaited", "an answer by an org the claim does not await (11.3)"),
    ("already_answered", "the org has already answered this claim: retract that answer first (11.3)"),
    ("dispute_after_deemed", "a dispute dated at or after the claim's deemed instant (11.3)"),
)
RULE_IDS: frozenset[str] = frozenset(rule for rule, _ in RULES)
# Listed for partners that still branch on them, never raised any more.
RETIRED_RULES: frozenset[str] = frozenset({"same_priority"})

# A violation found while replaying: the offending event, its rule, the text.
Violation = tuple[ev.LedgerEvent, str, str]

_OPEN, _RESOLVED, _CLOSED = "open", "resolved", "closed"


def first_violation(timeline: Iterable[ev.LedgerEvent]) -> Violation | None:
    """Replay events in timeline order through the incident state machine and
    return the first one it refuses, or None.

    `timeline` must be sorted by timeline_key with retracted events and
    retractions removed. An unretracted `voided` may stay in as a marker: it
    changes no state but its date must respect before_opened/after_closed.

    Only order-dependent rules live here. Rules about an event on its own
    (actor roles, root causes, services) are checked once, when the event is
    appended, so that a later amendment of the terms cannot wedge a stored
    incident.
    """
    # Plain locals rather than a state object: this runs on every append.
    status = ""  # "" until opened
    holder = ""
    pending: tuple[str, str] | None = None  # (sender, receiver) of a rejectable handoff
    paused = outage = False
    for event in timeline:
        payload, kind = event.payload, event.type
        if not status:
            if not isinstance(payload, ev.Opened):
                return event, "before_opened", f"{kind} dated before the incident is opened"
            status, holder = _OPEN, payload.custody
            continue
        if status == _CLOSED and not isinstance(payload, ev.RootCauseAssigned):
            return event, "after_closed", f"{kind} after closed"
        match payload:
            case ev.Opened():
                return event, "already_opened", "opened twice"
            case ev.Responded():
                if status == _RESOLVED:
                    return event, "responded_after_resolved", "responded while resolved"
            case ev.HandedOff(to=to):
                if event.actor != holder:
                    return (event, "not_custody_holder",
                            f"handed_off by {event.actor!r}, custody holder is {holder!r}")
                if to == holder:
                    return (event, "invalid_handoff_target",
                            f"handed_off to {to!r}, who already holds custody")
                pending, holder = (holder, to), to
            case ev.HandoffRejected():
                if pending is None:
                    return event, "no_pending_handoff", "handoff_rejected with no pending handoff"
                if event.actor != pending[1]:
                    return (event, "not_handoff_receiver",
                            f"handoff_rejected by {event.actor!r}, "
                            f"the last handoff went to {pending[1]!r}")
                holder, pending = pending[0], None
            case ev.ClockPaused():
                if paused:
                    return event, "already_paused", "clock_paused while already paused"
                paused = True
            case ev.ClockResumed():
                if not paused:
                    return event, "not_paused", "clock_resumed while not paused"
                paused = False
            case ev.PriorityChanged():
                # A change to the priority it already has is accepted and
                # changes nothing (10.19): partner systems re-send fields.
                pass
            case ev.OutageStarted():
                if outage:
                    return (event, "outage_already_open",
                            "outage_started while an outage is open")
                outage = True
            case ev.OutageEnded():
                if not outage:
                    return event, "no_open_outage", "outage_ended while no outage is open"
                outage = False
            case ev.Resolved():
                if status != _OPEN:
                    return event, "already_resolved", "resolved while already resolved"
                status = _RESOLVED
            case ev.Reopened():
                if status != _RESOLVED:
                    return event, "not_resolved", "reopened while not resolved"
                status = _OPEN
            case ev.Closed():
                if status != _RESOLVED:
                    return event, "not_resolved", "closed while not resolved"
                if outage:
                    return event, "outage_open_at_close", "closed while an outage is open"
                status = _CLOSED
            case _:
                # root_cause_assigned and a void marker change no state here.
                pass
    return None
