"""The write-side invariant: may this event be appended? (spec sections 1, 3,
4 and 10.1-10.7)

Pure functions: no I/O, no clock (the caller passes `now`), no logging. They
return None when the event may be stored and raise otherwise:
- NotFound: the incident (for a non-`opened` event) or its agreement is unknown;
- InvalidArgument: a field is malformed whatever the timeline (a priority
  outside P1..P4, a maintenance window that does not end after it starts);
- TimelineViolation(rule, message): anything else; `rule` is one of RULES.

Validity is judged on the re-sorted timeline, never on arrival order: the
candidate is merged into the stored events by (occurred_at, position) and the
timeline is folded through the incident state machine
(incident_state.evolve). A late event is therefore accepted exactly when the
timeline stays valid with it, and a violation may surface at a stored event
the candidate invalidates; the message then names that event by type and
position. An event that lands at the end of the timeline, the usual case, is
judged on the folded state of the stored events alone (check_appended).
The checks of one event on its own are in ledger.domain.validation_rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, TermsVersion
from ledger.domain.claims import ANSWER_TYPES, Authority
from ledger.domain.errors import InvalidArgument, NotFound, TimelineViolation
from ledger.domain.incident_state import IncidentState, evolve, validity_state
from ledger.domain.instants import format_instant
from ledger.domain.terms_parsing import check_terms
from ledger.domain.timeline import EffectiveTimeline, effective_timeline, opened_event
from ledger.domain.validation_rules import (
    RULE_IDS,
    RULES,
    check_answer,
    check_event_alone,
    check_not_before_opened,
    check_not_future,
    check_not_voided,
    check_party,
    check_retraction,
    incident_terms,
    raise_at,
)

__all__ = [
    "RULES",
    "RULE_IDS",
    "check_amendment",
    "check_appended",
    "check_incident_event",
    "check_incident_timeline",
    "check_maintenance_event",
]


def check_incident_event(
    history: AgreementHistory | None,
    stored: Sequence[ev.LedgerEvent],
    new: ev.LedgerEvent,
    *,
    now: int,
    max_skew: int,
    as_stored: ev.LedgerEvent | None = None,
) -> IncidentState:
    """Raise unless `new` may be appended to the incident whose stored events
    (any order, positions set) are `stored`; return the incident's validity
    state with it (folding `as_stored`, the event as it will be stored, if
    given). The full check: the whole timeline is folded again.

    `history` is the agreement named by `new` for `opened`, else the
    incident's agreement; None means it is unknown. `new` is unstored
    (position 0), so it sorts after stored events with the same occurred_at.
    """
    record = new if as_stored is None else as_stored
    opened = opened_event(stored)
    if isinstance(new.payload, ev.Opened):
        if stored:
            raise TimelineViolation(
                "already_opened", f"incident {new.incident_id!r} is already opened"
            )
        opened, agreement_id = new, new.agreement_id
    elif opened is None:
        raise NotFound("incident", new.incident_id)
    else:
        agreement_id = opened.agreement_id
    if history is None:
        raise NotFound("agreement", agreement_id)
    check_not_future(new, now, max_skew)
    terms = incident_terms(history, opened)
    authority = Authority.of(terms)
    check_not_voided(effective_timeline(stored), new, authority)
    check_event_alone(history, terms, new)
    check_not_before_opened(new, opened)
    if isinstance(new.payload, ANSWER_TYPES):
        # Answers change no state and are accepted in any state (11.3).
        check_answer(effective_timeline(stored), new, authority)
        return validity_state([*stored, record])
    after = validity_state([*stored, record])
    found = after.violation
    if isinstance(new.payload, ev.Retracted):
        target = check_retraction(stored, new)
        # Spec 10.6: the retraction must leave a valid timeline. The stored
        # timeline is valid, so a violation here is an event that depended on
        # the target.
        if found is not None:
            event, _, message = found
            raise TimelineViolation(
                "target_has_dependents",
                f"retracting {target.type} at position {target.position} would make "
                f"{event.type} at position {event.position} invalid: {message}",
            )
        return after
    if found is not None:
        event, rule, message = found
        if event is not record:
            # A late event that breaks a later stored one: name both.
            message = (
                f"{new.type} dated {format_instant(new.occurred_at)} would make "
                f"{event.type} at position {event.position} invalid: {message}"
            )
        raise TimelineViolation(rule, message)
    return after


def check_appended(
    history: AgreementHistory | None,
    state: IncidentState,
    new: ev.LedgerEvent,
    *,
    now: int,
    max_skew: int,
    stored: Callable[[], Sequence[ev.LedgerEvent]],
    as_stored: ev.LedgerEvent | None = None,
) -> IncidentState:
    """check_incident_event, given `state`, the validity state of the stored
    events (incident_state.validity_state), which `stored` returns on demand.

    An event that lands at the end of the timeline (dated at or after every
    event that counts) is judged on the state alone, in time independent of
    the timeline's length (an answer reads the incident's claims and answers
    only); a late event, a retraction or an `opened` is checked in full on
    the stored events. Same verdicts, rule ids and messages either way.
    """
    record = new if as_stored is None else as_stored
    opened = state.opened
    if (opened is None or state.violation is not None
            or isinstance(new.payload, ev.Opened | ev.Retracted)
            or (state.last_at is not None and new.occurred_at < state.last_at)):
        return check_incident_event(history, stored(), new, now=now, max_skew=max_skew,
                                    as_stored=record)
    if history is None:
        raise NotFound("agreement", opened.agreement_id)
    check_not_future(new, now, max_skew)
    terms = incident_terms(history, opened)
    authority = Authority.of(terms)
    # All the claim rules read: what judge() needs for the claims and the
    # answers, and the voids (every event counts at an instant at the end).
    claims = EffectiveTimeline(state.claim_events, bool(state.voids), frozenset(), state.voids)
    check_not_voided(claims, new, authority)
    check_event_alone(history, terms, new)
    check_not_before_opened(new, opened)
    if isinstance(new.payload, ANSWER_TYPES):
        check_answer(claims, new, authority)
        return evolve(state, record)
    after = evolve(state, record)
    if after.violation is not None:
        _, rule, message = after.violation
        raise TimelineViolation(rule, message)
    return after


def check_incident_timeline(  # noqa: C901  every rule judged for each event in arrival order, in one pass
    history: AgreementHistory | None, stored: Sequence[ev.LedgerEvent]
) -> None:
    """Fresh full validation of a stored incident as a whole (audits, imports,
    tests): every rule of check_incident_event except the clock skew, judged
    on the final timeline rather than append by append. Arrival order (the
    positions) matters only for ties and for the void and retraction rules.

    Unlike appends, this re-checks every event against the terms at
    opened_at, so an amendment recorded later with an earlier effective_from
    can make it fail for an incident that still accepts appends.
    """
    if not stored:
        return
    by_arrival = sorted(stored, key=lambda e: e.position)
    opened = by_arrival[0]
    if not isinstance(opened.payload, ev.Opened):
        raise_at(opened, "before_opened", f"{opened.type} recorded before the incident's opened")
    if history is None:
        raise NotFound("agreement", opened.agreement_id)
    terms = incident_terms(history, opened)
    authority = Authority.of(terms)
    for index, event in enumerate(by_arrival):
        payload = event.payload
        if index and isinstance(payload, ev.Opened):
            raise_at(event, "already_opened", "opened twice")
        if event.occurred_at < opened.occurred_at:
            raise_at(event, "before_opened", f"{event.type} dated before opened")
        earlier = by_arrival[:index]
        try:
            if index:
                check_not_voided(effective_timeline(earlier), event, authority)
            check_event_alone(history, terms, event)
            if isinstance(payload, ev.Retracted):
                check_retraction(earlier, event)
            elif isinstance(payload, ANSWER_TYPES):
                check_answer(effective_timeline(earlier), event, authority)
        except TimelineViolation as exc:
            raise_at(event, exc.rule, exc.message)
    found = validity_state(stored).violation
    if found is not None:
        event, rule, message = found
        raise_at(event, rule, message)


def check_maintenance_event(
    history: AgreementHistory | None, new: ev.LedgerEvent, *, now: int, max_skew: int
) -> None:
    """Raise unless a maintenance_scheduled event may be appended.

    Judged against the terms in force at the window's start: those are the
    terms of the period whose availability the window affects (spec 10.13).
    """
    if history is None:
        raise NotFound("agreement", new.agreement_id)
    payload = new.payload
    if not isinstance(payload, ev.MaintenanceScheduled):
        raise InvalidArgument("type", f"expected maintenance_scheduled, got {new.type}")
    if payload.end <= payload.start:
        raise InvalidArgument("end", "must be after start")
    check_not_future(new, now, max_skew)
    terms = history.terms_at(payload.start)
    if terms is None:
        raise TimelineViolation(
            "before_effective_from",
            f"maintenance starts at {format_instant(payload.start)}, before agreement "
            f"{history.agreement_id!r} is in force "
            f"({format_instant(history.effective_from)})",
        )
    check_party(history, terms, new)
    if payload.service not in terms.services:
        raise TimelineViolation(
            "unknown_service",
            f"service {payload.service!r} is not a service of agreement "
            f"{history.agreement_id!r}",
        )


def check_amendment(history: AgreementHistory, new: ev.LedgerEvent) -> AgreementHistory:
    """Raise unless the amendment `new` may be stored; returns the history
    with it. It may not take effect before the agreement, and every version
    must stay consistent once it is applied in effective_from order (10.18):
    an amendment that arrives late can change the terms later ones apply to.
    """
    payload = new.payload
    if not isinstance(payload, ev.AgreementAmended):
        raise InvalidArgument("type", f"expected agreement_amended, got {new.type}")
    if payload.effective_from < history.effective_from:
        raise InvalidArgument("effective_from", "an amendment cannot take effect before the agreement")
    # Unstored: it sorts after every stored version with its effective_from.
    version = TermsVersion(payload.effective_from, history.versions[0].terms, new.event_id,
                           2**62, payload.changes)
    amended = AgreementHistory(history.agreement_id, (*history.versions, version),
                               history.maintenance)
    for resolved in amended.versions:
        if resolved.effective_from < payload.effective_from:
            continue
        try:
            check_terms(resolved.terms, "terms")
        except InvalidArgument as exc:
            if resolved.position == version.position:
                raise
            raise InvalidArgument(exc.field, (
                f"{exc.message}, in the terms from {format_instant(resolved.effective_from)} "
                f"once the amendment stored at position {resolved.position} applies on top "
                "of this one")) from None
    return amended
