"""Claims and their answers (spec section 11).

A statement that would lower what the customer is owed or move a share onto
another provider is a *claim*: it counts only once every org it awaits has
accepted it, or once the agreement's dispute window has passed without a
dispute. `judge` is the one place that decides, at an evaluation instant T,
which claims are in effect; the SLA fold and the write-side validation both
ask it, so the figures and the authority checks cannot drift apart.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ledger.domain import events as ev
from ledger.domain.agreements import (
    PRIORITIES,
    ROOT_CAUSE_CUSTOMER,
    ROOT_CAUSE_THIRD_PARTY,
    AgreementHistory,
    AgreementTerms,
)
from ledger.domain.timeline import EffectiveTimeline

ClaimStateName = Literal["in_effect", "open", "disputed", "awaiting"]
ANSWER_TYPES = (ev.ClaimAccepted, ev.ClaimDisputed)
# P1 is the highest priority: a larger rank is a lower priority.
_RANK = {p: i for i, p in enumerate(PRIORITIES)}


@dataclass(frozen=True, slots=True)
class Authority:
    """What the claim rules need from the terms in force at an incident's
    opened_at (11.4, reading 29)."""

    customer: str
    dispute_window: int | None

    @classmethod
    def of(cls, terms: AgreementTerms) -> Authority:
        return cls(terms.customer, terms.dispute_window)

    @classmethod
    def for_incident(cls, history: AgreementHistory, opened_at: int) -> Authority:
        # An incident opened before the agreement is refused on write; the
        # first terms are the closest answer for one built in code.
        terms = history.terms_at(opened_at) or history.versions[0].terms
        return cls.of(terms)

    def deemed_at(self, claimed_at: int) -> int | None:
        return None if self.dispute_window is None else claimed_at + self.dispute_window


def is_answer(payload: ev.Payload) -> bool:
    return isinstance(payload, ANSWER_TYPES)


def root_cause_of(payload: ev.Payload) -> str | None:
    if isinstance(payload, ev.Resolved | ev.RootCauseAssigned):
        return payload.root_cause or None
    return None


def may_be_claim(payload: ev.Payload) -> bool:
    """Whether an event of this kind can be a claim at some instant."""
    return root_cause_of(payload) is not None or isinstance(
        payload, ev.Voided | ev.PriorityChanged
    )


def awaits(event: ev.LedgerEvent, authority: Authority, priority_before: str) -> tuple[str, ...]:
    """The orgs whose answer the event awaits (11.2); () when it is not a
    claim and takes effect at once. `priority_before` is the priority in
    effect just before the event."""
    actor, customer = event.actor, authority.customer
    payload = event.payload
    root_cause = root_cause_of(payload)
    if root_cause is not None:
        if root_cause == actor:
            return ()  # an admission
        if root_cause in (ROOT_CAUSE_CUSTOMER, ROOT_CAUSE_THIRD_PARTY):
            return () if actor == customer else (customer,)
        return (root_cause,)
    if isinstance(payload, ev.Voided):
        return () if actor == customer else (customer,)
    if isinstance(payload, ev.PriorityChanged):
        lower = _RANK.get(payload.priority, 0) > _RANK.get(priority_before, 0)
        return (customer,) if lower and actor != customer else ()
    return ()


def claimed(payload: ev.Payload) -> tuple[tuple[str, str], ...]:
    """What the claim states, as (field, value) pairs."""
    root_cause = root_cause_of(payload)
    if root_cause is not None:
        return (("root_cause", root_cause),)
    if isinstance(payload, ev.PriorityChanged):
        return (("priority", payload.priority),)
    if isinstance(payload, ev.Voided):
        return (("reason", payload.reason),) if payload.reason else ()
    return ()


@dataclass(frozen=True, slots=True)
class Answer:
    actor: str
    accepted: bool
    occurred_at: int


@dataclass(frozen=True, slots=True)
class ClaimState:
    """One claim as it stands at T."""

    event_id: str
    type: str
    claimed_by: str
    occurred_at: int
    position: int
    claim: tuple[tuple[str, str], ...]
    awaits: tuple[str, ...]
    accepted_by: tuple[str, ...]
    disputed_by: tuple[str, ...]
    # occurred_at + dispute_window; None without a window (never deemed).
    deemed_instant: int | None
    in_effect: bool
    # In effect because every awaited org accepted it (not by the window).
    accepted: bool

    @property
    def awaiting(self) -> tuple[str, ...]:
        """The awaited orgs that have not accepted (11.7)."""
        return tuple(org for org in self.awaits if org not in self.accepted_by)

    @property
    def state(self) -> ClaimStateName:
        if self.in_effect:
            return "in_effect"
        if self.disputed_by:
            return "disputed"
        return "awaiting" if self.deemed_instant is None else "open"

    @property
    def deemed_at(self) -> int | None:
        """The deemed instant as reported: null once disputed or accepted,
        and without a window (11.7)."""
        if self.disputed_by or self.accepted:
            return None
        return self.deemed_instant


def _judge_one(
    event: ev.LedgerEvent,
    awaited: tuple[str, ...],
    answers: Sequence[Answer],
    authority: Authority,
    evaluated_at: int | None,
) -> ClaimState:
    """11.5: accepted by every awaited org by T, or T at or past the deemed
    instant with no dispute by an awaited org before it."""
    known = [
        a for a in answers
        if a.actor in awaited and (evaluated_at is None or a.occurred_at <= evaluated_at)
    ]
    accepted_by = tuple(sorted({a.actor for a in known if a.accepted}))
    disputed_by = tuple(sorted({a.actor for a in known if not a.accepted}))
    deemed = authority.deemed_at(event.occurred_at)
    accepted = set(awaited) <= set(accepted_by)
    deemed_in_effect = (
        deemed is not None
        and (evaluated_at is None or evaluated_at >= deemed)
        and not any(not a.accepted and a.occurred_at < deemed for a in known)
    )
    return ClaimState(
        event_id=event.event_id, type=event.type, claimed_by=event.actor,
        occurred_at=event.occurred_at, position=event.position, claim=claimed(event.payload),
        awaits=awaited, accepted_by=accepted_by, disputed_by=disputed_by,
        deemed_instant=deemed, in_effect=accepted or deemed_in_effect, accepted=accepted,
    )


@dataclass(frozen=True, slots=True)
class Judged:
    """An incident's timeline at T with the claim rules applied."""

    # What counts at T, in timeline order: events with occurred_at <= T,
    # without answers and without claims not in effect (a `resolved` whose
    # root cause is not in effect stays, without its root cause: 11.2).
    entries: tuple[ev.LedgerEvent, ...]
    voided: bool
    claims: tuple[ClaimState, ...]
    # Every instant at which a claim could be deemed accepted: the judgement
    # can change there as well as at events.
    deemed_instants: tuple[int, ...]


def answers_by_target(events: Iterable[ev.LedgerEvent]) -> dict[str, list[Answer]]:
    out: dict[str, list[Answer]] = {}
    for event in events:
        payload = event.payload
        if isinstance(payload, ANSWER_TYPES):
            out.setdefault(payload.target_event_id, []).append(
                Answer(event.actor, isinstance(payload, ev.ClaimAccepted), event.occurred_at)
            )
    return out


def judge(
    timeline: EffectiveTimeline, authority: Authority, evaluated_at: int | None
) -> Judged:
    """Apply 11.2-11.6 to an effective timeline (retractions applied, so a
    retracted answer or claim counts as never given)."""
    counted = [
        e for e in timeline.entries if evaluated_at is None or e.occurred_at <= evaluated_at
    ]
    answers = answers_by_target(counted)
    entries: list[ev.LedgerEvent] = []
    claims: list[ClaimState] = []
    priority = ""
    for event in counted:
        payload = event.payload
        if isinstance(payload, ev.Opened):
            priority = payload.priority
        if is_answer(payload):
            continue
        awaited = awaits(event, authority, priority) if may_be_claim(payload) else ()
        if awaited:
            state = _judge_one(event, awaited, answers.get(event.event_id, ()), authority,
                               evaluated_at)
            claims.append(state)
            if not state.in_effect:
                if isinstance(payload, ev.Resolved):
                    # Only the root cause is the claim: the resolution
                    # itself stops the clocks at once.
                    entries.append(replace(event, payload=ev.Resolved(root_cause=None)))
                continue
        if isinstance(payload, ev.PriorityChanged):
            priority = payload.priority
        entries.append(event)
    voided = False
    for void in timeline.voids:
        awaited = awaits(void, authority, priority)
        if not awaited:
            voided = True
            continue
        state = _judge_one(void, awaited, answers.get(void.event_id, ()), authority,
                           evaluated_at)
        voided = voided or state.in_effect
        # A void is on the record whatever its date (10.8), so one dated
        # after T is still a claim at T, listed while not in effect (11.7).
        claims.append(state)
    claims.sort(key=lambda c: (c.occurred_at, c.position))
    return Judged(tuple(entries), voided, tuple(claims), _deemed_instants(timeline, authority))


def _deemed_instants(timeline: EffectiveTimeline, authority: Authority) -> tuple[int, ...]:
    """The instants at which an unanswered claim is deemed accepted and can
    change a judgement (none without a dispute window)."""
    window = authority.dispute_window
    if window is None:
        return ()
    every_answer = answers_by_target(timeline.entries)
    return tuple(sorted({
        e.occurred_at + window
        for e in (*timeline.entries, *timeline.voids)
        if _deemed_may_matter(e, authority, every_answer.get(e.event_id, ()), window)
    }))


def _deemed_may_matter(
    event: ev.LedgerEvent, authority: Authority, answers: Sequence[Answer], window: int
) -> bool:
    """Whether the event's deemed instant can change a judgement: it is a
    claim at some instant, not already settled by then by an acceptance or
    a dispute. Whether a provider's priority change is a lowering depends on
    the claims before it, so any is taken to be one."""
    if isinstance(event.payload, ev.PriorityChanged):
        awaited: tuple[str, ...] = (
            () if event.actor == authority.customer else (authority.customer,)
        )
    elif may_be_claim(event.payload):
        awaited = awaits(event, authority, "")
    else:
        return False
    if not awaited:
        return False
    deemed = event.occurred_at + window
    answered = [a for a in answers if a.actor in awaited and a.occurred_at <= deemed]
    if any(not a.accepted and a.occurred_at < deemed for a in answered):
        return False
    return not set(awaited) <= {a.actor for a in answered if a.accepted}


def void_in_effect(
    timeline: EffectiveTimeline, authority: Authority, at: int
) -> ev.LedgerEvent | None:
    """The first void in effect at `at` (11.6), judged on the stored answers
    whatever their date up to `at`; None if no void is."""
    answers = answers_by_target(e for e in timeline.entries if e.occurred_at <= at)
    for void in timeline.voids:
        awaited = awaits(void, authority, "")
        if not awaited:
            return void
        if _judge_one(void, awaited, answers.get(void.event_id, ()), authority, at).in_effect:
            return void
    return None


def claim_at(
    timeline: EffectiveTimeline, authority: Authority, event_id: str, at: int
) -> ClaimState | None:
    """The claim `event_id` as judged at `at` (not before its own
    occurred_at), or None if that event is not a claim there."""
    target = next(
        (e for e in (*timeline.entries, *timeline.voids) if e.event_id == event_id), None
    )
    if target is None or not may_be_claim(target.payload):
        return None
    when = max(at, target.occurred_at)
    judged = judge(timeline, authority, when)
    return next((c for c in judged.claims if c.event_id == event_id), None)
