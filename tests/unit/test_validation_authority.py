"""The write-side invariant (ledger.domain.validation), authority and disputes
(sla-semantics section 11): corrections are one's own, answers name a claim
awaiting the actor, one answer per org, voids pending or deemed accepted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, TermsVersion
from ledger.domain.errors import TimelineViolation
from ledger.domain.validation import (
    check_incident_timeline,
)
from tests.support.validation_incident import DAY, EFFECTIVE, HISTORY, TERMS, Incident, opened

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
