"""The write-side rules: the catalogue of rule ids validation reports (spec
sections 4, 10.1-10.7 and 11) and the checks of one event that raise them
(its parties and fields, a void in effect, an answer's claim, a retraction's
target). Where and in which order they apply is ledger.domain.validation's;
the order-dependent rules are the incident state machine's
(ledger.domain.incident_state).

Rule ids are API: the gRPC layer returns them to partners, whose systems
branch on them. Never rename or reuse one; add new ones at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from ledger.domain import events as ev
from ledger.domain.agreements import (
    PRIORITIES,
    ROOT_CAUSE_CUSTOMER,
    ROOT_CAUSE_THIRD_PARTY,
    AgreementHistory,
    AgreementTerms,
)
from ledger.domain.claims import ANSWER_TYPES, Authority, claim_at, void_in_effect
from ledger.domain.errors import InvalidArgument, TimelineViolation
from ledger.domain.instants import format_duration, format_instant
from ledger.domain.timeline import EffectiveTimeline

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


def raise_at(event: ev.LedgerEvent, rule: str, message: str) -> NoReturn:
    raise TimelineViolation(rule, f"{event.type} at position {event.position}: {message}")


def check_not_before_opened(new: ev.LedgerEvent, opened: ev.LedgerEvent) -> None:
    if new.occurred_at < opened.occurred_at:
        raise TimelineViolation(
            "before_opened",
            f"{new.type} dated {format_instant(new.occurred_at)}, before the incident "
            f"was opened at {format_instant(opened.occurred_at)}",
        )


def check_not_future(new: ev.LedgerEvent, now: int, max_skew: int) -> None:
    if new.occurred_at > now + max_skew:
        raise TimelineViolation(
            "future_event",
            f"occurred_at {format_instant(new.occurred_at)} is more than "
            f"{format_duration(max_skew)} ahead of the ledger clock ({format_instant(now)})",
        )


def check_not_voided(
    timeline: EffectiveTimeline, new: ev.LedgerEvent, authority: Authority
) -> None:
    """Spec 10.7 and 11.6: a void in effect at the new event's occurred_at
    blocks it, even one dated before the void; only the void's own
    retraction is accepted. A void still awaiting the customer blocks
    nothing, so a provider's pending void never freezes an incident."""
    void = void_in_effect(timeline, authority, new.occurred_at)
    if void is None:
        return
    payload = new.payload
    if isinstance(payload, ev.Retracted) and payload.target_event_id == void.event_id:
        return
    raise TimelineViolation(
        "incident_voided",
        f"{new.type} refused: incident {new.incident_id!r} is voided "
        f"(only a retraction of the void is accepted)",
    )


def check_answer(
    timeline: EffectiveTimeline, new: ev.LedgerEvent, authority: Authority
) -> None:
    """Spec 11.3: an answer names a stored claim of the incident, comes from
    an org the claim awaits that has not answered it yet, and a dispute comes
    before the claim's deemed instant."""
    payload = new.payload
    assert isinstance(payload, ANSWER_TYPES)
    target_id = payload.target_event_id
    claim = claim_at(timeline, authority, target_id, new.occurred_at)
    if claim is None:
        raise TimelineViolation(
            "not_a_claim",
            f"{new.type} names {target_id!r}, not a stored claim of incident "
            f"{new.incident_id!r} (sla-semantics 11.3: only a claim is answered)",
        )
    if new.actor not in claim.awaits:
        raise TimelineViolation(
            "not_awaited",
            f"{new.type} by {new.actor!r}: claim {target_id!r} ({claim.type} by "
            f"{claim.claimed_by!r}) awaits {', '.join(repr(o) for o in claim.awaits)} "
            f"(sla-semantics 11.3)",
        )
    for event in timeline.entries:
        answer = event.payload
        if (isinstance(answer, ANSWER_TYPES) and answer.target_event_id == target_id
                and event.actor == new.actor):
            raise TimelineViolation(
                "already_answered",
                f"{new.actor!r} already answered claim {target_id!r} with {event.type} "
                f"at position {event.position}; retract that answer first "
                f"(sla-semantics 11.3)",
            )
    deemed = claim.deemed_instant
    if isinstance(payload, ev.ClaimDisputed) and deemed is not None and new.occurred_at >= deemed:
        raise TimelineViolation(
            "dispute_after_deemed",
            f"claim_disputed dated {format_instant(new.occurred_at)}: claim {target_id!r} "
            f"was deemed accepted at {format_instant(deemed)} (sla-semantics 11.3, 11.4)",
        )


def incident_terms(history: AgreementHistory, opened: ev.LedgerEvent) -> AgreementTerms:
    """Spec 3: an incident is measured (and validated) against the terms in
    force at its opened_at."""
    terms = history.terms_at(opened.occurred_at)
    if terms is None:
        raise TimelineViolation(
            "before_effective_from",
            f"opened at {format_instant(opened.occurred_at)}, before agreement "
            f"{history.agreement_id!r} takes effect at "
            f"{format_instant(history.effective_from)}",
        )
    return terms


def check_party(history: AgreementHistory, terms: AgreementTerms, event: ev.LedgerEvent) -> None:
    if event.actor != terms.customer and event.actor not in terms.providers:
        raise TimelineViolation(
            "not_a_party",
            f"{event.type} by {event.actor!r}, not a party of agreement {history.agreement_id!r}",
        )


def check_event_alone(
    history: AgreementHistory, terms: AgreementTerms, event: ev.LedgerEvent
) -> None:
    """The rules about an event on its own, whatever its place in the timeline."""
    if event.agreement_id and event.agreement_id != history.agreement_id:
        raise TimelineViolation(
            "wrong_agreement",
            f"{event.type} names agreement {event.agreement_id!r}, the incident belongs to "
            f"{history.agreement_id!r}",
        )
    check_party(history, terms, event)
    payload = event.payload
    providers = terms.providers
    match payload:
        case ev.Opened():
            check_priority(payload.priority)
            if payload.service not in terms.services:
                raise TimelineViolation(
                    "unknown_service",
                    f"service {payload.service!r} is not a service of agreement "
                    f"{history.agreement_id!r}",
                )
            if payload.custody not in providers:
                raise TimelineViolation(
                    "custody_not_provider",
                    f"opened with custody {payload.custody!r}, not a provider of agreement "
                    f"{history.agreement_id!r}",
                )
        case ev.Responded() | ev.Resolved() if event.actor not in providers:
            raise TimelineViolation(
                "not_a_provider",
                f"{event.type} by {event.actor!r}, not a provider of agreement "
                f"{history.agreement_id!r}",
            )
        case ev.HandedOff() if payload.to not in providers:
            raise TimelineViolation(
                "invalid_handoff_target",
                f"handed_off to {payload.to!r}, not a provider of agreement "
                f"{history.agreement_id!r}",
            )
        case ev.PriorityChanged():
            check_priority(payload.priority)
        case _:
            pass
    root_cause = getattr(payload, "root_cause", None)
    if root_cause is not None and root_cause not in (
        *providers, ROOT_CAUSE_CUSTOMER, ROOT_CAUSE_THIRD_PARTY
    ):
        raise TimelineViolation(
            "invalid_root_cause",
            f"root cause {root_cause!r} is not a provider of agreement "
            f"{history.agreement_id!r}, {ROOT_CAUSE_CUSTOMER!r} or {ROOT_CAUSE_THIRD_PARTY!r}",
        )


def check_priority(priority: str) -> None:
    # The codec already refuses these; events built in code must not slip by.
    if priority not in PRIORITIES:
        raise InvalidArgument("priority", f"must be one of P1..P4, got {priority!r}")


def check_retraction(
    earlier: Sequence[ev.LedgerEvent], new: ev.LedgerEvent
) -> ev.LedgerEvent:
    """Spec 10.6 and 11.1 on the target itself; returns it. `earlier` are the
    events stored before the retraction."""
    retraction = new.payload
    assert isinstance(retraction, ev.Retracted)
    target: ev.LedgerEvent | None = None
    for event in earlier:
        payload = event.payload
        if isinstance(payload, ev.Retracted) and payload.target_event_id == (
            retraction.target_event_id
        ):
            raise TimelineViolation(
                "already_retracted",
                f"event {retraction.target_event_id!r} is already retracted",
            )
        if event.event_id == retraction.target_event_id:
            target = event
    if target is None:
        raise TimelineViolation(
            "unknown_target",
            f"retracted names {retraction.target_event_id!r}, not a stored event of "
            f"this incident",
        )
    if isinstance(target.payload, ev.Opened):
        raise TimelineViolation(
            "cannot_retract_opened", "opened cannot be retracted (void the incident instead)"
        )
    if isinstance(target.payload, ev.Retracted):
        raise TimelineViolation("cannot_retract_retraction", "a retraction cannot be retracted")
    if target.actor != new.actor:
        raise TimelineViolation(
            "not_own_event",
            f"retracted by {new.actor!r} names {target.type} at position {target.position} "
            f"by {target.actor!r}: corrections are one's own (sla-semantics 11.1)",
        )
    return target
