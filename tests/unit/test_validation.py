"""The write-side invariant (ledger.domain.validation): one test per rule with
accept and reject cases, late events judged on the re-sorted timeline, the
worked scenario's rejections, and properties over random event sequences."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, AgreementTerms, Money, TermsVersion
from ledger.domain.claims import Authority, void_in_effect
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import InvalidArgument, NotFound, TimelineViolation
from ledger.domain.instants import MICROS_PER_DAY, MICROS_PER_MINUTE, parse_instant
from ledger.domain.terms_parsing import parse_terms
from ledger.domain.timeline import effective_timeline, timeline_key
from ledger.domain.validation import (
    RULE_IDS,
    RULES,
    check_incident_event,
    check_incident_timeline,
    check_maintenance_event,
)
from ledger.domain.validation_rules import RETIRED_RULES

MIN, DAY = MICROS_PER_MINUTE, MICROS_PER_DAY
EFFECTIVE = parse_instant("2026-09-01T00:00:00Z")
T0 = parse_instant("2026-10-01T09:00:00Z")
NOW = T0 + 30 * DAY
SKEW = 5 * MIN
TERMS = AgreementTerms(
    customer="cust", providers=("pa", "pb", "pc"), timezone="UTC",
    monthly_charge=Money("GBP", 100_00), at_risk_percent=Decimal(10), policy="custody",
    services=("net", "desk"), calendars=(), service_levels=(),
)
HISTORY = AgreementHistory("agr", (TermsVersion(EFFECTIVE, TERMS),))
REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "ledger" / "demo" / "herts-2026-10.json"
EXPECTED = REPO / "tests" / "data" / "herts-2026-10.expected.json"


class Incident:
    """One incident's stored events, appended only through the validator."""

    def __init__(self, incident_id: str = "INC-1", history: AgreementHistory = HISTORY) -> None:
        self.incident_id = incident_id
        self.history = history
        self.stored: list[ev.LedgerEvent] = []
        self.positions = itertools.count(1)
        self.ids = itertools.count(1)

    def make(self, payload: ev.Payload, minute: float, actor: str, **kw: str) -> ev.LedgerEvent:
        return ev.LedgerEvent(
            event_id=kw.get("event_id", f"{self.incident_id}-e{next(self.ids)}"),
            agreement_id=kw.get("agreement", "agr" if isinstance(payload, ev.Opened) else ""),
            incident_id=self.incident_id, occurred_at=T0 + int(minute * MIN), actor=actor,
            payload=payload,
        )

    def check(self, event: ev.LedgerEvent, *, now: int = NOW) -> None:
        check_incident_event(self.history, self.stored, event, now=now, max_skew=SKEW)

    def add(self, payload: ev.Payload, minute: float, actor: str = "pa", **kw: str) -> ev.LedgerEvent:
        event = self.make(payload, minute, actor, **kw)
        self.check(event)
        stored = replace(event, position=next(self.positions))
        self.stored.append(stored)
        return stored

    def reject(self, payload: ev.Payload, minute: float, actor: str = "pa", *, rule: str,
               **kw: str) -> str:
        with pytest.raises(TimelineViolation) as info:
            self.check(self.make(payload, minute, actor, **kw))
        assert info.value.rule == rule, info.value.message
        assert rule in RULE_IDS
        return info.value.message


def opened(custody: str = "pa", incident_id: str = "INC-1") -> Incident:
    incident = Incident(incident_id)
    incident.add(ev.Opened(service="net", priority="P2", custody=custody), 0, "cust")
    return incident


def resolved_and_closed() -> Incident:
    inc = opened()
    inc.add(ev.Resolved(), 10)
    inc.add(ev.Closed(), 20, "cust")
    return inc


# --- the catalogue ------------------------------------------------------------


def test_rules_catalogue_is_unique_snake_case_and_fully_tested() -> None:
    ids = [rule for rule, _ in RULES]
    assert len(ids) == len(set(ids)) == len(RULE_IDS)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", rule) for rule in ids)
    assert all(description and "\n" not in description for _, description in RULES)
    source = Path(__file__).read_text()
    untested = [rule for rule in ids if f'rule="{rule}"' not in source and rule not in RETIRED_RULES]
    assert not untested


# --- existence, agreement and clock ------------------------------------------------


def test_unknown_incident_and_unknown_agreement_are_not_found() -> None:
    inc = Incident()
    with pytest.raises(NotFound) as info:
        inc.check(inc.make(ev.Responded(), 1, "pa"))
    assert (info.value.kind, info.value.ident) == ("incident", "INC-1")
    with pytest.raises(NotFound) as info:
        check_incident_event(None, [], inc.make(ev.Opened("net", "P1", "pa"), 0, "cust"),
                             now=NOW, max_skew=SKEW)
    assert (info.value.kind, info.value.ident) == ("agreement", "agr")
    with pytest.raises(NotFound):
        check_incident_event(None, opened().stored, inc.make(ev.Responded(), 1, "pa"),
                             now=NOW, max_skew=SKEW)


def test_future_event() -> None:
    inc = opened()
    inc.check(inc.make(ev.Responded(), 5, "pa"), now=T0 + 5 * MIN - SKEW)  # exactly the skew
    with pytest.raises(TimelineViolation) as info:
        inc.check(inc.make(ev.Responded(), 5, "pa"), now=T0 + 5 * MIN - SKEW - 1)
    assert info.value.rule == "future_event"
    fresh = Incident("INC-2")
    with pytest.raises(TimelineViolation, match="ahead of the ledger clock"):
        fresh.check(fresh.make(ev.Opened("net", "P1", "pa"), 6, "cust"), now=T0)
    fresh.reject(ev.Opened("net", "P1", "pa"), 60 * 24 * 31, "cust", rule="future_event")


def test_already_opened() -> None:
    inc = opened()
    inc.reject(ev.Opened("net", "P1", "pa"), 5, "cust", rule="already_opened")


def test_wrong_agreement() -> None:
    inc = opened()
    inc.add(ev.Responded(), 1, "pa", agreement="agr")
    inc.reject(ev.Responded(), 2, "pa", agreement="other", rule="wrong_agreement")


def test_before_effective_from_uses_the_terms_at_opened_at() -> None:
    amended = replace(TERMS, providers=(*TERMS.providers, "pd"))
    history = AgreementHistory("agr", (TermsVersion(EFFECTIVE, TERMS),
                                       TermsVersion(T0 + 60 * MIN, amended)))
    Incident(history=history).reject(ev.Opened("net", "P1", "pa"), -(T0 - EFFECTIVE) / MIN - 1,
                                     "cust", rule="before_effective_from")
    Incident(history=history).add(ev.Opened("net", "P1", "pa"), -(T0 - EFFECTIVE) / MIN, "cust")
    before = Incident(history=history)
    before.add(ev.Opened("net", "P1", "pa"), 0, "cust")
    before.reject(ev.Responded(), 90, "pd", rule="not_a_party")  # pd joined after opened_at
    after = Incident(history=history)
    after.add(ev.Opened("net", "P1", "pd"), 60, "cust")
    after.add(ev.Responded(), 90, "pd")


def test_unknown_service_and_custody_not_provider_and_invalid_priority() -> None:
    Incident().reject(ev.Opened("voice", "P1", "pa"), 0, "cust", rule="unknown_service")
    Incident().reject(ev.Opened("net", "P1", "cust"), 0, "cust", rule="custody_not_provider")
    Incident().add(ev.Opened("desk", "P4", "pc"), 0, "pb")
    inc = Incident()
    with pytest.raises(InvalidArgument) as info:
        inc.check(inc.make(ev.Opened("net", "P5", "pa"), 0, "cust"))
    assert info.value.field == "priority"


def test_not_a_party_and_not_a_provider() -> None:
    inc = opened()
    inc.reject(ev.ClockPaused(), 1, "stranger", rule="not_a_party")
    inc.reject(ev.Responded(), 1, "cust", rule="not_a_provider")
    inc.add(ev.Responded(), 1, "pb")  # any provider, not only the holder
    inc.reject(ev.Resolved(), 2, "cust", rule="not_a_provider")
    inc.add(ev.Resolved(), 2, "pc")
    inc.add(ev.Closed(), 3, "cust")  # other events: any party
    Incident("INC-2").reject(ev.Opened("net", "P1", "pa"), 0, "nobody", rule="not_a_party")


def test_invalid_root_cause() -> None:
    inc = opened()
    inc.reject(ev.Resolved(root_cause="cust"), 1, rule="invalid_root_cause")  # the org, not
    inc.add(ev.Resolved(root_cause="customer"), 1)  # the literal `customer`
    for cause in ("pb", "third_party", "customer"):
        inc.add(ev.RootCauseAssigned(cause), 2, "cust")
    inc.reject(ev.RootCauseAssigned("acme"), 3, "cust", rule="invalid_root_cause")


# --- the state machine ------------------------------------------------------------


def test_before_opened() -> None:
    inc = opened()
    inc.reject(ev.Responded(), -1, rule="before_opened")
    inc.reject(ev.Voided(), -1, "cust", rule="before_opened")
    inc.add(ev.Responded(), 0)  # same instant: sorts after the stored opened


def test_after_closed() -> None:
    inc = resolved_and_closed()
    message = inc.reject(ev.Reopened(), 30, "cust", rule="after_closed")
    assert message == "reopened after closed"
    inc.reject(ev.Closed(), 30, "cust", rule="after_closed")
    inc.reject(ev.Voided(), 30, "cust", rule="after_closed")
    inc.add(ev.RootCauseAssigned("pb"), 30, "cust")
    late = inc.add(ev.HandedOff("pb"), 15, "pa")  # late, dated before closed
    inc.add(ev.Retracted(late.event_id), 40, "pa")  # retracted after closed


def test_not_custody_holder() -> None:
    inc = opened(custody="pb")
    message = inc.reject(ev.HandedOff("pc"), 1, "pa", rule="not_custody_holder")
    assert message == "handed_off by 'pa', custody holder is 'pb'"
    inc.add(ev.HandedOff("pa"), 1, "pb")
    inc.add(ev.HandedOff("pc"), 2, "pa")


def test_invalid_handoff_target() -> None:
    inc = opened()
    inc.reject(ev.HandedOff("pa"), 1, "pa", rule="invalid_handoff_target")
    inc.reject(ev.HandedOff("cust"), 1, "pa", rule="invalid_handoff_target")
    inc.add(ev.HandedOff("pb"), 1, "pa")


def test_no_pending_handoff_and_not_handoff_receiver() -> None:
    inc = opened()
    inc.reject(ev.HandoffRejected(), 1, "pa", rule="no_pending_handoff")
    inc.add(ev.HandedOff("pb"), 1, "pa")
    inc.add(ev.HandedOff("pc"), 2, "pb")
    inc.reject(ev.HandoffRejected(), 3, "pb", rule="not_handoff_receiver")  # not the latest
    inc.add(ev.HandoffRejected(), 3, "pc")  # custody back to pb
    inc.reject(ev.HandoffRejected(), 4, "pb", rule="no_pending_handoff")  # already rejected
    inc.add(ev.HandedOff("pa"), 5, "pb")


def test_clock_pause_no_nesting() -> None:
    inc = opened()
    assert inc.reject(ev.ClockResumed(), 1, "cust", rule="not_paused") == (
        "clock_resumed while not paused")
    inc.add(ev.ClockPaused(), 1, "cust")
    inc.reject(ev.ClockPaused(), 2, "cust", rule="already_paused")
    inc.add(ev.ClockResumed(), 2, "cust")
    inc.add(ev.ClockPaused(), 3, "cust")


def test_same_priority_is_accepted() -> None:
    """10.19: a change to the priority the incident already has is accepted."""
    inc = opened()  # P2
    inc.add(ev.PriorityChanged("P2"), 1, "cust")
    inc.add(ev.PriorityChanged("P1"), 1, "cust")
    inc.add(ev.PriorityChanged("P1"), 2, "cust")
    # Still refused: a priority outside P1..P4.
    with pytest.raises(InvalidArgument):
        inc.check(inc.make(ev.PriorityChanged("urgent"), 2, "cust"))


def test_one_open_outage() -> None:
    inc = opened()
    inc.reject(ev.OutageEnded(), 1, rule="no_open_outage")
    inc.add(ev.OutageStarted(Decimal("0.5")), 1)
    inc.reject(ev.OutageStarted(), 2, rule="outage_already_open")
    inc.add(ev.Resolved(), 3)  # resolved ends no outage (10.5) ...
    inc.reject(ev.Closed(), 4, "cust", rule="outage_open_at_close")
    inc.add(ev.OutageEnded(), 4)  # ... and outage events are allowed while resolved
    inc.add(ev.Closed(), 5, "cust")


def test_resolve_reopen_and_respond() -> None:
    inc = opened()
    inc.reject(ev.Reopened(), 1, "cust", rule="not_resolved")
    inc.add(ev.Resolved(), 1)
    inc.reject(ev.Resolved(), 2, rule="already_resolved")
    assert inc.reject(ev.Responded(), 2, rule="responded_after_resolved") == (
        "responded while resolved")
    inc.add(ev.HandedOff("pb"), 2)  # handoffs and pauses are allowed while resolved
    inc.add(ev.ClockPaused(), 2, "cust")
    inc.add(ev.Reopened(), 3, "cust")
    inc.add(ev.Responded(), 4, "pb")  # after a reopen: accepted
    inc.reject(ev.Closed(), 5, "cust", rule="not_resolved")  # reopened since
    inc.add(ev.Resolved(), 5, "pb")
    inc.add(ev.Closed(), 6, "cust")  # an open pause does not block closing


# --- corrections ----------------------------------------------------------------


def test_incident_voided() -> None:
    inc = opened()
    void = inc.add(ev.Voided("logged in error"), 10, "cust")
    inc.reject(ev.Responded(), 5, rule="incident_voided")  # even dated before the void
    inc.reject(ev.Voided(), 11, "cust", rule="incident_voided")
    inc.add(ev.Retracted(void.event_id), 12, "cust")  # restores the incident
    inc.add(ev.Responded(), 13)
    inc.add(ev.Voided(), 14, "cust")


def test_retraction_target_rules() -> None:
    inc = opened()
    other = opened(incident_id="INC-2")
    inc.reject(ev.Retracted("nope"), 1, "cust", rule="unknown_target")
    inc.reject(ev.Retracted(other.stored[0].event_id), 1, "cust", rule="unknown_target")
    inc.reject(ev.Retracted(inc.stored[0].event_id), 1, "cust", rule="cannot_retract_opened")
    responded = inc.add(ev.Responded(), 1)
    retraction = inc.add(ev.Retracted(responded.event_id), 2, "pa")
    inc.reject(ev.Retracted(responded.event_id), 3, "pa", rule="already_retracted")
    inc.reject(ev.Retracted(retraction.event_id), 3, "pa", rule="cannot_retract_retraction")


def test_target_has_dependents() -> None:
    inc = opened()
    pause = inc.add(ev.ClockPaused(), 1, "cust")
    inc.add(ev.ClockResumed(), 2, "cust")
    message = inc.reject(ev.Retracted(pause.event_id), 3, "cust", rule="target_has_dependents")
    assert message == (f"retracting clock_paused at position {pause.position} would make "
                       f"clock_resumed at position {pause.position + 1} invalid: "
                       "clock_resumed while not paused")
    handoff = inc.add(ev.HandedOff("pb"), 3)
    rejection = inc.add(ev.HandoffRejected(), 4, "pb")
    inc.reject(ev.Retracted(handoff.event_id), 5, "pa", rule="target_has_dependents")
    inc.add(ev.Retracted(rejection.event_id), 5, "pb")  # removes the misroute, pb holds
    inc.reject(ev.HandedOff("pc"), 6, "pa", rule="not_custody_holder")
    resolved = inc.add(ev.Resolved(), 6)
    inc.add(ev.Closed(), 7, "cust")
    inc.reject(ev.Retracted(resolved.event_id), 8, "pa", rule="target_has_dependents")


def test_retracting_the_first_response_keeps_the_second() -> None:
    inc = opened()
    first = inc.add(ev.Responded(), 1)
    inc.add(ev.Responded(), 2)
    inc.add(ev.Retracted(first.event_id), 3, "pa")


# --- late events: judged on the re-sorted timeline ------------------------------------


def test_late_events_are_accepted_when_the_resorted_timeline_stays_valid() -> None:
    inc = opened()
    inc.add(ev.HandedOff("pb"), 10, "pa")
    inc.add(ev.Resolved(), 30, "pb")
    inc.add(ev.HandedOff("pa"), 20, "pb")  # late: pb held custody at minute 20
    inc.add(ev.ClockPaused(), 12, "cust")  # late pause/resume pair between stored events
    inc.add(ev.ClockResumed(), 15, "cust")
    inc.add(ev.PriorityChanged("P1"), 5, "cust")
    inc.add(ev.Closed(), 40, "cust")
    inc.add(ev.Responded(), 8, "pb")  # dated before closed (and before resolved)
    check_incident_timeline(HISTORY, inc.stored)


def test_late_events_are_rejected_when_they_break_a_stored_event() -> None:
    inc = opened()
    handoff = inc.add(ev.HandedOff("pb"), 10, "pa")
    message = inc.reject(ev.HandedOff("pc"), 5, "pa", rule="not_custody_holder")
    assert message == (f"handed_off dated 2026-10-01T09:05:00Z would make handed_off at "
                       f"position {handoff.position} invalid: handed_off by 'pa', "
                       "custody holder is 'pc'")
    inc.reject(ev.HandedOff("pb"), 11, "pa", rule="not_custody_holder")
    pause = inc.add(ev.ClockPaused(), 20, "cust")
    message = inc.reject(ev.ClockPaused(), 15, "cust", rule="already_paused")
    assert f"clock_paused at position {pause.position} invalid" in message
    responded = inc.add(ev.Responded(), 30, "pb")
    message = inc.reject(ev.Resolved(), 25, "pb", rule="responded_after_resolved")
    assert f"responded at position {responded.position}" in message
    inc.add(ev.Resolved(), 35, "pb")
    inc.add(ev.Closed(), 40, "cust")
    inc.reject(ev.ClockResumed(), 45, "cust", rule="after_closed")
    inc.add(ev.ClockResumed(), 38, "cust")


def test_ties_are_broken_by_position_and_the_candidate_sorts_last() -> None:
    inc = opened()
    inc.add(ev.ClockPaused(), 5, "cust")
    inc.add(ev.ClockResumed(), 5, "cust")  # same instant, arrives later: after the pause
    inc.add(ev.ClockPaused(), 5, "cust")
    inc.reject(ev.ClockPaused(), 5, "cust", rule="already_paused")


# --- maintenance -------------------------------------------------------------------


def maintenance(service: str = "net", start: int = 60, end: int = 120, actor: str = "pa",
                minute: int = 0) -> ev.LedgerEvent:
    return ev.LedgerEvent(
        event_id="m1", agreement_id="agr", incident_id="", occurred_at=T0 + minute * MIN,
        actor=actor, payload=ev.MaintenanceScheduled(service, T0 + start * MIN, T0 + end * MIN),
    )


def test_maintenance_event() -> None:
    check_maintenance_event(HISTORY, maintenance(), now=NOW, max_skew=SKEW)
    check_maintenance_event(HISTORY, maintenance(actor="cust"), now=NOW, max_skew=SKEW)
    cases = {
        "unknown_service": maintenance(service="voice"),
        "not_a_party": maintenance(actor="stranger"),
        "future_event": maintenance(minute=60 * 24 * 31),
        "before_effective_from": maintenance(start=-60 * 24 * 31),
    }
    for rule, event in cases.items():
        with pytest.raises(TimelineViolation) as info:
            check_maintenance_event(HISTORY, event, now=NOW, max_skew=SKEW)
        assert info.value.rule == rule
    with pytest.raises(InvalidArgument, match="end: must be after start"):
        check_maintenance_event(HISTORY, maintenance(end=60), now=NOW, max_skew=SKEW)
    with pytest.raises(NotFound):
        check_maintenance_event(None, maintenance(), now=NOW, max_skew=SKEW)


# --- the worked scenario --------------------------------------------------------------


def test_scenario_rejections_in_file_order() -> None:
    scenario = json.loads(SCENARIO.read_text())
    expected = json.loads(EXPECTED.read_text())
    raw_agreement = scenario["agreements"][0]
    history = AgreementHistory(raw_agreement["id"], (
        TermsVersion(parse_instant(raw_agreement["effective_from"]), parse_terms(raw_agreement)),))
    now = parse_instant(expected["reports"][0]["evaluated_at"])
    stored: dict[str, list[ev.LedgerEvent]] = {}
    seen: set[str] = set()
    positions = itertools.count(1)
    rejected = []
    for index, raw in enumerate(scenario["events"]):
        event = event_from_dict(raw, f"events[{index}]")
        if event.event_id in seen:  # idempotency is the store's job
            assert index == 8
            continue
        try:
            if event.is_incident_event:
                check_incident_event(history, stored.get(event.incident_id, []), event,
                                     now=now, max_skew=SKEW)
            else:
                check_maintenance_event(history, event, now=now, max_skew=SKEW)
        except TimelineViolation as exc:
            rejected.append({"index": index, "event_id": event.event_id,
                             "incident_id": event.incident_id, "type": event.type,
                             "reason": f"invalid_timeline: {exc.message}"})
            continue
        seen.add(event.event_id)
        stored.setdefault(event.incident_id, []).append(replace(event, position=next(positions)))
    assert rejected == [r for r in expected["rejected"] if r["index"] != 8]
    assert sum(map(len, stored.values())) == expected["stored_events"]
    for incident_id, events in stored.items():
        if incident_id:
            check_incident_timeline(history, events)


# --- properties ---------------------------------------------------------------------

ACTORS = ("cust", "pa", "pb", "pc", "cust", "pa", "pb", "pc", "stranger")
TARGETS = ("pa", "pb", "pc", "cust")
CAUSES = ("pa", "pb", "customer", "third_party", "cust")
# Weighted so that incidents live long enough to meet every rule: a standing
# void or a close ends most scripts, so those are rare.
KINDS = (
    *("responded", "handed_off", "handed_off", "handoff_rejected", "clock_paused") * 6,
    *("clock_resumed", "outage_started", "outage_ended", "resolved", "retracted") * 6,
    *("reopened", "priority_changed", "root_cause_assigned", "closed") * 3,
    "voided", "opened",
)
steps = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 15), st.sampled_from(ACTORS),
              st.integers(0, 1000)),
    min_size=10, max_size=60,
)


def _payload(kind: str, aux: int, earlier: list[str]) -> ev.Payload:  # noqa: PLR0911  one case per event type
    if kind == "opened":
        return ev.Opened("net", "P2", TARGETS[aux % 3])
    if kind == "handed_off":
        return ev.HandedOff(TARGETS[aux % 4])
    if kind == "priority_changed":
        return ev.PriorityChanged(f"P{aux % 4 + 1}")
    if kind == "resolved":
        return ev.Resolved(root_cause=None if aux % 2 else CAUSES[aux % 5])
    if kind == "root_cause_assigned":
        return ev.RootCauseAssigned(CAUSES[aux % 5])
    if kind == "retracted":
        # Mostly recent targets; "nope" names no event at all.
        return ev.Retracted(earlier[-1 - aux % len(earlier)] if aux % 9 else "nope")
    return ev.PAYLOAD_TYPES[kind]()  # type: ignore[call-arg]


def _accepts_fully(events: list[ev.LedgerEvent]) -> bool:
    try:
        check_incident_timeline(HISTORY, events)
    except TimelineViolation:
        return False
    return True


def _run(inc: Incident, script: list[tuple[str, int, str, int]]) -> None:
    """Append a random script; after every attempt, the incremental verdict
    must equal a fresh full validation of the would-be stored set."""
    for kind, minute, actor, aux in script:
        earlier = [e.event_id for e in inc.stored]
        event = inc.make(_payload(kind, aux, earlier), minute, actor)
        candidate = replace(event, position=len(inc.stored) + 1)
        try:
            inc.check(event)
        except (TimelineViolation, NotFound):
            assert not _accepts_fully([*inc.stored, candidate]), (kind, minute, actor)
            continue
        assert _accepts_fully([*inc.stored, candidate]), (kind, minute, actor)
        inc.stored.append(candidate)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, opened_at=st.integers(0, 3), data=st.data())
def test_accepted_events_always_form_a_valid_timeline(
    script: list[tuple[str, int, str, int]], opened_at: int, data: st.DataObject
) -> None:
    inc = Incident()
    _run(inc, [("opened", opened_at, "cust", 0), *script])
    accepted = inc.stored

    # 1. Late arrivals never produce anything that in-order arrival could not:
    # the effective timeline, appended afresh in timeline order, is accepted
    # event by event (validity is prefix-closed and judged on dates only).
    # A provider's void awaits the customer, who never answers here: it is
    # an ordinary event (11.6); only a void in effect must go last.
    effective = effective_timeline(accepted)
    standing = void_in_effect(effective, Authority.of(TERMS), NOW)
    pending_voids = [v for v in effective.voids if v is not standing]
    in_order = Incident()
    for event in sorted([*effective.entries, *pending_voids], key=timeline_key):
        in_order.check(replace(event, position=0))
        in_order.stored.append(replace(event, position=len(in_order.stored) + 1))
    if standing is not None:  # the standing void goes last, as it must
        in_order.check(replace(standing, position=0))

    # 2. Any other arrival order of the accepted events is accepted by a fresh
    # full validation, provided it keeps what arrival order means: opened
    # first, a retraction after its target, nothing between a void and its
    # retraction (a standing void last), and events with the same occurred_at
    # in their original order (positions break those ties).
    order = _random_arrival_order(accepted, data)
    renumbered = [replace(e, position=i + 1) for i, e in enumerate(order)]
    assert [e.event_id for e in sorted(renumbered, key=timeline_key)] == [
        e.event_id for e in sorted(accepted, key=timeline_key)]
    check_incident_timeline(HISTORY, renumbered)


def _random_arrival_order(events: list[ev.LedgerEvent], data: st.DataObject) -> list[ev.LedgerEvent]:  # noqa: C901  one pass over the ordering constraints between events (opened first, retractions after their targets)
    by_id = {e.event_id: e for e in events}
    retraction_of: dict[str, ev.LedgerEvent] = {}
    needs: dict[str, set[str]] = {}
    for event in events:
        preds = {e.event_id for e in events if e.position < event.position
                 and (isinstance(e.payload, ev.Opened) or e.occurred_at == event.occurred_at)}
        if isinstance(event.payload, ev.Retracted):
            preds.add(event.payload.target_event_id)
            retraction_of[event.payload.target_event_id] = event
        needs[event.event_id] = preds
    for event in events:  # a standing void (the customer's: 11.2) arrives last
        if (isinstance(event.payload, ev.Voided) and event.event_id not in retraction_of
                and event.actor == TERMS.customer):
            needs[event.event_id] = {e.event_id for e in events} - {event.event_id}
    void_retractions = {r.event_id for target, r in retraction_of.items()
                        if isinstance(by_id[target].payload, ev.Voided)}
    order: list[ev.LedgerEvent] = []
    placed: set[str] = set()
    pending = [e.event_id for e in events]
    while pending:
        ready = []
        for event_id in pending:
            block = [event_id]
            if isinstance(by_id[event_id].payload, ev.Voided) and event_id in retraction_of:
                block.append(retraction_of[event_id].event_id)  # void and its retraction glued
            elif event_id in void_retractions:
                continue  # placed only together with its void
            inside = set(block)
            if all(needs[b] <= placed | inside for b in block):
                ready.append(block)
        block = data.draw(st.sampled_from(ready))
        for event_id in block:
            order.append(by_id[event_id])
            placed.add(event_id)
            pending.remove(event_id)
    return order


def test_the_literal_permutation_invariant_fails_on_ties() -> None:
    """Why property 2 keeps same-instant events in order: positions break
    ties, so swapping the arrival of a pause and a resume dated at the same
    instant swaps them in the timeline too."""
    inc = opened()
    inc.add(ev.ClockPaused(), 5, "cust")
    inc.add(ev.ClockResumed(), 5, "cust")
    check_incident_timeline(HISTORY, inc.stored)
    opened_event, pause, resume = inc.stored
    swapped = [opened_event, replace(resume, position=2), replace(pause, position=3)]
    with pytest.raises(TimelineViolation) as info:
        check_incident_timeline(HISTORY, swapped)
    assert info.value.rule == "not_paused"


# --- authority and disputes (section 11) -------------------------------------------

HISTORY_W = AgreementHistory(
    "agr", (TermsVersion(EFFECTIVE, replace(TERMS, dispute_window=10 * DAY)),))


def with_window() -> Incident:
    incident = Incident(history=HISTORY_W)
    incident.add(ev.Opened(service="net", priority="P2", custody="pa"), 0, "cust")
    return incident


def test_corrections_are_ones_own() -> None:
    inc = opened()
    responded = inc.add(ev.Responded(), 1, "pa")
    message = inc.reject(ev.Retracted(responded.event_id), 2, "cust", rule="not_own_event")
    assert message == (f"retracted by 'cust' names responded at position {responded.position} "
                       "by 'pa': corrections are one's own (sla-semantics 11.1)")
    inc.reject(ev.Retracted(responded.event_id), 2, "pb", rule="not_own_event")
    inc.add(ev.Retracted(responded.event_id), 2, "pa")


def test_answers_name_a_claim_awaiting_the_actor() -> None:
    inc = with_window()
    responded = inc.add(ev.Responded(), 1)
    claim = inc.add(ev.Resolved(root_cause="customer"), 10, "pa")  # awaits cust
    inc.reject(ev.ClaimAccepted("nope"), 11, "cust", rule="not_a_claim")
    inc.reject(ev.ClaimAccepted(responded.event_id), 11, "cust", rule="not_a_claim")
    inc.reject(ev.ClaimAccepted(inc.stored[0].event_id), 11, "cust", rule="not_a_claim")
    message = inc.reject(ev.ClaimAccepted(claim.event_id), 11, "pb", rule="not_awaited")
    assert "awaits 'cust'" in message and "11.3" in message
    inc.reject(ev.ClaimAccepted(claim.event_id), 11, "pa", rule="not_awaited")  # its author
    admission = inc.add(ev.RootCauseAssigned("pa"), 12, "pa")  # names itself: not a claim
    inc.reject(ev.ClaimAccepted(admission.event_id), 13, "cust", rule="not_a_claim")
    blame = inc.add(ev.RootCauseAssigned("pb"), 12, "pa")  # awaits pb, not the customer
    inc.reject(ev.ClaimDisputed(blame.event_id, "no"), 13, "cust", rule="not_awaited")
    inc.add(ev.ClaimDisputed(blame.event_id, "our switch was fine"), 13, "pb")


def test_one_answer_per_org_and_no_dispute_once_deemed() -> None:
    inc = with_window()
    claim = inc.add(ev.Resolved(root_cause="third_party"), 10, "pa")
    deemed = 10 + 10 * 24 * 60  # minutes
    message = inc.reject(ev.ClaimDisputed(claim.event_id, "late"), deemed, "cust",
                         rule="dispute_after_deemed")
    assert "deemed accepted at" in message
    dispute = inc.add(ev.ClaimDisputed(claim.event_id, "not a carrier fault"), deemed - 0.5,
                      "cust")
    inc.reject(ev.ClaimAccepted(claim.event_id), deemed - 0.25, "cust", rule="already_answered")
    inc.reject(ev.ClaimDisputed(claim.event_id, "again"), 20, "cust", rule="already_answered")
    inc.add(ev.Closed(), 30, "cust")
    # Answers are accepted after closed; retract one to change it (11.3).
    inc.add(ev.Retracted(dispute.event_id), 40, "cust")
    inc.add(ev.ClaimAccepted(claim.event_id), deemed + 1, "cust")  # accepting late is fine
    inc.reject(ev.ClaimAccepted("nope"), 41, "cust", rule="not_a_claim")


def test_retracted_claim_cannot_be_answered() -> None:
    inc = with_window()
    claim = inc.add(ev.PriorityChanged("P4"), 5, "pa")  # a provider's lowering awaits cust
    inc.add(ev.Retracted(claim.event_id), 6, "pa")
    inc.reject(ev.ClaimAccepted(claim.event_id), 7, "cust", rule="not_a_claim")
    raised = inc.add(ev.PriorityChanged("P1"), 8, "pa")  # a raise is not a claim
    inc.reject(ev.ClaimAccepted(raised.event_id), 9, "cust", rule="not_a_claim")


def test_a_pending_void_blocks_nothing_until_in_effect() -> None:
    inc = opened()  # no dispute window: a provider's void waits for the customer
    void = inc.add(ev.Voided("duplicate"), 5, "pa")
    inc.add(ev.Responded(), 6, "pa")  # not frozen (11.6)
    acceptance = inc.add(ev.ClaimAccepted(void.event_id), 7, "cust")
    inc.reject(ev.Responded(), 8, "pb", rule="incident_voided")
    inc.reject(ev.Retracted(acceptance.event_id), 9, "cust", rule="incident_voided")
    inc.reject(ev.Retracted(void.event_id), 9, "cust", rule="not_own_event")
    inc.add(ev.Retracted(void.event_id), 9, "pa")  # only its author restores the incident
    inc.add(ev.Responded(), 10, "pb")
    check_incident_timeline(HISTORY, inc.stored)


def test_a_void_deemed_accepted_blocks_from_its_deemed_instant() -> None:
    inc = with_window()
    inc.add(ev.Voided("duplicate"), 5, "pa")
    deemed = 5 + 10 * 24 * 60
    inc.add(ev.Responded(), deemed - 1, "pa")
    inc.reject(ev.Responded(), deemed, "pb", rule="incident_voided")


def test_full_validation_applies_the_claim_rules() -> None:
    inc = with_window()
    claim = inc.add(ev.Resolved(root_cause="customer"), 10, "pa")
    inc.add(ev.ClaimAccepted(claim.event_id), 11, "cust")
    check_incident_timeline(HISTORY_W, inc.stored)
    stranger = inc.make(ev.ClaimDisputed(claim.event_id, "x"), 12, "pb")
    with pytest.raises(TimelineViolation) as info:
        check_incident_timeline(HISTORY_W, [*inc.stored, replace(stranger, position=9)])
    assert info.value.rule == "not_awaited"
