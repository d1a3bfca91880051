"""Claims, acceptance and disputes (sla-semantics section 11): each claim kind
with each outcome, worked out by hand; knowledge cuts around an answer; and
a property: a history whose claims are all accepted has the figures of the
same history told by parties that needed no answer.

Agreement (tests.support.sla_book.Book): customer cust, providers pa and pb,
P1 response 15 min and resolution 4 h on 24x7, P2 resolution 8 h on the
office calendar (Mon-Fri 09:00-17:00 UTC). 2026-03-02 is a Monday.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.events import LedgerEvent
from ledger.domain.instants import parse_instant
from ledger.domain.sla import compute_period_report
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.sla.restatement import report_changes
from tests.support.sla_book import Book, level
from tests.support.sla_timelines import PREVIOUS, Step, timelines, write

LATE = "2026-04-10T00:00:00Z"


def blamed(window: str | None = None) -> tuple[Book, LedgerEvent]:
    """pa breaches P1 resolution (10:00 -> 16:00, 6 h > 4 h) and blames the
    customer when it resolves: a claim awaiting cust (11.2)."""
    b = Book(**({"dispute_window": window} if window else {}))
    b.open("I", "2026-03-02T10:00:00Z", impact="1")
    b.add("I", "responded", "2026-03-02T10:05:00Z")
    b.add("I", "outage_ended", "2026-03-02T11:00:00Z")
    claim = b.add("I", "resolved", "2026-03-02T16:00:00Z", root_cause="customer")
    return b, claim


def outcome(b: Book, at: str = LATE) -> str:
    return str(b.view("I", at)["service_levels"]["p1-resolution"]["outcome"])


def disputes(b: Book, at: str = LATE) -> list[dict[str, Any]]:
    return list(b.report(at=at)["disputes"])


# --- a root cause blaming the customer ---------------------------------------------


def test_without_an_answer_and_without_a_window_a_claim_never_takes_effect() -> None:
    b, claim = blamed()
    assert outcome(b) == "missed"
    assert level(b.report(), "net-availability")["downtime_seconds"] == "3600.000000"
    assert disputes(b) == [{
        "incident_id": "I", "event_id": claim.event_id, "type": "resolved", "claimed_by": "pa",
        "awaiting": ["cust"], "state": "awaiting", "deemed_at": None}]
    # The resolution itself stops the clock at once: only the root cause waits.
    view = b.view("I", LATE)
    assert view["status"] == "resolved" and view["root_cause"] is None
    assert view["service_levels"]["p1-resolution"]["elapsed_seconds"] == "21600.000000"


def test_accepted_claim_acts_from_its_own_date_once_accepted() -> None:
    b, claim = blamed()
    b.add("I", "claim_accepted", "2026-03-03T09:00:00Z", actor="cust",
          target_event_id=claim.event_id)
    assert outcome(b) == "excused"
    assert level(b.report(), "net-availability")["downtime_seconds"] == "0.000000"
    assert disputes(b) == []
    # Before the acceptance's date the claim is not in effect.
    assert outcome(b, "2026-03-03T08:59:59Z") == "missed"
    assert b.view("I", LATE)["claims"][0] | {"claim": None} == {
        "incident_id": "I", "event_id": claim.event_id, "type": "resolved", "claimed_by": "pa",
        "awaiting": [], "state": "in_effect", "deemed_at": None, "claim": None,
        "accepted_by": ["cust"], "disputed_by": []}


def test_disputed_claim_stays_out() -> None:
    b, claim = blamed("P10D")
    b.add("I", "claim_disputed", "2026-03-02T17:00:00Z", actor="cust",
          target_event_id=claim.event_id, reason="our change was rolled back")
    assert outcome(b) == "missed"
    assert disputes(b) == [{
        "incident_id": "I", "event_id": claim.event_id, "type": "resolved", "claimed_by": "pa",
        "awaiting": ["cust"], "state": "disputed", "deemed_at": None}]


def test_undisputed_claim_is_deemed_accepted_at_its_deemed_instant() -> None:
    b, claim = blamed("P1D")
    deemed = "2026-03-03T16:00:00Z"
    assert outcome(b, "2026-03-03T15:59:59.999999Z") == "missed"
    assert disputes(b, "2026-03-03T15:59:59.999999Z")[0]["state"] == "open"
    assert disputes(b, "2026-03-03T15:59:59.999999Z")[0]["deemed_at"] == deemed
    assert outcome(b, deemed) == "excused"
    assert disputes(b, deemed) == []
    # A dispute dated after T but before the deemed instant still counts at
    # any T from the deemed instant on.
    b.add("I", "claim_disputed", "2026-03-03T12:00:00Z", actor="cust",
          target_event_id=claim.event_id, reason="no")
    assert outcome(b, deemed) == "missed"
    assert outcome(b, "2026-03-03T11:00:00Z") == "missed"


def test_a_retracted_answer_counts_as_never_given() -> None:
    b, claim = blamed()
    accepted = b.add("I", "claim_accepted", "2026-03-03T09:00:00Z", actor="cust",
                     target_event_id=claim.event_id)
    assert outcome(b) == "excused"
    b.add("I", "retracted", "2026-03-04T09:00:00Z", actor="cust",
          target_event_id=accepted.event_id)
    # The retraction corrects the record whatever its date (10.8).
    assert outcome(b) == "missed" and outcome(b, "2026-03-03T10:00:00Z") == "missed"
    assert disputes(b)[0]["state"] == "awaiting"


def test_a_claim_retracted_by_its_author_is_gone() -> None:
    b, _ = blamed()
    b.add("I", "retracted", "2026-03-02T17:00:00Z", target_event_id=b.events["I"][-1].event_id)
    # The resolution went with it: the clock runs on.
    assert disputes(b) == []
    assert b.view("I", LATE)["claims"] == []


def test_root_cause_blaming_another_provider_awaits_that_provider() -> None:
    b = Book(policy="root_cause")
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    b.add("I", "resolved", "2026-03-02T15:00:00Z", actor="pb")
    claim = b.add("I", "root_cause_assigned", "2026-03-02T16:00:00Z", actor="pb",
                  root_cause="pa")
    shares = b.view("I", LATE)["service_levels"]["p1-resolution"]["shares"]
    assert shares == {"pa": "0.200000000000", "pb": "0.800000000000"}  # custody: not in effect
    assert disputes(b)[0]["awaiting"] == ["pa"]
    b.add("I", "claim_accepted", "2026-03-02T17:00:00Z", actor="pa",
          target_event_id=claim.event_id)
    assert b.view("I", LATE)["service_levels"]["p1-resolution"]["shares"] == {
        "pa": "1.000000000000"}


def test_admissions_and_the_customers_own_statements_are_not_claims() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "resolved", "2026-03-02T16:00:00Z", root_cause="pa")  # pa names itself
    b.add("I", "root_cause_assigned", "2026-03-02T17:00:00Z", actor="cust",
          root_cause="third_party")
    b.open("J", "2026-03-02T10:00:00Z")
    b.add("J", "voided", "2026-03-02T11:00:00Z", actor="cust")
    b.open("K", "2026-03-02T10:00:00Z")
    b.add("K", "priority_changed", "2026-03-02T10:30:00Z", actor="cust", priority="P2")
    b.add("K", "priority_changed", "2026-03-02T10:40:00Z", actor="pa", priority="P1")  # a raise
    assert disputes(b) == []
    assert b.view("I", LATE)["root_cause"] == "third_party"
    assert b.view("J", LATE)["voided"] is True
    assert b.view("K", LATE)["priority"] == "P1"


# --- a provider's void and a provider's lowering of priority -----------------------


def test_a_providers_void_counts_only_once_accepted() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z", impact="1")
    void = b.add("I", "voided", "2026-03-02T11:00:00Z", reason="duplicate")
    assert b.view("I", LATE)["voided"] is False
    assert level(b.report(), "net-availability")["downtime_seconds"] != "0.000000"
    assert disputes(b)[0]["type"] == "voided"
    b.add("I", "claim_accepted", "2026-03-02T12:00:00Z", actor="cust",
          target_event_id=void.event_id)
    assert b.view("I", LATE)["voided"] is True
    assert b.view("I", "2026-03-02T11:30:00Z")["voided"] is False
    assert level(b.report(), "net-availability")["downtime_seconds"] == "0.000000"
    assert disputes(b) == []


def test_a_providers_lowering_of_priority_awaits_the_customer() -> None:
    b = Book(dispute_window="P2D")
    b.open("I", "2026-03-02T10:00:00Z")  # P1
    b.add("I", "responded", "2026-03-02T10:05:00Z")
    claim = b.add("I", "priority_changed", "2026-03-02T10:30:00Z", priority="P2")
    b.add("I", "resolved", "2026-03-02T16:00:00Z")
    # P1 at first: 6 h > 4 h. Deemed accepted two days later: P2, 6 office
    # hours (10:00-16:00) < 8 h, measured from opened_at.
    assert b.view("I", "2026-03-04T10:29:59Z")["priority"] == "P1"
    assert outcome(b, "2026-03-04T10:29:59Z") == "missed"
    view = b.view("I", "2026-03-04T10:30:00Z")
    assert view["priority"] == "P2"
    assert view["service_levels"]["p2-resolution"]["outcome"] == "met"
    early = disputes(b, "2026-03-03T00:00:00Z")
    assert early == [{"incident_id": "I", "event_id": claim.event_id, "type": "priority_changed",
                      "claimed_by": "pa", "awaiting": ["cust"], "state": "open",
                      "deemed_at": "2026-03-04T10:30:00Z"}]


def test_disputed_lowering_keeps_the_priority() -> None:
    b = Book(dispute_window="P2D")
    b.open("I", "2026-03-02T10:00:00Z")
    claim = b.add("I", "priority_changed", "2026-03-02T10:30:00Z", priority="P3")
    b.add("I", "claim_disputed", "2026-03-02T11:00:00Z", actor="cust",
          target_event_id=claim.event_id, reason="the whole floor is down")
    assert b.view("I", LATE)["priority"] == "P1"


# --- knowledge cuts -----------------------------------------------------------------


def test_report_before_and_after_an_acceptance_differs_exactly_by_that_incident() -> None:
    b, claim = blamed()
    b.open("OTHER", "2026-03-05T10:00:00Z")
    b.add("OTHER", "responded", "2026-03-05T10:30:00Z")  # a missed response, unrelated
    before_position = b.position
    b.add("I", "claim_accepted", "2026-03-03T09:00:00Z", actor="cust",
          target_event_id=claim.event_id)
    before = b.report(position=before_position)
    after = b.report()
    changes = report_changes(before, after)
    incidents = {c.get("added") or c.get("removed") or c.get("incident_id")
                 for c in changes if "incidents" in c["field"] or c["field"] == "disputes"}
    assert incidents == {"I", claim.event_id}
    assert {"field": "disputes", "removed": claim.event_id, "incident_id": "I"} in changes
    assert {"field": "service_levels.p1-resolution.incidents.excused", "added": "I"} in changes
    assert {"field": "service_levels.p1-resolution.incidents.missed", "removed": "I"} in changes
    # Everything else is as before.
    untouched = {k: v for k, v in before.items() if k not in ("recorded_position", "disputes")}
    moved = {c["field"].split(".")[0] for c in changes}
    assert moved <= {"service_levels", "credits_total", "credits_by_provider", "disputes",
                     "credits_uncapped"}
    assert untouched["credit_cap"] == after["credit_cap"]


def test_deemed_between_two_evaluation_instants_changes_only_the_later_report() -> None:
    b, claim = blamed("P1D")
    earlier = b.report(at="2026-03-03T12:00:00Z")
    later = b.report(at="2026-03-03T18:00:00Z")
    assert level(earlier, "p1-resolution")["missed"] == 1
    assert level(later, "p1-resolution")["excused"] == 1
    assert earlier["disputes"][0]["event_id"] == claim.event_id and later["disputes"] == []
    # Knowledge does not matter here: the same events, only T moved.
    assert earlier == b.report(at="2026-03-03T12:00:00Z", position=b.position)


# --- property: all claims accepted == no claims at all ------------------------------


def told_without_claims(steps: list[Step]) -> list[Step]:
    """The same history as each claim's answering party would have told it:
    a root cause by the org it names (an admission) or by the customer, and
    no answers. A `resolved` keeps only the resolution; its root cause is
    told separately at the same minute."""
    out: list[Step] = []
    for s in steps:
        if s.kind == "claim_accepted":
            continue
        cause = s.fields.get("root_cause")
        if cause is None:
            out.append(s)
            continue
        teller = cause if cause in ("pa", "pb") else "cust"
        if s.kind == "resolved":
            out.append(Step(s.minute, "resolved", {}, s.actor))
        out.append(Step(s.minute, "root_cause_assigned", {"root_cause": cause}, teller))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=timelines(), b=timelines(), t=st.integers(0, 6000))
def test_all_claims_accepted_equals_the_history_without_claims(
    a: list[Step], b: list[Step], t: int
) -> None:
    from tests.support.sla_timelines import at

    assert all(s.fields.get("target_event_id", PREVIOUS) == PREVIOUS for s in a)
    with_claims, without = Book(dispute_window="PT1H"), Book(dispute_window="PT1H")
    for name, steps in (("A", a), ("B", b)):
        write(with_claims, name, steps)
        write(without, name, told_without_claims(steps))
    evaluated = parse_instant(at(t))
    one = period_report_dict(compute_period_report(with_claims.history, with_claims.events, "2026-03", evaluated,
                                with_claims.position, None))
    other = period_report_dict(compute_period_report(without.history, without.events, "2026-03", evaluated,
                                  without.position, None))
    assert one["disputes"] == other["disputes"] == []
    for report in (one, other):
        report.pop("recorded_position")
    assert one == other
    for name in ("A", "B"):
        view = with_claims.view(name, at(t))
        plain = without.view(name, at(t))
        for v in (view, plain):
            v.pop("recorded_position")
            v.pop("claims", None)
        assert view == plain


@pytest.mark.parametrize("window", [None, "PT30M"])
def test_folded_facts_with_claims_are_exact_across_their_validity_range(
    window: str | None,
) -> None:
    """Deemed instants bound the facts' validity as events do."""
    from ledger.domain.sla import facts_valid_at, fold_incident

    b, _ = blamed(window)
    events = b.events["I"]
    instants = [parse_instant(f"2026-03-02T{h:02d}:{m:02d}:00Z")
                for h in range(9, 19) for m in (0, 15, 29, 30, 31, 45)]
    for t in instants:
        facts = fold_incident(events, t, b.history)
        for probe in instants:
            if facts_valid_at(facts, probe):
                assert fold_incident(events, probe, b.history) == facts, (t, probe)
