"""The write-side invariant (ledger.domain.validation): the rule catalogue,
one test per rule with accept and reject cases, maintenance events and the
worked scenario's rejections. Corrections and late events, properties, and
authority and disputes have their own test_validation_*.py modules."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, TermsVersion
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import InvalidArgument, NotFound, TimelineViolation
from ledger.domain.instants import parse_instant
from ledger.domain.terms_parsing import parse_terms
from ledger.domain.validation import (
    RULE_IDS,
    RULES,
    check_incident_event,
    check_incident_timeline,
    check_maintenance_event,
)
from ledger.domain.validation_rules import RETIRED_RULES
from tests.support.scenarios import EXPECTED, SCENARIO
from tests.support.validation_incident import (
    EFFECTIVE,
    HISTORY,
    MIN,
    NOW,
    SKEW,
    T0,
    TERMS,
    Incident,
    opened,
    resolved_and_closed,
)

# --- the catalogue ------------------------------------------------------------


def test_rules_catalogue_is_unique_snake_case_and_fully_tested() -> None:
    ids = [rule for rule, _ in RULES]
    assert len(ids) == len(set(ids)) == len(RULE_IDS)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", rule) for rule in ids)
    assert all(description and "\n" not in description for _, description in RULES)
    # the rules are tested across the test_validation*.py modules
    source = "".join(p.read_text() for p in Path(__file__).parent.glob("test_validation*.py"))
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
