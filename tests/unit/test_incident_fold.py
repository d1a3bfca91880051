"""The incident fold (ledger.domain.incident_state): an event judged on the
folded state of the stored events (check_appended, the write path's check)
gets exactly the verdict of a full re-validation of the re-sorted timeline
(check_incident_event), for random histories with late events, retractions,
voids, claims and answers; and the folded state carried along equals the
state folded afresh."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application.incident_states import IncidentStates
from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, AgreementTerms, Money, TermsVersion
from ledger.domain.claims import may_be_claim
from ledger.domain.errors import DomainError
from ledger.domain.incident_state import INITIAL, IncidentState, catch_up, validity_state
from ledger.domain.instants import MICROS_PER_DAY, MICROS_PER_MINUTE, parse_instant
from ledger.domain.validation import check_appended, check_incident_event

MIN, DAY = MICROS_PER_MINUTE, MICROS_PER_DAY
EFFECTIVE = parse_instant("2026-09-01T00:00:00Z")
T0 = parse_instant("2026-10-01T09:00:00Z")
NOW = T0 + 30 * DAY
SKEW = 5 * MIN
ACTORS = ("cust", "pa", "pb", "pc", "cust", "pa", "pb", "stranger")
TARGETS = ("pa", "pb", "pc", "cust")
CAUSES = ("pa", "pb", "customer", "third_party", "cust")
KINDS = (
    *("responded", "handed_off", "handoff_rejected", "clock_paused", "clock_resumed") * 4,
    *("outage_started", "outage_ended", "resolved", "reopened", "retracted") * 4,
    *("claim_accepted", "claim_disputed", "priority_changed", "root_cause_assigned") * 4,
    "closed", "voided", "voided", "opened",
)


def history(window: int | None) -> AgreementHistory:
    terms = AgreementTerms(
        customer="cust", providers=("pa", "pb", "pc"), timezone="UTC",
        monthly_charge=Money("GBP", 100_00), at_risk_percent=Decimal(10), policy="custody",
        services=("net", "desk"), calendars=(), service_levels=(),
        dispute_window=window,
    )
    return AgreementHistory("agr", (TermsVersion(EFFECTIVE, terms),))


def payload(kind: str, aux: int, stored: list[ev.LedgerEvent]) -> ev.Payload:  # noqa: PLR0911  one case per event type
    earlier = [e.event_id for e in stored]
    if kind.startswith("claim_"):
        # Mostly answers to claims, so that the answer rules are reached.
        earlier = [e.event_id for e in stored if may_be_claim(e.payload)] or earlier
    pick = earlier[-1 - aux % len(earlier)] if earlier and aux % 11 else "nope"
    match kind:
        case "opened":
            return ev.Opened("net", "P2", TARGETS[aux % 3])
        case "handed_off":
            return ev.HandedOff(TARGETS[aux % 4])
        case "priority_changed":
            return ev.PriorityChanged(f"P{aux % 4 + 1}")
        case "resolved":
            return ev.Resolved(root_cause=None if aux % 2 else CAUSES[aux % 5])
        case "root_cause_assigned":
            return ev.RootCauseAssigned(CAUSES[aux % 5])
        case "retracted":
            return ev.Retracted(pick)
        case "claim_accepted":
            return ev.ClaimAccepted(pick)
        case "claim_disputed":
            return ev.ClaimDisputed(pick, "no")
        case _:
            return ev.PAYLOAD_TYPES[kind]()  # type: ignore[call-arg]


Verdict = tuple[str, str, str]


def verdict(exc: DomainError | None) -> Verdict:
    if exc is None:
        return ("accepted", "", "")
    return (type(exc).__name__, getattr(exc, "rule", ""), str(exc))


def full_check(agreement: AgreementHistory, stored: list[ev.LedgerEvent],
               event: ev.LedgerEvent) -> Verdict:
    try:
        check_incident_event(agreement, stored, event, now=NOW, max_skew=SKEW)
    except DomainError as exc:
        return verdict(exc)
    return verdict(None)


def folded_check(agreement: AgreementHistory, state: IncidentState,
                 stored: list[ev.LedgerEvent], event: ev.LedgerEvent,
                 record: ev.LedgerEvent) -> tuple[Verdict, IncidentState]:
    try:
        after = check_appended(agreement, state, event, now=NOW, max_skew=SKEW,
                               stored=lambda: stored, as_stored=record)
    except DomainError as exc:
        return verdict(exc), state
    return verdict(None), after


steps = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 40), st.sampled_from(ACTORS),
              st.integers(0, 1000), st.booleans()),
    min_size=5, max_size=60,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, window=st.sampled_from([None, 0, 5 * MIN, 30 * MIN]))
def test_the_folded_state_judges_as_a_full_revalidation(
    script: list[tuple[str, int, str, int, bool]], window: int | None,
) -> None:
    agreement = history(window)
    stored: list[ev.LedgerEvent] = []
    state = INITIAL
    minute = 0
    for index, (kind, step, actor, aux, late) in enumerate([("opened", 0, "cust", 0, False),
                                                            *script]):
        # Mostly in time order, as partners send; a late one now and then.
        when = max(0, minute - step) if late else minute + step % 5
        minute = max(minute, when)
        event = ev.LedgerEvent(
            event_id=f"e{index}", agreement_id="agr" if kind == "opened" else "",
            incident_id="INC-1", occurred_at=T0 + when * MIN, actor=actor,
            payload=payload(kind, aux, stored),
        )
        record = replace(event, position=len(stored) + 1)
        full = full_check(agreement, stored, event)
        folded, after = folded_check(agreement, state, stored, event, record)
        assert folded == full, (kind, when, actor)
        if full[0] == "accepted":
            stored.append(record)
            state = after
            assert state == validity_state(stored)
    # A state advanced by the events stored after it equals one folded afresh,
    # or says it cannot be advanced (a late event or a retraction among them).
    for cut in range(len(stored) + 1):
        advanced = catch_up(validity_state(stored[:cut]), stored[cut:])
        assert advanced is None or advanced == validity_state(stored)


def _stream(*kinds: tuple[ev.Payload, int, str]) -> list[ev.LedgerEvent]:
    return [ev.LedgerEvent(f"s{i}", "agr" if isinstance(p, ev.Opened) else "", "INC-1",
                           T0 + minute * MIN, actor, p, position=i + 1)
            for i, (p, minute, actor) in enumerate(kinds)]


def test_states_are_cached_by_stream_version_and_advanced_or_folded_anew() -> None:
    events = _stream((ev.Opened("net", "P2", "pa"), 0, "cust"), (ev.Responded(), 5, "pa"),
                     (ev.ClockPaused(), 6, "cust"), (ev.ClockResumed(), 9, "cust"),
                     (ev.ClockPaused(), 3, "cust"), (ev.Retracted("s4"), 10, "cust"))
    states = IncidentStates(capacity=2)
    assert states.state_of("i", events[:2]) == validity_state(events[:2])
    assert states.state_of("i", events[:2]) == validity_state(events[:2])
    assert (states.hits, states.folded) == (1, 1)
    # Written since (by this process or another): advanced, not folded.
    assert states.state_of("i", events[:4]) == validity_state(events[:4])
    assert (states.advanced, states.folded) == (1, 1)
    # A late event, then a retraction: only a fold afresh is right.
    assert states.state_of("i", events[:5]) == validity_state(events[:5])
    assert states.state_of("i", events) == validity_state(events)
    assert (states.advanced, states.folded) == (1, 3)
    # Another stream at the same version is never mistaken for the cached one.
    other = [*events[:3], replace(events[3], event_id="x")]
    assert states.state_of("i", other) == validity_state(other)
    assert states.folded == 4
    # Bounded: the least recently used stream goes first.
    states.state_of("j", events[:1])
    states.state_of("k", events[:1])
    assert states.state_of("i", other) == validity_state(other)
    assert states.folded == 7
